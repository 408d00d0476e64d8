"""The secret scan: clean where nothing is planted, and every planted secret found.

Places: rendered templates (every provider, with credentials in the
environment), packer.log (a real Packer run), the catalog (SQLite), an
image's filesystem (a tree, and a live host through testinfra).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import testinfra

from builder import secretscan
from builder.bake import runner
from builder.catalog import store as catalog
from builder.cli import main
from builder.paths import ROOT
from builder.providers import PROVIDERS

PACKER = shutil.which("packer")

# Credentials that look real (right formats and lengths); none is.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIA" + "Q7RZ2WXYTV3MNB5K",
    "AWS_SECRET_ACCESS_KEY": "k9Pq2Lm7Rt4Xv8Zb1Nc6Wd3Hf5Gj0Ys2Ue7Ai4Oq",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEJr//////////wEaDNq8Yb2c3d4e5f6g7h8i9j0kAbCdEf",
    "LINODE_TOKEN": "3f9a" * 16,
    "DIGITALOCEAN_TOKEN": "dop_v1_" + "7c1e" * 16,
    "HCLOUD_TOKEN": "Hx7kQ2mW9pR4tY6uI8oP1aS3dF5gJ7kL9zX2cV4bN6mQ8wE0rT2yU4iO6pA8sD0f",
    "OS_USERNAME": "builder", "OS_PASSWORD": "Tr0ub4dor&3-rackspace", "OS_PROJECT_ID": "123456",
    "AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444", "AZURE_TENANT_ID": "t-1",
    "AZURE_CLIENT_ID": "c-1", "AZURE_CLIENT_SECRET": "azS3cr3t~value.0123456789", "AZURE_RESOURCE_GROUP": "rg",
    "GCP_PROJECT_ID": "proj-1",
}
PEM_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x\n-----END RSA PRIVATE KEY-----\n"
CA_CERT = ("-----BEGIN CERTIFICATE-----\n" + "\n".join(
    [("MIIDdzCCAl+gAwIBAgIUBuildProxyCA" + "x" * 34)[:64], ("ZGpiYWtlLWJ1aWxkLXByb3h5LWNhLWZvci10ZXN0cw" + "y" * 30)[:64],
     ("Q2VydGlmaWNhdGUgYm9keSB0aGF0IGlzIG5vdCBpbiBNb3ppbGxh" + "z" * 20)[:64]]) + "\n-----END CERTIFICATE-----\n")


@pytest.fixture
def creds(monkeypatch):
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    return secretscan.env_needles()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def kinds(findings) -> set[str]:
    return {f.kind for f in findings}


# -- rendered templates ------------------------------------------------------

def test_every_secret_credential_is_a_needle(creds):
    secret_envs = {c.env for cls in PROVIDERS.values() for c in cls.credentials if c.secret}
    assert {k.lstrip("$") for k in creds} == secret_envs & set(FAKE_ENV)
    assert len(creds) >= 8


@pytest.fixture
def rendered(tmp_path, creds):
    out = tmp_path / "build"
    rc, stdout, err = run("render", "--no-packer", "--provider", "all", "--out", str(out))
    assert rc == 0, err
    return out


def test_fresh_render_of_every_provider_is_clean(rendered, creds):
    assert {p.name for p in (rendered / "django-web").iterdir()} == set(PROVIDERS)
    found = secretscan.scan_tree(rendered, needles=creds)
    assert found == [], "\n".join(map(str, found))
    # The templates name the credentials (env() references), never their values.
    text = "".join(p.read_text() for p in rendered.rglob("*.pkr.json"))
    assert "AWS_SECRET_ACCESS_KEY" in text and FAKE_ENV["AWS_SECRET_ACCESS_KEY"] not in text


@pytest.mark.skipif(PACKER is None, reason="packer is not installed")
def test_fresh_render_for_installed_packer_is_clean(tmp_path, creds):
    rc, _, err = run("render", "--provider", "all", "--out", str(tmp_path / "b"))
    assert rc == 0, err
    assert secretscan.scan_tree(tmp_path / "b", needles=creds) == []


def test_cli_scan_clean_then_planted_template(rendered, creds):
    rc, out, _ = run("scan", str(rendered))
    assert rc == 0 and "no secrets found" in out
    tpl = rendered / "django-web" / "digitalocean" / "django-web.pkr.json"
    data = json.loads(tpl.read_text())
    data["source"]["digitalocean"]["digitalocean"]["api_token"] = FAKE_ENV["DIGITALOCEAN_TOKEN"]
    tpl.write_text(json.dumps(data, indent=2))
    rc, out, err = run("scan", str(rendered))
    assert rc == 1 and "possible secret" in err
    assert f"{tpl}:" in out
    assert {"digitalocean-token", "known-secret"} <= set(re.findall(r": ([a-z-]+): ", out))
    assert FAKE_ENV["DIGITALOCEAN_TOKEN"] not in out + err, "a finding must not print the secret"


@pytest.mark.parametrize("line, kind", [
    ('"ssh_private_key": "' + PEM_KEY.replace("\n", "\\n") + '"', "private-key"),
    ('"access_key": "AKIAZ7Q4R2M8N6B3V5C1"', "aws-access-key"),
    ('"secret_key": "k9Pq2Lm7Rt4Xv8Zb1Nc6Wd3Hf5Gj0Ys2Ue7Ai4Oq"', "aws-secret-key"),
    ('"token": "dop_v1_' + "ab12" * 16 + '"', "digitalocean-token"),
    ('"linode_token": "' + "0f" * 32 + '"', "linode-token"),
    ('"hcloud_token": "' + "aB3" * 21 + 'x"', "hetzner-token"),
    ('"environment_vars": ["LINODE_TOKEN=abcd1234efgh5678"]', "credential-variable"),
    ('"inline": ["export OS_PASSWORD=hunter2-rax"]', "credential-variable"),
    ('"ssh_password": "hunter2!"', "secret-assignment"),
    ('"environment_vars": ["DJANGO_SECRET_KEY=django-insecure-abc123xyz"]', "secret-assignment"),
    ('"iso_url": "https://bob:s3cretpw@mirror.example.com/x.iso"', "url-credentials"),
    ('"github": "ghp_' + "A1b2C3d4E5" * 4 + '"', "github-token"),
    ('"maps": "AIza' + "Sy0123456789abcdefghijklmnopqrstu" + 'vw"', "google-api-key"),
    ('"account_file": {"type": "service_account", "project_id": "p"}', "gcp-service-account"),
    ('"hook": "xoxb-1234567890-abcdefghij"', "slack-token"),
])
def test_each_kind_planted_in_a_template_is_found(tmp_path, line, kind):
    f = tmp_path / "t.pkr.json"
    f.write_text('{\n  "a": 1,\n  ' + line + '\n}\n')
    found = secretscan.scan_file(f)
    assert kind in kinds(found), found
    assert all(f.line == 3 for f in found if f.kind == kind)


@pytest.mark.parametrize("text", [
    '"api_token": "${var.digitalocean_token}"',
    '"default": "${env(\\"AWS_SECRET_ACCESS_KEY\\")}"',
    '"root_pass": "${uuidv4()}"',
    '"password": "{{ user `pw` }}"',
    'export LINODE_TOKEN=...            # see the docs',
    'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
    'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    'ssh_authorized_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7x djbake',
    'DJANGO_SECRET_KEY=',
    'PASSWORD="$1"',
    'password: <your password>',
    '#password_encryption = scram-sha-256',
    'passwd:         files',
    'proxy_pass http://unix:/run/gunicorn.sock;',
    'DATABASE_URL=postgres://django:${DJANGO_DB_PASSWORD}@localhost/django',
    'sensitive = true',
])
def test_allowlisted_references_and_examples(tmp_path, text):
    f = tmp_path / "x.conf"
    f.write_text(text + "\n")
    assert secretscan.scan_file(f) == []


def test_python_code_only_literal_assignments(tmp_path):
    f = tmp_path / "settings.py"
    f.write_text('SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n'
                 '"PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),\n'
                 'password: str = Field(...)\n'
                 'db_password = get_password()\n'
                 'SECRET_KEY = "django-insecure-9x8y7z6w"\n')
    found = secretscan.scan_file(f)
    assert [(x.line, x.kind) for x in found] == [(5, "secret-assignment")]


# -- packer.log --------------------------------------------------------------

def _null_build(tmp: Path, command: str) -> Path:
    tpl = {
        "variable": {"tok": {"type": "string", "default": '${env("DIGITALOCEAN_TOKEN")}', "sensitive": True}},
        "source": {"null": {"x": {"communicator": "none"}}},
        "build": [{"sources": ["source.null.x"], "provisioner": [{"shell-local": {"inline": [command]}}]}],
    }
    (tmp / "t.pkr.json").write_text(json.dumps(tpl))
    return tmp


@pytest.mark.skipif(PACKER is None, reason="packer is not installed")
def test_packer_log_of_a_real_run(tmp_path, creds):
    """The runner's filter keeps credentials out of packer.log; without it the scan catches the leak."""
    d = _null_build(tmp_path, "echo token is ${var.tok}; echo done")
    filtered = runner.PackerRunner(PACKER, tmp_path / "packer.log", secrets=creds.values()).build(d)
    assert filtered.returncode == 0
    assert secretscan.scan_file(tmp_path / "packer.log", needles=creds) == []
    leaky = runner.PackerRunner(PACKER, tmp_path / "leaky.log").build(d)
    assert leaky.returncode == 0
    found = secretscan.scan_file(tmp_path / "leaky.log", needles=creds)
    assert {"digitalocean-token", "known-secret"} <= kinds(found)


