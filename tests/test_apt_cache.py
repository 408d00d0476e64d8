"""The host's package cache (builder/apt_cache.py, scripts/host/start-apt-cache.sh, scripts/lib.sh).

The last test is real: Debian's apt-cacher-ng started by our script on a
free port, two fresh containers of the docker base installing a package
through scripts/lib.sh's apt_install with DJBAKE_APT_PROXY set as djbake
sets it, and the cache's own log showing that the second container got the
package without the cache fetching it again; then a third whose cache is
stopped between its apt steps, which installs from the mirror directly and
says so. The rest are fast.
"""
from __future__ import annotations

import http.server
import io
import os
import random
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from builder.bake import apt_cache
from builder.docker import client as docker_client
from builder.paths import ROOT

SCRIPTS = ROOT / "scripts"


def free_port() -> int:
    # Below 32768: apt-cacher-ng 3.7 fails to bind higher ports ("Error resolving
    # address for binding"), and the kernel's ephemeral range starts there.
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


class Page(http.server.BaseHTTPRequestHandler):
    body = b"<html><title>Apt-Cacher NG</title></html>"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve(monkeypatch):
    servers = []

    def start(body: bytes) -> int:
        handler = type("P", (Page,), {"body": body})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        monkeypatch.setenv("DJBAKE_APT_CACHE_PORT", str(srv.server_address[1]))
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_a_qemu_guest_reaches_the_cache_through_user_networking(serve):
    port = serve(Page.body)
    assert apt_cache.proxy_for("qemu") == f"http://10.0.2.2:{port}"
    assert apt_cache.host_proxy() == f"http://127.0.0.1:{port}"
    assert apt_cache.host_env()["http_proxy"] == f"http://127.0.0.1:{port}"


def test_no_cache_means_direct_fetches(serve, monkeypatch):
    monkeypatch.setenv("DJBAKE_APT_CACHE_PORT", str(free_port()))   # nothing listens
    assert apt_cache.proxy_for("qemu") == ""
    assert "http_proxy" not in apt_cache.host_env() or os.environ.get("http_proxy")
    serve(b"<html>some other web server</html>")                   # something else listens
    assert apt_cache.proxy_for("qemu") == ""
    serve(Page.body)
    monkeypatch.setenv("DJBAKE_APT_CACHE", "0")                     # the user turned it off
    assert apt_cache.proxy_for("qemu") == "" and apt_cache.host_proxy() == ""


def test_clouds_never_use_it(serve):
    serve(Page.body)
    assert apt_cache.proxy_for("aws") == "" and apt_cache.proxy_for("linode") == ""


