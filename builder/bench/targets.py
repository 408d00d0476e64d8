"""Booting what the benchmark measures, per provider: the baked image, the bare base, the floor.

A target boots the built artifact until it answers HTTP 200 through
nginx, boots the bare base until it is reachable, and gives a `Session`
(builder/bench/probe.py) into each. Everything started here is stopped
here (containers by id, VMs by PID), whatever happens.

- qemu: the real thing. The baked qcow2 and the bootstrapped base boot as
  throw-away VMs (`-snapshot`) with a NoCloud seed like a user's; the base
  is "reachable" when SSH logs in.
- docker: containers with systemd as PID 1. The docker base has no sshd
  (a container image is entered with `docker exec`), so the base counts as
  reachable when systemd reports its boot finished. That is the honest
  equivalent and is named as a substitution in the report.
"""
from __future__ import annotations

import io
import secrets
import shlex
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from builder import paths, providers
from builder.bake import gate
from builder.bench import probe as bench_probe
from builder.docker import base_image as docker_base
from builder.docker import client as docker_client
from builder.errors import BuildFailed, UserError
from builder.qemu import accel, base_image, fresh_boot, vm
from builder.spec import Spec

HTTP_TIMEOUT = 1200    # TCG boots take minutes; a container seconds
FLOOR_WHEELS = "/tmp/djbake-floor/wheels"
FLOOR_VENV = "/tmp/djbake-floor/venv"
FLOOR_UV = "/tmp/djbake-floor/uv"


def floor_script(packages: list[str], apt_proxy: str = "") -> str:
    """The plain script the floor runs on the bare base: the image's packages, the pinned wheels."""
    names = " ".join(shlex.quote(p) for p in sorted(packages))
    setting = 'Acquire::http::Proxy "%s";' % apt_proxy
    proxy = [f"echo {shlex.quote(setting)} >/etc/apt/apt.conf.d/00bench-proxy"] if apt_proxy else []
    return "\n".join([
        "set -eu",
        "export DEBIAN_FRONTEND=noninteractive",
        *proxy,
        "apt-get -q update >/dev/null",
        f"apt-get -q -y --no-install-recommends install {names} >/dev/null" if names else ":",
        # The wheels go in as the build puts them in (python.sh): uv's binary taken
        # from its wheel, a venv without pip, bytecode compiled. A floor with
        # `python3 -m venv` and pip would take minutes more under TCG and flatter the ratio.
        f"python3 -c {shlex.quote(paths.UV_FROM_WHEEL.read_text())} {FLOOR_WHEELS}/uv-*.whl {FLOOR_UV}",
        "export UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 UV_NO_PROGRESS=1",
        f"{FLOOR_UV} venv -q --python /usr/bin/python3 {FLOOR_VENV}",
        f"{FLOOR_UV} pip install -q --compile-bytecode --python {FLOOR_VENV}/bin/python --no-index "
        f"--find-links {FLOOR_WHEELS} -r {FLOOR_WHEELS}/requirements.txt",
    ])


