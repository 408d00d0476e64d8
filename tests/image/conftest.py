"""The image verification suite (pytest-testinfra), run against a host given with --hosts.

Markers say *when* a check is meaningful; the runner (builder/gate.py)
selects with -m:

- gate:       in the build VM/container after provisioning, before sealing
- fresh_boot: in a VM/container freshly booted from the sealed image
- sealed:     in the sealed image without booting it (docker: a container
              whose PID 1 is not systemd); nothing per-VM exists yet
- kernel:     needs a kernel of its own (swap, time sync): skipped on docker
- per_vm:     about what a boot makes or starts for its own VM (secrets,
              identity, first-boot units, services, the VM's address), as
              opposed to what the disk holds, which is the same bytes on
              every VM booted from it; the second fresh boot runs only these

Expectations come from /etc/djbake/build.env in the image (the DJBAKE_*
inputs it was built with), so the suite needs no spec. With
DJBAKE_RECORD=path (or --record path) the fresh-boot run writes the values
that must differ between two VMs (host key fingerprints, machine-id, hashes
of the secrets -- never the secrets) for builder.gate.compare_boots().
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import time

import pytest

from builder.bake import root_shell  # noqa: F401  (registers the backend the gate's --hosts names)
from builder.qemu import vm

MARKERS = {
    "gate": "runs in the in-build gate, before sealing",
    "fresh_boot": "needs a VM/container freshly booted from the sealed image",
    "sealed": "inspects the sealed image without booting it",
    "kernel": "needs a real kernel (swap, time sync, ...): skipped on docker",
    "per_vm": "about what a boot makes for its own VM: the second fresh boot runs only these",
}


def pytest_configure(config):
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_addoption(parser):
    parser.addoption("--record", default=os.environ.get("DJBAKE_RECORD"),
                     help="write per-VM identity values (hashed) to this JSON file")


def pytest_collection_modifyitems(config, items):
    # A check with no phase marker would silently never run in any phase.
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("gate", "fresh_boot", "sealed")):
            raise pytest.UsageError(f"{item.nodeid}: mark it gate, fresh_boot and/or sealed")


@pytest.fixture(autouse=True)
def _skip_kernel_in_container(request):
    # Also over SSH: the AWS test's stand-in for an EC2 instance is a container.
    if request.node.get_closest_marker("kernel") and request.getfixturevalue("in_container"):
        pytest.skip("needs a real kernel: a container shares the host's (swap, clock)")


class Facts:
    """What the image was built with, read from /etc/djbake/build.env."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def get(self, key: str, default: str = "") -> str:
        return self.env.get(f"DJBAKE_{key}", default)

    @property
    def database(self) -> str:
        return self.get("DATABASE", "postgresql")

    @property
    def local_db(self) -> bool:
        return self.database == "postgresql"

    @property
    def redis(self) -> bool:
        return self.get("REDIS", "0") == "1"

    @property
    def nginx(self) -> bool:
        return self.get("NGINX", "1") == "1"

    @property
    def certbot(self) -> bool:
        return self.get("CERTBOT", "1") == "1" and self.nginx

    @property
    def baked_app(self) -> bool:
        """A project from the spec's `app:` answers instead of the welcome project."""
        return bool(self.get("APP_SOURCE"))

    @property
    def build_tools(self) -> bool:
        """The spec kept the compiler and headers in the image (stack.build_tools)."""
        return self.get("BUILD_TOOLS", "0") == "1"

    @property
    def toolchain(self) -> list[str]:
        return self.get("TOOLCHAIN").split()

    @property
    def packages(self) -> list[str]:
        return self.get("PACKAGES").split()

    @property
    def provider(self) -> str:
        return self.get("PROVIDER")


def parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v
    return out


@pytest.fixture(scope="module")
def facts(host) -> Facts:
    # Without it every expectation would be a default (pins unchecked, the toolchain check skipped):
    # an image that lacks it fails every check that reads it.
    f = host.file("/etc/djbake/build.env")
    if not f.exists:
        pytest.fail("/etc/djbake/build.env is missing: the suite cannot know what the image was built with")
    return Facts(parse_env(f.content_string))


