"""djbake-deploy --domain obtains a certificate with certbot before the switch, from a real ACME server.

Real: the docker image's certbot (certbot --nginx, run by djbake-deploy), its nginx serving https, the
ACME protocol over TLS between the container and the host, and the HTTP-01 challenge, which the ACME
server fetches from the container's port 80 over the docker bridge.

Stand-ins, named as such: Let's Encrypt is stood in for by Pebble (Debian's `pebble` package: Let's
Encrypt's own RFC 8555 test server, run on the host); public DNS by pebble-challtestsrv's mock resolver,
which answers the test domain with the container's address; the ISRG root in the system store by
Pebble's root, which the test adds to the container's CA store (as cloud-init's ca_certs would), beside
the self-signed certificate the test makes for Pebble's own https endpoint. Pebble
issues from a CA it generates at start, so the certificate's issuer is checked against that CA.

This test found that certbot's --redirect broke http for the domain (its redirect server copies no
server_name from djbake's include, so nginx's 444 default server took the domain's http); djbake-deploy
now runs certbot with --no-redirect. An image baked before that fix fails here at step 'nginx'.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_deploy_releases import (  # noqa: F401
    DEPLOY,
    HOST_CAS,
    box,
    image,
    project_tarball,
    put,
    sh,
)

pytestmark = pytest.mark.docker

DOMAIN = "shop.example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, cafile: Path) -> str:
    with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=str(cafile)), timeout=10) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def acme(box, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """Pebble on the host, listening on the docker bridge, resolving every name to the container."""
    if not (shutil.which("pebble") and shutil.which("pebble-challtestsrv")):
        pytest.skip("pebble (Let's Encrypt's ACME test server) is not installed: apt-get install pebble")
    box.reload()
    net = next(iter(box.attrs["NetworkSettings"]["Networks"].values()))
    gateway, address = net["Gateway"], net["IPAddress"]
    d = tmp_path_factory.mktemp("pebble")
    # The ACME endpoint's own TLS certificate (certbot requires https).
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=djbake-test pebble listener", "-addext", f"subjectAltName=IP:{gateway},IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    port, mgmt, dns, dns_mgmt = free_port(), free_port(), free_port(), free_port()
    (d / "config.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"{gateway}:{port}", "managementListenAddress": f"127.0.0.1:{mgmt}",
        "certificate": str(d / "cert.pem"), "privateKey": str(d / "key.pem"),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
    with contextlib.ExitStack() as stack:
        logs = {name: stack.enter_context((d / f"{name}.log").open("w")) for name in ("pebble", "dns")}
        procs = [subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", address, "-defaultIPv6", "",
                                   "-dns01", f"127.0.0.1:{dns}", "-management", f"127.0.0.1:{dns_mgmt}",
                                   "-http01", "", "-https01", "", "-tlsalpn01", ""],
                                  stdout=logs["dns"], stderr=subprocess.STDOUT)]
        # No sleeps between validation attempts, no random nonce rejections, no authorization reuse:
        # every run validates its challenge, and none fails by Pebble's deliberate chaos.
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        procs.append(subprocess.Popen(["pebble", "-config", str(d / "config.json"), "-dnsserver",
                                       f"127.0.0.1:{dns}"], stdout=logs["pebble"], stderr=subprocess.STDOUT, env=env))
        try:
            directory = f"https://{gateway}:{port}/dir"
            for _ in range(60):
                try:
                    fetch(directory, d / "cert.pem")
                    break
                except OSError:
                    assert all(p.poll() is None for p in procs), (d / "pebble.log").read_text()[-2000:]
                    time.sleep(0.5)
            (d / "root.pem").write_text(fetch(f"https://127.0.0.1:{mgmt}/roots/0", d / "cert.pem"))
            (d / "intermediate.pem").write_text(fetch(f"https://127.0.0.1:{mgmt}/intermediates/0", d / "cert.pem"))
            yield {"directory": directory, "dir": d}
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)


def openssl(*args: str) -> str:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_domain_gets_a_certificate_from_acme_before_going_live(box, acme):  # noqa: F811
    """A project that redirects to https (SECURE_SSL_REDIRECT, its default) deployed with --domain: certbot
    answers the HTTP-01 challenge through nginx, the certificate comes from the local CA, https answers."""
    d = acme["dir"]
    cas = {p.name: p.read_bytes() for p in HOST_CAS.glob("*.crt")}  # PyPI, through this host's TLS proxy
    cas["djbake-test-pebble-listener.crt"] = (d / "cert.pem").read_bytes()
    cas["djbake-test-pebble-root.crt"] = (d / "root.pem").read_bytes()
    put(box, "/usr/local/share/ca-certificates", cas)
    assert sh(box, "update-ca-certificates")[0] == 0
    put(box, "/root/src", {"twelve-tls.tar.gz": project_tarball("tls")})
    code, before = sh(box, "readlink", "-f", "/srv/app/current")
    code, out = sh(box, DEPLOY, "--source", "/root/src/twelve-tls.tar.gz", "--env", "DJANGO_ADMIN_URL=manage/",
                   "--env-file", "/root/secrets.env", "--domain", DOMAIN,
                   env={"DJBAKE_ACME_SERVER": acme["directory"]})
    pebble_log = (d / "pebble.log").read_text()
    if code != 0:
        nginx = sh(box, "sh", "-c", "nginx -T 2>&1 | tail -n 80")[1]
        pytest.fail(out[-4000:] + "\n--- pebble:\n" + pebble_log[-2000:] + "\n--- nginx -T:\n" + nginx)
    # The certificate was the step before the switch (restart), and the switch's check followed the redirect.
    assert out.index("djbake-deploy: certificate") < out.index("djbake-deploy: restart"), out[-3000:]
    assert f"redirects to https://{DOMAIN}/" in out and "which answers" in out, out[-3000:]
    assert sh(box, "readlink", "-f", "/srv/app/current")[1] != before
    # Pebble really validated the challenge (it fetched it from the container) and issued.
    assert f"validate w/ HTTP: http://{DOMAIN}:80/.well-known/acme-challenge/" in pebble_log, pebble_log[-3000:]
    assert "set VALID by completed challenge" in pebble_log and "Issued certificate" in pebble_log, pebble_log[-3000:]

    code, chain = sh(box, "cat", f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem")
    assert code == 0 and "BEGIN CERTIFICATE" in chain, chain
    (d / "fullchain.pem").write_text(chain)
    leaf = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    (d / "leaf.pem").write_text(leaf)
    issuer = openssl("x509", "-in", str(d / "leaf.pem"), "-noout", "-issuer", "-nameopt", "RFC2253").split("=", 1)[1]
    local_ca = openssl("x509", "-in", str(d / "intermediate.pem"), "-noout", "-subject", "-nameopt", "RFC2253")
    assert issuer.strip() == local_ca.split("=", 1)[1].strip(), (issuer, local_ca)
    assert "Pebble" in issuer, issuer
    assert f"DNS:{DOMAIN}" in openssl("x509", "-in", str(d / "leaf.pem"), "-noout", "-ext", "subjectAltName")
    openssl("verify", "-CAfile", str(d / "root.pem"), "-untrusted", str(d / "fullchain.pem"), str(d / "leaf.pem"))

    # https through nginx in the container, trusting only the local CA, with that very certificate.
    put(box, "/root/acme", {"root.pem": (d / "root.pem").read_bytes()})
    code, out = sh(box, "curl", "-sS", "-m", "30", "--cacert", "/root/acme/root.pem", "--resolve",
                   f"{DOMAIN}:443:127.0.0.1", "-o", "/tmp/body", "-w", "%{http_code}", f"https://{DOMAIN}/")
    assert code == 0 and out == "200", out
    body = sh(box, "cat", "/tmp/body")[1]
    assert body.startswith("twelve-factor tls:"), body[:500]
    code, served = sh(box, "sh", "-c", f"openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} </dev/null "
                      "2>/dev/null | openssl x509 -noout -fingerprint -sha256")
    assert code == 0 and served.strip() == openssl("x509", "-in", str(d / "leaf.pem"), "-noout", "-fingerprint",
                                                    "-sha256").strip(), served
    # Plain http now sends browsers to https.
    code, out = sh(box, "curl", "-sS", "-m", "30", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                   "--resolve", f"{DOMAIN}:80:127.0.0.1", f"http://{DOMAIN}/")
    assert code == 0 and out.split()[0] in {"301", "302"} and out.split()[1].startswith(f"https://{DOMAIN}/"), out

    # The next deploy keeps the certificate (certbot.timer renews it) and goes live behind it.
    put(box, "/root/src", {"twelve-tls2.tar.gz": project_tarball("tls2")})
    code, out = sh(box, DEPLOY, "--source", "/root/src/twelve-tls2.tar.gz", "--domain", DOMAIN,
                   env={"DJBAKE_ACME_SERVER": acme["directory"]})
    assert code == 0, out[-4000:]
    code, out = sh(box, "curl", "-sS", "-m", "30", "--cacert", "/root/acme/root.pem", "--resolve",
                   f"{DOMAIN}:443:127.0.0.1", f"https://{DOMAIN}/")
    assert code == 0 and out.startswith("twelve-factor tls2:"), out[:500]
    assert (d / "pebble.log").read_text().count("Issued certificate") == 1, "a second certificate was ordered"