def dir_tar(src: Path, dest: str) -> bytes:
    """src's files as a tar that unpacks at / into dest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(src.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                tar.add(str(path), arcname=f"{dest.lstrip('/')}/{path.name}")
    return buf.getvalue()


def sh(command: str) -> list[str]:
    return ["sh", "-c", command]


# -- docker -------------------------------------------------------------------

class DockerSession:
    transport = "docker exec"

    def __init__(self, container):
        self.container = container

    def run(self, command: str, timeout: float = 600) -> tuple[int, str]:
        # exec_run has no timeout of its own; the command's `timeout` bounds it.
        code, out = self.container.exec_run(["timeout", str(int(timeout)), *sh(command)])
        return code, out.decode(errors="replace")

    def gate_target(self) -> gate.Target:
        return gate.Target(container=self.container.id)

    def put_tar(self, data: bytes) -> None:
        if not self.container.put_archive("/", data):
            raise BuildFailed("could not copy files into the container")


class DockerTarget:
    provider = "docker"
    base_ready_what = "systemd boot finished (`systemctl is-system-running`)"
    size_what = "docker image, uncompressed layers"
    substitutions = [
        "Base reachable: the docker base image has no SSH server (containers are entered with `docker exec`), "
        "so the bare base counts as up when systemd says its boot finished; the baked image is timed to "
        "HTTP 200 from nginx on the container's bridge address.",
        "Image size: a docker image is no qcow2; its size is the engine's uncompressed size of all layers.",
        "Bootstrap: the docker base (mmdebstrap rootfs + docker import) is rebuilt and timed before the full "
        "build, which then reuses it.",
        "Lynis and the port listing run in containers: kernel and boot-loader tests of Lynis see the host's "
        "kernel or nothing, so they count for neither image or equally for both.",
        "OpenSCAP in containers: ComplianceAsCode marks its machine-only rules (kernel parameters, boot loader, "
        "partitions, audit) notapplicable where /.dockerenv exists, so a container's counts cover fewer rules "
        "than a VM's.",
    ]

    def __init__(self):
        self.client = docker_client.connect()

    def bootstrap(self, spec: Spec, note=print) -> float:
        t = time.monotonic()
        docker_base.ensure(spec.os, rebuild=True, client=self.client, log=note)
        return time.monotonic() - t

    def image_bytes(self, artifact: str) -> int:
        return int(self.client.images.get(artifact).attrs["Size"])

    @contextmanager
    def _container(self, image: str, purpose: str):
        box = self.client.containers.run(image, detach=True, labels={docker_base.LABEL: purpose},
                                         **docker_base.RUN_KWARGS)
        try:
            yield box
        finally:
            docker_base.stop(box)

    @contextmanager
    def baked(self, artifact: str) -> Iterator[tuple[float, DockerSession]]:
        started = time.monotonic()
        with self._container(artifact, "bench-baked") as box:
            box.reload()
            ip = box.attrs["NetworkSettings"]["IPAddress"]
            seconds = seconds_to_http_200(lambda: fresh_boot.http_status(80, host=ip, timeout=5), started, box.reload)
            yield seconds, DockerSession(box)

    @contextmanager
    def base(self, spec: Spec) -> Iterator[tuple[float, DockerSession]]:
        started = time.monotonic()
        with self._container(docker_base.reference(spec.os), "bench-base") as box:
            state = docker_base.wait_booted(box, 300)
            if state not in ("running", "degraded"):
                raise BuildFailed(f"the docker base did not finish booting (systemd: {state})")
            yield time.monotonic() - started, DockerSession(box)


def seconds_to_http_200(status, started: float, alive=lambda: None, timeout: float = HTTP_TIMEOUT,
                        every: float = 1.0) -> float:
    """Seconds from started until status() is 200; alive() raises when the machine is gone."""
    last = 0
    while time.monotonic() - started < timeout:
        alive()
        last = status()
        if last == 200:
            return time.monotonic() - started
        time.sleep(every)
    raise BuildFailed(f"no HTTP 200 through nginx after {timeout:.0f} s (last status {last})")


# -- qemu ---------------------------------------------------------------------

class SSHSession:
    transport = "ssh"

    def __init__(self, machine, key: Path, user: str):
        self.machine, self.key, self.user = machine, key, user

    def run(self, command: str, timeout: float = 600) -> tuple[int, str]:
        cmd = self.machine.ssh_command(self.user, self.key, "sudo sh -c " + shlex.quote(command))
        return bench_probe.ssh_run(cmd, None, timeout)

    def gate_target(self) -> gate.Target:
        return gate.Target(host="127.0.0.1", port=self.machine.ssh_port, user=self.user, key_file=str(self.key))

    def put_tar(self, data: bytes) -> None:
        cmd = self.machine.ssh_command(self.user, self.key, "sudo tar -x -C /")
        code, out = bench_probe.ssh_run(cmd, data, 300)
        if code != 0:
            raise BuildFailed(f"could not copy files into the VM ({code}): {out[-300:]}")


class QemuTarget:
    provider = "qemu"
    base_ready_what = "SSH login"
    size_what = "compressed qcow2"
    substitutions: list[str] = []

    def __init__(self, workdir: Path, accelerator: str | None = None, memory_mb: int = 1536):
        self.workdir = workdir
        self.accelerator = accelerator
        self.memory_mb = memory_mb

    def _accelerator(self) -> str:
        if self.accelerator is None:
            self.accelerator = accel.resolve().accelerator
        return self.accelerator

    def bootstrap(self, spec: Spec, note=print) -> float:
        # The pipeline bootstraps the base itself (a fresh cache: see bench_run); its
        # "base image" step is inside the build's total.
        return 0.0

    def image_bytes(self, artifact: str) -> int:
        return Path(artifact).stat().st_size

    @contextmanager
    def _vm(self, disk: Path, name: str):
        machine, key, _ = fresh_boot._make_vm(f"{name}-{secrets.token_hex(3)}", disk, self.workdir,
                                          self._accelerator(), self.memory_mb)
        try:
            with vm.running([machine]):
                yield machine, key
        finally:
            vm.delete_key(key)

    @contextmanager
    def baked(self, artifact: str) -> Iterator[tuple[float, SSHSession]]:
        with self._vm(Path(artifact), "bench-baked") as (machine, key):
            seconds = seconds_to_http_200(lambda: fresh_boot.http_status(machine.http_port, timeout=5), machine.started_at,
                                lambda: _alive(machine), every=3)
            # Logins only after cloud-init made the user (fail2ban: see vm.wait_for_ssh).
            machine.wait_for_ssh(fresh_boot.USER, key)
            yield seconds, SSHSession(machine, key, fresh_boot.USER)

    @contextmanager
    def base(self, spec: Spec) -> Iterator[tuple[float, SSHSession]]:
        # The bare base: the bootstrap's own packages only, as a stock cloud image holds none of the
        # stack. The build's base also holds the stack layer's apt packages (installed natively at
        # bootstrap, inside the build's time); the floor installs them in the VM, as a plain script on a
        # stock image must. Bootstrapped into this run's cache here, outside any timed figure, as a
        # cloud's stock image is given.
        setting = providers.get("qemu")(spec).settings.source_image
        source = base_image.resolve(spec, setting, bare=True)
        if not Path(source.url).is_file():
            raise UserError(f"the bench boots the bare base locally; {source.url} is no local file",
                            hint="providers.qemu.source_image: bootstrap (or a local qcow2) in the spec")
        with self._vm(Path(source.url), "bench-base") as (machine, key):
            seconds = machine.wait_for_ssh(fresh_boot.USER, key)
            yield seconds, SSHSession(machine, key, fresh_boot.USER)


def _alive(machine) -> None:
    if not machine.alive():
        raise BuildFailed(f"VM {machine.name} stopped while booting; see {machine.serial_log}")


def for_provider(name: str, workdir: Path):
    if name == "docker":
        return DockerTarget()
    if name == "qemu":
        return QemuTarget(workdir)
    raise BuildFailed(f"`djbake bench` measures qemu or docker, not {name}")