def test_planted_in_packer_log(tmp_path):
    log = tmp_path / "packer.log"
    log.write_text("1,,ui,say,==> qemu.qemu: Waiting for SSH\n"
                   "1,,ui,message,    qemu.qemu: key: -----BEGIN RSA PRIVATE KEY-----\\nMIIE\n"
                   "1,,ui,message,    qemu.qemu: AWS_SECRET_ACCESS_KEY=k9Pq2Lm7Rt4Xv8Zb1Nc6Wd3Hf5Gj0Ys2Ue7Ai4Oq\n")
    found = secretscan.scan_file(log)
    assert {(f.line, f.kind) for f in found} >= {(2, "private-key"), (3, "credential-variable")}


# -- the catalog ---------------------------------------------------------------

def _entry(**kw) -> catalog.Entry:
    return catalog.Entry(build_id="b1", image="django-web", version="1", provider="aws", region="us-east-1",
                         artifact="ami-0123456789abcdef0", sha256="ab" * 32, **kw)


def test_catalog_clean_then_planted(tmp_path, creds):
    path = tmp_path / "catalog.sqlite"
    cat = catalog.Catalog(path)
    cat.add([_entry(tools={"packer": "1.6.6"}, timings={"total": 1.0},
                    verification={"secret_key": "cd" * 32, "db_password": "sha256:" + "ef" * 32})])
    assert secretscan.scan_catalog(path, needles=creds) == []
    # another region: (build_id, provider, region) is unique in the catalog
    planted = dataclasses.replace(_entry(extra={"user_data": "LINODE_TOKEN=" + FAKE_ENV["LINODE_TOKEN"]}),
                                  region="eu-west-1")
    ids = cat.add([planted])
    found = secretscan.scan_catalog(path, needles=creds)
    assert {"credential-variable", "known-secret"} <= kinds(found)
    assert any(f.where == f"{path}:images[{ids[0]}].extra" for f in found), found
    rc, out, _ = run("scan", "--no-env", str(path))
    assert rc == 1 and "credential-variable" in out and FAKE_ENV["LINODE_TOKEN"] not in out