@pytest.mark.parametrize("config, gateway", [
    ([{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}], "172.17.0.1"),
    ([{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"}], "10.9.0.254"),
    # an engine's first start reports no gateway (moby/moby#26799): Docker's default, the first address
    ([{"Subnet": "172.17.0.0/16"}], "172.17.0.1"),
    ([{"Subnet": "fd00::/64"}, {"Subnet": "192.168.5.0/24"}], "192.168.5.1"),
    ([], None),
])
def test_a_docker_build_finds_the_host_on_the_bridge(config, gateway):
    import types

    bridge = types.SimpleNamespace(attrs={"IPAM": {"Config": config}})
    engine = types.SimpleNamespace(networks=types.SimpleNamespace(get=lambda name: bridge))
    assert docker_client.bridge_gateway(engine) == gateway


def test_traffic_reads_fetched_and_served_bytes(tmp_path):
    log = tmp_path / "apt-cacher.log"
    log.write_text("\n".join([
        "100|I|5000|10.0.2.15|deb.debian.org/debian/pool/main/h/htop/htop_3.2.2-2_amd64.deb",
        "100|O|5100|10.0.2.15|deb.debian.org/debian/pool/main/h/htop/htop_3.2.2-2_amd64.deb",
        "200|I|300|10.0.2.15|deb.debian.org/debian/dists/bookworm/InRelease",
        "200|O|5100|10.0.2.15|deb.debian.org/debian/pool/main/h/htop/htop_3.2.2-2_amd64.deb",
        "200|E|628|10.0.2.15|deb.debian.org/debian/dists/x/InRelease [HTTP error, code: 503]",
        "garbage",
    ]))
    assert apt_cache.traffic(log, 0) == apt_cache.Traffic(5300, 10200, 2, 2, 1, 2)
    later = apt_cache.traffic(log, 150)
    assert (later.fetched, later.packages_fetched, later.packages_served) == (300, 0, 1)
    assert apt_cache.traffic(tmp_path / "missing.log", 0) == apt_cache.Traffic(0, 0, 0, 0)


# -- the fallback to the mirror (scripts/lib.sh apt_use_cache) -------------------

def _detect(tmp_path, proxy: str, probe_timeout: int = 1) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Run lib.sh's apt_use_cache with its two files moved under tmp_path: (conf, detect script, the run)."""
    conf, detect = tmp_path / "00djbake-build-proxy", tmp_path / "djbake-build-proxy-detect"
    run = subprocess.run(
        ["bash", "-c", f'. {SCRIPTS / "lib.sh"}; APT_PROXY_CONF={conf}; APT_PROXY_DETECT={detect}; apt_use_cache'],
        env=dict(os.environ, DJBAKE_APT_PROXY=proxy, APT_PROXY_PROBE_TIMEOUT=str(probe_timeout)),
        capture_output=True, text=True, timeout=60)
    return conf, detect, run


def _ask(detect: Path) -> subprocess.CompletedProcess:
    # As apt's http method calls it: the URL it is about to fetch as $1.
    return subprocess.run([str(detect), "http://deb.debian.org/debian/dists/trixie/InRelease"],
                          capture_output=True, text=True, timeout=60)


def test_apt_asks_the_probe_and_gets_the_cache_while_it_answers(tmp_path, serve):
    port = serve(Page.body)
    proxy = f"http://127.0.0.1:{port}"
    conf, detect, run = _detect(tmp_path, proxy)
    assert run.returncode == 0, run.stderr
    assert conf.read_text() == f'Acquire::http::Proxy-Auto-Detect "{detect}";\n'
    assert "does not answer" not in run.stdout + run.stderr
    answer = _ask(detect)
    assert (answer.returncode, answer.stdout, answer.stderr) == (0, proxy + "\n", "")


def test_a_cache_that_is_gone_means_direct_fetches_and_says_so(tmp_path):
    proxy = f"http://127.0.0.1:{free_port()}"      # nothing listens
    conf, detect, run = _detect(tmp_path, proxy)
    assert run.returncode == 0, run.stderr
    assert f"the host's package cache at {proxy} does not answer: apt fetches from the mirror directly" in run.stdout
    answer = _ask(detect)
    assert answer.returncode == 0 and answer.stdout == "DIRECT\n"
    assert ("does not answer: fetching http://deb.debian.org/debian/dists/trixie/InRelease from the mirror "
            "directly") in answer.stderr


def test_a_cache_that_accepts_but_never_answers_means_direct_fetches(tmp_path):
    # A stopped (SIGSTOPped, wedged) daemon: the kernel accepts the connection, nothing replies.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
        _, detect, run = _detect(tmp_path, proxy, probe_timeout=1)
        assert "does not answer" in run.stdout
        answer = _ask(detect)
    assert answer.stdout == "DIRECT\n"


def test_no_proxy_given_removes_both_files(tmp_path, serve):
    conf, detect, _ = _detect(tmp_path, f"http://127.0.0.1:{serve(Page.body)}")
    assert conf.exists() and detect.exists()
    conf, detect, run = _detect(tmp_path, "")
    assert run.returncode == 0 and not conf.exists() and not detect.exists()


def test_the_sealed_image_scan_finds_either_file_left_behind(tmp_path, serve):
    # seal.sh removes both; if a change ever kept one, the sealed-artifact scan (builder/secretscan.py's
    # build-proxy rule, run on every sealed image) names it.
    from builder import secretscan

    conf, detect, _ = _detect(tmp_path, f"http://127.0.0.1:{serve(Page.body)}")
    for leftover in (conf, detect):
        found = secretscan.scan_file(leftover, image=True)
        assert [f.kind for f in found] == ["build-proxy"], found
    assert 'rm -f "$APT_PROXY_CONF" "$APT_PROXY_DETECT"' in (SCRIPTS / "seal.sh").read_text()


def test_rendered_templates_carry_the_variable_not_an_address(tmp_path):
    from builder import spec
    from builder.bake import render, template

    s = spec.load(ROOT / "tests" / "specs" / "golden.yaml")
    qemu, aws = render.render(s, ["qemu", "aws"], None, base=tmp_path)
    image = (qemu.directory / template.template_name(s)).read_text()
    layer = (qemu.directory / template.LAYER_DIR / template.template_name(s)).read_text()
    for text in (image, layer):
        assert "DJBAKE_APT_PROXY=${var.apt_proxy}" in text and "10.0.2.2" not in text
    assert "APT_PROXY" not in (aws.directory / template.template_name(s)).read_text()


# -- the real cache -------------------------------------------------------------

def _tar(files: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for arc, path in files.items():
            tar.add(str(path), arcname=arc)
    return buf.getvalue()


@pytest.mark.parametrize("slow", [False, True], ids=["answering", "slow-to-answer"])
def test_the_cache_starts_before_the_bridge_exists_and_follows_it(tmp_path, slow):
    """A fresh machine: `make image` starts the cache before any dockerd made docker0. The script
    once died on that bridge lookup with nothing said, and every build went without the cache. Real
    apt-cacher-ng and `ip`, in a network namespace of the test's own (unshare), where a bridge made
    there stands for the docker0 that appears later: the cache starts on loopback, and a second start
    restarts it listening on the bridge too, so docker builds reach it. slow-to-answer: the daemon is
    paused (SIGSTOP) for 5 s over the second start, as a loaded CI machine made its report page miss
    the 3 s probe; the script then once skipped the bridge check and said it listened on the bridge."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("apt-cacher-ng") is None:
        pytest.skip("needs root, unshare and apt-cacher-ng (make test installs it; CI runs as root)")
    port = free_port()
    env = dict(os.environ, DJBAKE_APT_CACHE_PORT=str(port), DJBAKE_APT_CACHE_DIR=str(tmp_path / "cache"),
               DJBAKE_RUN_DIR=str(tmp_path / "run"), DJBAKE_DOCKER_BRIDGE="djbakebr0")
    host = SCRIPTS / "host"
    report = f"http://{{}}:{port}/acng-report.html"
    pause = 'kill -STOP "$first"; (sleep 5; kill -CONT "$first") &\n' if slow else ""
    script = f"""
set -u
ip link set lo up
echo "== first: $(bash {host}/start-apt-cache.sh 2>&1 | tr "\\n" " "; echo "rc=${{PIPESTATUS[0]}}")"
curl -fsS --max-time 3 {report.format("127.0.0.1")} | grep -q 'Apt-Cacher NG' && echo "== answered on loopback"
first=$(cat {tmp_path}/run/apt-cacher-ng.pid)
ip link add djbakebr0 type bridge && ip addr add 10.199.0.1/24 dev djbakebr0 && ip link set djbakebr0 up
{pause}echo "== second: $(bash {host}/start-apt-cache.sh 2>&1 | tr "\\n" " "; echo "rc=${{PIPESTATUS[0]}}")"
curl -fsS --max-time 3 {report.format("10.199.0.1")} | grep -q 'Apt-Cacher NG' && echo "== answered on the bridge"
echo "== pids $first $(cat {tmp_path}/run/apt-cacher-ng.pid)"
echo "== third: $(bash {host}/start-apt-cache.sh 2>&1 | tr "\\n" " "; echo "rc=${{PIPESTATUS[0]}}")"
echo "== after third $(cat {tmp_path}/run/apt-cacher-ng.pid)"
bash {host}/stop-apt-cache.sh
echo "== stopped $(test -e /proc/$first || echo first-gone)"
"""
    out = subprocess.run(["unshare", "--net", "bash", "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    text = out.stdout + out.stderr
    lines = text.splitlines()
    first = next(line for line in lines if line.startswith("== first:"))
    assert "rc=0" in first and f"port {port}" in first and "10.199.0.1" not in first, text
    second = next(line for line in lines if line.startswith("== second:"))
    assert "restarting apt-cacher-ng to listen on djbakebr0 (10.199.0.1) too" in second and "rc=0" in second, text
    assert "10.199.0.1" in second.split("too", 1)[1], text     # the new one's own line names both
    _, _, old, new = next(line for line in lines if line.startswith("== pids")).split()
    assert old != new, text
    # Idempotent again once it answers on both: nothing restarted, nothing started. (It may say it
    # waited: under load the report page can miss the first probe's 3 s, and the one running is waited for.)
    third = next(line for line in lines if line.startswith("== third:"))
    assert third.endswith("rc=0") and "restarting" not in third, text
    assert next(line for line in lines if line.startswith("== after third")).split()[-1] == new, text
    assert "== answered on loopback" in lines and "== answered on the bridge" in lines, text
    assert "first-gone" in text and not Path(f"/proc/{new}").exists(), text


@pytest.mark.docker
def test_a_second_build_gets_its_packages_from_the_cache(tmp_path):
    if shutil.which("dockerd") is None or shutil.which("apt-cacher-ng") is None:
        pytest.skip("needs docker.io and apt-cacher-ng (make test installs both)")
    subprocess.run(["bash", str(SCRIPTS / "host" / "start-dockerd.sh")], check=True)
    from builder.docker import base_image as docker_base

    client = docker_client.connect()   # 600 s per API call: the SDK's default 60 s ran out under CI's load
    base = docker_base.ensure("debian-12", client=client, log=lambda s: None)
    port = free_port()
    env = dict(os.environ, DJBAKE_APT_CACHE_PORT=str(port), DJBAKE_APT_CACHE_DIR=str(tmp_path / "cache"),
               DJBAKE_RUN_DIR=str(tmp_path / "run"))
    started = subprocess.run(["bash", str(SCRIPTS / "host" / "start-apt-cache.sh")], env=env,
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    pid = int((tmp_path / "run" / "apt-cacher-ng.pid").read_text())
    try:
        # Idempotent: a second start finds it answering and starts nothing.
        again = subprocess.run(["bash", str(SCRIPTS / "host" / "start-apt-cache.sh")], env=env,
                               capture_output=True, text=True)
        assert again.returncode == 0 and int((tmp_path / "run" / "apt-cacher-ng.pid").read_text()) == pid
        gateway = docker_client.bridge_gateway(client)
        proxy = f"http://{gateway}:{port}"
        log = tmp_path / "cache" / "log" / "apt-cacher.log"
        payload = _tar({"djbake/lib.sh": SCRIPTS / "lib.sh"})
        script = ("set -e; . /djbake/lib.sh; apt_install hello >/dev/null; hello; "
                  "cat /etc/apt/apt.conf.d/00djbake-build-proxy; "
                  "DJBAKE_APT_PROXY= apt_use_cache; ls /etc/apt/apt.conf.d/")
        runs = []
        for n in range(2):
            # The log's resolution is a second: start each window in a second of its own.
            time.sleep(1.1)
            since = time.time()
            box = client.containers.create(base.reference, entrypoint=["/bin/bash", "-c", script],
                                           environment={"DJBAKE_APT_PROXY": proxy})
            try:
                box.put_archive("/", payload)
                box.start()
                code = box.wait(timeout=600)["StatusCode"]
                out = box.logs().decode(errors="replace")
            finally:
                box.remove(force=True)
            assert code == 0, out
            assert "Hello, world!" in out and 'Acquire::http::Proxy-Auto-Detect "/etc/apt/djbake-build-proxy-detect";' in out
            assert "does not answer" not in out
            assert "00djbake-build-proxy" not in out.rsplit(";", 1)[-1]   # removed again
            time.sleep(1.1)   # the last line of this run written
            runs.append(apt_cache.traffic(log, since, until=time.time()))
        first, second = runs
        assert first.packages_fetched >= 1 and first.packages_served >= 1, first
        assert second.packages_fetched == 0 and second.packages_served >= 1, second
        print(f"apt cache: first install fetched {first.fetched} B upstream, second {second.fetched} B "
              f"(served {second.served} B)")
        _cache_stopped_mid_build(client, base.reference, payload, proxy, env, log)
    finally:
        subprocess.run(["bash", str(SCRIPTS / "host" / "stop-apt-cache.sh")], env=env, check=True)
    assert not Path(f"/proc/{pid}").exists()


def _cache_stopped_mid_build(client, base: str, payload: bytes, proxy: str, env: dict, log: Path) -> None:
    """A build fetches its package lists through the cache, the cache is stopped, the build's next apt
    step installs from the mirror directly and says so (issue 20, point 6)."""
    script = ("set -e; . /djbake/lib.sh; apt_lists; touch /tmp/listed; "
              "while [ ! -e /tmp/go ]; do sleep 0.2; done; apt_install hello; hello")
    time.sleep(1.1)
    since = time.time()
    box = client.containers.create(base, entrypoint=["/bin/bash", "-c", script],
                                   environment={"DJBAKE_APT_PROXY": proxy})
    try:
        box.put_archive("/", payload)
        box.start()
        deadline = time.monotonic() + 300
        while box.exec_run(["test", "-e", "/tmp/listed"]).exit_code != 0:
            box.reload()
            assert box.status == "running" and time.monotonic() < deadline, box.logs().decode(errors="replace")
            time.sleep(0.5)
        time.sleep(1.1)
        through_cache = apt_cache.traffic(log, since, until=time.time())
        subprocess.run(["bash", str(SCRIPTS / "host" / "stop-apt-cache.sh")], env=env, check=True)
        box.exec_run(["touch", "/tmp/go"])
        code = box.wait(timeout=600)["StatusCode"]
        out = box.logs().decode(errors="replace")
    finally:
        box.remove(force=True)
    assert through_cache.files_served >= 1, through_cache          # the lists came through the cache
    assert code == 0 and "Hello, world!" in out, out
    assert f"the host's package cache at {proxy} does not answer: apt fetches from the mirror directly" in out
    assert f"[djbake apt] the host's package cache at {proxy} does not answer: fetching http://" in out