@pytest.fixture(scope="module")
def app_env(host) -> dict[str, str]:
    with host.sudo():
        return parse_env(host.file("/etc/djbake/app.env").content_string)


@pytest.fixture(scope="session")
def forwards() -> dict[int, int]:
    """guest port -> runner's port, for a VM reached through forwarded ports (QEMU user networking):
    the QEMU verifier and the end-to-end test name them in vm.FORWARDS_ENV (builder/qemu/vm.py
    `VM.forwards`); empty for every other host."""
    text = os.environ.get(vm.FORWARDS_ENV, "")
    return {int(k): int(v) for k, v in json.loads(text).items()} if text else {}


@pytest.fixture(scope="module")
def in_container(host) -> bool:
    return host.backend.NAME == "docker" or host.run("systemd-detect-virt --container --quiet").rc == 0


class Http:
    """curl inside the host: what nginx answers, no network path needed from the runner."""

    def __init__(self, host):
        self.host = host

    def get(self, path: str, host_header: str | None = "localhost", address: str = "127.0.0.1",
            headers: dict[str, str] | None = None, http10: bool = False):
        args = ["curl", "-sS", "-m", "20", "-o", "/tmp/djbake-http-body", "-D", "/tmp/djbake-http-headers",
                "-w", "%{http_code}"]
        if http10:
            args.append("-0")
        if host_header is None:
            args += ["-H", "Host:"]
        else:
            args += ["-H", f"Host: {host_header}"]
        for k, v in (headers or {}).items():
            args += ["-H", f"{k}: {v}"]
        addr = f"[{address}]" if ":" in address else address
        args.append(f"http://{addr}{path}")
        cmd = self.host.run(" ".join(shlex.quote(a) for a in args))
        body = self.host.run("cat /tmp/djbake-http-body 2>/dev/null").stdout
        raw_headers = self.host.run("cat /tmp/djbake-http-headers 2>/dev/null").stdout
        self.host.run("rm -f /tmp/djbake-http-body /tmp/djbake-http-headers")
        return Response(cmd.rc, cmd.stdout.strip(), raw_headers, body, cmd.stderr)


class Response:
    def __init__(self, curl_rc: int, code: str, raw_headers: str, body: str, stderr: str):
        self.curl_rc = curl_rc
        self.status = int(code) if code.isdigit() else 0
        self.body = body
        self.stderr = stderr
        self.headers: dict[str, list[str]] = {}
        for line in raw_headers.splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers.setdefault(k.strip().lower(), []).append(v.strip())

    def header(self, name: str) -> str:
        return ", ".join(self.headers.get(name.lower(), []))

    def __repr__(self) -> str:
        return f"<HTTP {self.status} curl rc={self.curl_rc} {self.stderr.strip()[:120]}>"


@pytest.fixture(scope="module")
def http(host) -> Http:
    return Http(host)


def show(host, unit: str, *props: str) -> dict[str, str]:
    """systemctl show's PROPS of UNIT as a dict."""
    out = host.check_output(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# How long a check waits for a service it restarted (kill -9, a restore) to serve again. Generous on
# purpose: the check is that it comes back, not how fast (the bench measures boot times). Under software
# emulation on CI's busy 2-core host gunicorn's restart alone took more than 60 s, and both fresh-boot
# VMs run their suites at once; a pass returns as soon as the predicate holds.
RESTART_SECONDS = 300


def wait_for(predicate, seconds: float = RESTART_SECONDS) -> bool:
    """Poll predicate every 2 s until it holds or seconds pass: a service restarted by a check
    (kill -9, a restore) takes its start-up time, minutes under emulation on a busy host."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(2)
    return False


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="session")
def record(request):
    """Collect per-VM values; written once at the end of the session."""
    values: dict[str, str] = {}
    yield values
    path = request.config.getoption("--record")
    if path and values:
        old = {}
        if os.path.exists(path):
            with open(path) as f:
                old = json.load(f)
        old.update(values)
        with open(path, "w") as f:
            json.dump(old, f, indent=2, sort_keys=True)