# -- an image's filesystem ------------------------------------------------------

def _clean_image(root: Path) -> Path:
    """A small image tree with what a sealed Django image legitimately has."""
    files = {
        "etc/nsswitch.conf": "passwd:         files\n",
        "etc/ssh/sshd_config.d/10-djbake.conf": "PasswordAuthentication no\nPermitEmptyPasswords no\n",
        "etc/postgresql/15/main/postgresql.conf": "#password_encryption = scram-sha-256\n",
        "etc/nginx/sites-available/django": "location / { proxy_pass http://unix:/run/gunicorn.sock; }\n",
        "etc/djbake/app.env": "DJANGO_SETTINGS_MODULE=welcome.settings\nDJANGO_SECRET_KEY=\nDJANGO_DB_PASSWORD=\n",
        "etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----\nMIIFazCCA1Og\n-----END CERTIFICATE-----\n",
        "root/.ssh/authorized_keys": "",
        "home/admin/.ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx admin@laptop\n",
        "srv/app/src/welcome/settings.py": 'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n',
        "srv/app/venv/lib/python3.11/site-packages/django/conf/global_settings.py":
            'PASSWORD_RESET_TIMEOUT = 60\nEMAIL_HOST_PASSWORD = ""\nDEFAULT_PASSWORD = "unused-default"\n',
        "srv/app/venv/lib/python3.11/site-packages/botocore/example.json": '{"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"}\n',
        "usr/lib/python3/dist-packages/x.py": 'password = "shipped-by-a-package"\n',  # not a place a build writes
        "usr/local/bin/djbake-env": "#!/bin/sh\nkey=$1\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "usr/local/share/ca-certificates").mkdir(parents=True)
    return root


PLANTED = {
    # path: (text, kind)
    "root/.ssh/id_ed25519": (PEM_KEY, "private-key"),
    "etc/ssh/ssh_host_rsa_key": (RSA_KEY, "private-key"),
    "home/admin/.bash_history": (f"export AWS_SECRET_ACCESS_KEY={FAKE_ENV['AWS_SECRET_ACCESS_KEY']}\n",
                                 "credential-variable"),
    "etc/djbake/app.env": ("DJANGO_SECRET_KEY=8kP2x9Qw7zR4tY1uV6bN3mL0\n", "secret-assignment"),
    "srv/app/src/.env": ("DATABASE_URL=postgres://django:Sup3rS3cret@db/django\n", "url-credentials"),
    "var/log/cloud-init-output.log": (f"token {FAKE_ENV['DIGITALOCEAN_TOKEN']}\n", "digitalocean-token"),
    "tmp/djbake/linode.json": (f'{{"linode_token": "{FAKE_ENV["LINODE_TOKEN"]}"}}\n', "linode-token"),
    "etc/apt/apt.conf.d/99djbake-proxy": ('Acquire::http::Proxy "http://10.0.2.2:3128";\n', "build-proxy"),
    "etc/apt/apt.conf.d/99djbake-tls": ('Acquire::https::Verify-Peer "false";\n', "build-ca"),
    "etc/environment": ("REQUESTS_CA_BUNDLE=/usr/local/share/ca-certificates/proxy.crt\n", "build-ca"),
    "etc/profile.d/ca.sh": ("export SSL_CERT_FILE=/etc/ssl/proxy.pem\n", "build-ca"),
    "etc/profile.d/proxy.sh": ("export https_proxy=http://10.0.2.2:3128\n", "build-proxy"),
    "etc/pip.conf": ("[global]\ncert = /etc/ssl/proxy.pem\n", "build-ca"),
    "usr/local/share/ca-certificates/djbake-proxy.crt": (CA_CERT, "build-ca"),
}


def test_clean_image_tree(tmp_path, creds):
    root = _clean_image(tmp_path / "img")
    assert secretscan.looks_like_image(root)
    found = secretscan.scan_tree(root, needles=creds)
    assert found == [], "\n".join(map(str, found))


@pytest.mark.parametrize("rel", sorted(PLANTED))
def test_planted_in_image_tree_is_found(tmp_path, creds, rel):
    root = _clean_image(tmp_path / "img")
    text, kind = PLANTED[rel]
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
    found = secretscan.scan_tree(root, needles=creds)
    assert kind in kinds(found), found
    assert {f.where for f in found} == {"/" + rel}, found


def test_build_ca_merged_into_the_system_bundle(tmp_path):
    """update-ca-certificates copied the build CA into the bundle: found by the CA's own body."""
    root = _clean_image(tmp_path / "img")
    ca = tmp_path / "proxy-ca.pem"
    ca.write_text(CA_CERT)
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    bundle.write_text(bundle.read_text() + CA_CERT)
    needles = secretscan.ca_needles(ca)
    found = secretscan.scan_tree(root, needles=needles)
    assert [(f.where, f.kind) for f in found] == [("/etc/ssl/certs/ca-certificates.crt", "known-secret")]
    rc, out, _ = run("scan", "--no-env", "--ca", str(ca), str(root))
    assert rc == 1 and "the build CA proxy-ca.pem" in out


def test_server_certificate_settings_are_not_a_build_ca(tmp_path):
    """PostgreSQL's own ssl_cert_file names the server's certificate; only the upper-case variables are build CAs."""
    root = _clean_image(tmp_path / "img")
    conf = root / "etc/postgresql/15/main/postgresql.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    with conf.open("a") as f:
        f.write("ssl = on\nssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'\n")
    assert secretscan.scan_tree(root) == []


def test_unchanged_package_files_local():
    """Files as a Debian package shipped them are recognised by dpkg's checksums; other files are not."""
    host = testinfra.get_host("local://")
    if host.run("dpkg -S /etc/debian_version").rc != 0:
        pytest.skip("no dpkg-owned /etc/debian_version here")
    if host.run("dpkg --verify base-files").stdout.strip():
        pytest.skip("base-files was changed on this machine")
    assert secretscan.unchanged_package_files(host, ["/etc/debian_version", "/etc/hostname"]) == {
        "/etc/debian_version"}


def test_allow_per_vm_keys_after_boot(tmp_path):
    root = _clean_image(tmp_path / "img")
    (root / "etc/ssh/ssh_host_ed25519_key").write_text(PEM_KEY)
    assert kinds(secretscan.scan_tree(root)) == {"private-key"}
    assert secretscan.scan_tree(root, allow=["/etc/ssh/ssh_host_"]) == []


# -- a live host through testinfra (local backend, a fake image root) -------------

def test_scan_host_matches_scan_tree(tmp_path, creds):
    root = _clean_image(tmp_path / "img")
    host = testinfra.get_host("local://")
    assert secretscan.scan_host(host, root=str(root), needles=creds) == []
    for rel, (text, _) in PLANTED.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    on_host = secretscan.scan_host(host, root=str(root), needles=creds)
    in_tree = secretscan.scan_tree(root, needles=creds)
    assert {(f.where, f.kind) for f in on_host} == {(f.where, f.kind) for f in in_tree}
    assert {f.where for f in on_host} == {"/" + rel for rel in PLANTED}
    allowed = secretscan.scan_host(host, root=str(root), allow=["/etc/ssh/ssh_host_", "/etc/pip.conf"])
    assert "/etc/ssh/ssh_host_rsa_key" not in {f.where for f in allowed}
    assert "/etc/pip.conf" not in {f.where for f in allowed}


def test_grep_prefilter_covers_every_rule():
    """scan_host only sees lines the guest's grep lets through: each rule's samples must pass it."""
    trigger = re.compile(secretscan.GREP_TRIGGERS, re.I)
    samples = [line for line, _ in test_each_kind_planted_in_a_template_is_found.pytestmark[0].args[1]]
    # (pip.conf and files in the CA directory are found by path in the guest, not by grep)
    samples += [text.splitlines()[0] for rel, (text, _) in PLANTED.items()
                if rel != "etc/pip.conf" and "ca-certificates" not in rel]
    for s in samples:
        assert trigger.search(s), s
    for rule in secretscan.RULES:
        assert any(rule.pattern.search(s) for s in samples), f"no sample for rule {rule.kind}"


class _DeadHost:
    """A testinfra-like host whose commands do not run (container gone, sudo refused)."""

    class _Out:
        rc, stdout, stderr = 1, "", "Error: No such container"

    def run(self, cmd):
        return self._Out()

    @contextlib.contextmanager
    def sudo(self):
        yield


def test_scan_host_that_did_not_run_is_an_error_not_a_pass():
    with pytest.raises(RuntimeError, match="did not run"):
        secretscan.scan_host(_DeadHost())


@pytest.fixture(scope="module")
def base_image(engine) -> str:
    """The docker provider's base image for the default spec's OS (built once if missing, then reused:
    the session's docker build makes the same one). Before, this test skipped whenever that image did
    not exist yet, which on a fresh machine is always: its skipif ran before any build."""
    import yaml

    from builder.docker import base_image as docker_base

    os_name = yaml.safe_load((ROOT / "images" / "django-web.yaml").read_text())["os"]
    return docker_base.ensure(os_name).reference


@pytest.mark.docker
def test_scan_host_in_a_container(base_image):
    import subprocess

    cid = subprocess.run(["docker", "run", "-d", "--entrypoint", "sleep", base_image, "120"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    try:
        host = testinfra.get_host(f"docker://{cid}")
        assert secretscan.scan_host(host) == []
        host.check_output("mkdir -p /root/.ssh /usr/local/share/ca-certificates "
                 "&& touch /usr/local/share/ca-certificates/proxy.crt "
                 "&& echo 'Acquire::http::Proxy \"http://10.0.2.2:3128\";' > /etc/apt/apt.conf.d/99proxy")
        host.check_output("printf '%s' " + repr(RSA_KEY) + " > /root/.ssh/id_rsa")
        packaged = "/etc/debian_version"
        assert secretscan.unchanged_package_files(host, [packaged, "/root/.ssh/id_rsa"]) == {packaged}
        host.check_output(f"echo changed >> {packaged}")
        assert secretscan.unchanged_package_files(host, [packaged]) == set()
        found = secretscan.scan_host(host)
        assert {(f.where, f.kind) for f in found} == {
            ("/root/.ssh/id_rsa", "private-key"), ("/usr/local/share/ca-certificates/proxy.crt", "build-ca"),
            ("/etc/apt/apt.conf.d/99proxy", "build-proxy")}
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
