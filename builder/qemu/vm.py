"""Local QEMU VMs for verification and `djbake launch`: seeds, keys, ports, boot, SSH, stop.

Every VM started here is tracked by PID and stopped by PID; `running()`
is a context manager that stops it whatever happens.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml

from builder.errors import BuildFailed, UserError

CLOUD_INIT_FINISHED = re.compile(r"Cloud-init v\. \S+ finished at")
SSH_OPTIONS = (
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
)


# -- keys and seeds -----------------------------------------------------------

def new_key(path: Path, comment: str = "djbake") -> str:
    """A fresh ed25519 key pair at path (0600) and path.pub; returns the public key."""
    for p in (path, path.with_name(path.name + ".pub")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    os.chmod(path, 0o600)
    return path.with_name(path.name + ".pub").read_text().strip()


def delete_key(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def user_config(user: str, public_key: str, **extra) -> dict:
    """cloud-config that creates one user with this key and passwordless sudo; no password anywhere."""
    config = {
        "users": [{
            "name": user,
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,
            "ssh_authorized_keys": [public_key],
        }],
        "ssh_pwauth": False,
        "disable_root": True,
    }
    config.update(extra)
    return config


def cloud_config_text(config: dict) -> str:
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def merge_user_data(ours: dict, theirs: str | None) -> str:
    """Our access user plus a user's own user-data.

    A `#cloud-config` document is merged key by key (their `users`,
    `write_files`, `runcmd` and `packages` are appended after ours; their
    other keys win). Anything else (a shell script, a MIME archive) goes
    into a multipart archive beside our cloud-config, which cloud-init runs
    both of.
    """
    if not theirs:
        return cloud_config_text(ours)
    if theirs.lstrip().startswith("#cloud-config"):
        data = yaml.safe_load(theirs) or {}
        if not isinstance(data, dict):
            raise UserError("user-data: a #cloud-config document must be a mapping")
        merged = dict(ours)
        for key, value in data.items():
            if key in ("users", "write_files", "runcmd", "packages", "bootcmd") and isinstance(value, list):
                mine = merged.get(key, [])
                if key == "users" and "default" not in value and value and not mine:
                    mine = []
                merged[key] = [*mine, *value]
            else:
                merged[key] = value
        return cloud_config_text(merged)
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    archive = MIMEMultipart()
    part = MIMEText(cloud_config_text(ours), "cloud-config")
    part.add_header("Content-Disposition", 'attachment; filename="djbake.cfg"')
    archive.attach(part)
    subtype = "x-shellscript" if theirs.startswith("#!") else "plain"
    part = MIMEText(theirs, subtype)
    part.add_header("Content-Disposition", 'attachment; filename="user-data"')
    archive.attach(part)
    return archive.as_string()


def write_seed_dir(directory: Path, user_data: str, instance_id: str, hostname: str) -> Path:
    """A NoCloud seed as files: user-data and meta-data."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "user-data").write_text(user_data)
    meta = {"instance-id": instance_id, "local-hostname": hostname}
    (directory / "meta-data").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def seed_iso(directory: Path, iso: Path) -> Path:
    """The NoCloud seed as an ISO labelled `cidata` (genisoimage or xorriso)."""
    files = [str(directory / "user-data"), str(directory / "meta-data")]
    if shutil.which("genisoimage"):
        cmd = ["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock", *files]
    elif shutil.which("xorriso"):
        cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet",
               "-rock", *files]
    else:
        raise UserError("neither genisoimage nor xorriso is installed (needed for the NoCloud seed)",
                        hint="make deps")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildFailed(f"making the seed ISO failed: {proc.stderr.strip()}")
    return iso


# -- ports --------------------------------------------------------------------

# The guest port the image suite's firewall probe listens on (tests/image/test_network.py PROBE_PORT).
# Every VM forwards a spare host port to it, TCP and UDP, so that from the runner the probe is reached
# the way SSH and HTTP are: through slirp, entering the guest on its NIC, where nftables' input chain
# applies. The suite learns the host port from FORWARDS_ENV (builder/qemu/fresh_boot.py sets it).
PROBE_GUEST_PORT = 47113
FORWARDS_ENV = "DJBAKE_QEMU_FORWARDS"

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- booting ------------------------------------------------------------------

# A command prefix: the process it starts gets SIGTERM when the thread that started it ends.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "TERM", "--")


@dataclass
class VM:
    name: str
    disk: Path
    seed: Path | None
    ssh_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    probe_port: int = field(default_factory=free_port)
    cpus: int = 1
    memory_mb: int = 1024
    accelerator: str = "tcg"
    snapshot: bool = False
    workdir: Path | None = None
    pid: int | None = None
    started_at: float = 0.0
    proc: subprocess.Popen | None = None

    @property
    def serial_log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.name}.serial.log"

    @property
    def pidfile(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.name}.pid"

    @property
    def monitor(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.name}.monitor"

    def command(self, daemonize: bool = False) -> list[str]:
        cmd = [
            "qemu-system-x86_64", "-name", self.name, "-machine", f"pc,accel={self.accelerator}",
            "-cpu", "host" if self.accelerator == "kvm" else "max",
            "-smp", str(self.cpus), "-m", str(self.memory_mb), "-display", "none",
            "-drive", f"file={self.disk},if=virtio,format=qcow2",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,"
                       f"hostfwd=tcp:127.0.0.1:{self.http_port}-:80,"
                       f"hostfwd=tcp:127.0.0.1:{self.probe_port}-:{PROBE_GUEST_PORT},"
                       f"hostfwd=udp:127.0.0.1:{self.probe_port}-:{PROBE_GUEST_PORT}",
            "-device", "virtio-net-pci,netdev=n0",
            "-serial", f"file:{self.serial_log}",
            "-monitor", f"unix:{self.monitor},server,nowait",
            "-pidfile", str(self.pidfile),
        ]
        if self.seed:
            cmd += ["-drive", f"file={self.seed},media=cdrom,readonly=on"]
        if self.snapshot:
            cmd.append("-snapshot")
        if daemonize:
            cmd.append("-daemonize")
        return cmd

    def start(self, daemonize: bool = False) -> "VM":
        assert self.workdir is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        self.started_at = time.monotonic()
        if daemonize:
            proc = subprocess.run(self.command(daemonize=True), capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildFailed(f"qemu failed to start: {proc.stderr.strip()}")
            self.pid = int(self.pidfile.read_text().strip())
        else:
            # djbake's own VM (verification, bench): it ends with djbake, even when djbake is killed
            # outright (a harness's timeout sends SIGKILL), instead of running on without an owner.
            # util-linux's setpriv sets the parent-death signal, which exec keeps; it fires when the
            # thread that started the VM ends, and every caller stops its VMs before that.
            log = open(self.workdir / f"{self.name}.qemu.log", "w")
            self.proc = subprocess.Popen([*DIE_WITH_PARENT, *self.command()], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            self.pid = self.proc.pid
            time.sleep(0.5)
            if self.proc.poll() is not None:
                err = (self.workdir / f"{self.name}.qemu.log").read_text().strip()
                raise BuildFailed(f"qemu exited at once ({self.proc.returncode}): {err}")
        return self

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, graceful_seconds: float = 0) -> None:
        """Stop this VM by its PID: ACPI power-off first if asked, then SIGTERM, then SIGKILL.

        Once stopped, stopping again does nothing: the PID is forgotten, so a later call (running()'s
        exit after an early stop) cannot signal a process that has since been given the same PID."""
        if self.pid is None:
            return
        if graceful_seconds and self.alive():
            monitor_command(self.monitor, "system_powerdown")
            _wait(lambda: not self.alive(), graceful_seconds)
        kill_pid(self.pid, self.proc)
        self.pid = None
        with contextlib.suppress(FileNotFoundError):
            self.monitor.unlink()

    def forwards(self) -> str:
        """guest port -> host port of every forward, as the image suite reads it from FORWARDS_ENV."""
        return json.dumps({"22": self.ssh_port, "80": self.http_port, str(PROBE_GUEST_PORT): self.probe_port})

    def ssh_command(self, user: str, key: Path, *remote: str) -> list[str]:
        return ["ssh", *SSH_OPTIONS, "-i", str(key), "-p", str(self.ssh_port), f"{user}@127.0.0.1", *remote]

    def ssh(self, user: str, key: Path, command: str, timeout: float = 120,
            retries: int = 5) -> subprocess.CompletedProcess:
        """Run command over SSH. Exit 255 (no connection: sshd restarting at first boot) is retried."""
        for attempt in range(retries + 1):
            proc = subprocess.run(self.ssh_command(user, key, command), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
            if proc.returncode != 255 or attempt == retries or not self.alive():
                return proc
            time.sleep(5)
        return proc

    def cloud_init_finished(self) -> bool:
        """cloud-init said on the serial console that it finished (users and keys exist)."""
        try:
            return CLOUD_INIT_FINISHED.search(self.serial_log.read_text(errors="replace")) is not None
        except OSError:
            return False

    def wait_for_ssh(self, user: str, key: Path, timeout: float = 900) -> float:
        """Seconds from start until `true` runs over SSH as user.

        No login is tried before cloud-init has finished: until it created
        the user every try is a failed login, and the image's fail2ban bans
        the address they come from -- with user-mode networking that is the
        gateway every forwarded connection comes from, so SSH would be lost
        for good.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.cloud_init_finished():
            if not self.alive():
                raise BuildFailed(f"VM {self.name} stopped while booting; see {self.serial_log}")
            time.sleep(2)
        while time.monotonic() < deadline:
            if not self.alive():
                raise BuildFailed(f"VM {self.name} stopped while booting; see {self.serial_log}")
            try:
                if self.ssh(user, key, "true", timeout=30, retries=0).returncode == 0:
                    return time.monotonic() - self.started_at
            except subprocess.TimeoutExpired:
                pass
            time.sleep(3)
        raise BuildFailed(f"VM {self.name}: no SSH as {user} after {timeout:.0f} s; see {self.serial_log}")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def kill_pid(pid: int, proc: subprocess.Popen | None = None, grace: float = 10) -> None:
    if not pid_alive(pid) and proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if proc is not None:
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return
    if not _wait(lambda: not pid_alive(pid), grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: not pid_alive(pid), 10)


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def monitor_command(path: Path, command: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(path))
            s.sendall(command.encode() + b"\n")
            time.sleep(0.3)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def running(vms: list[VM]) -> Iterator[list[VM]]:
    """Start VMs and stop every one of them, by PID, whatever happens."""
    started: list[VM] = []
    try:
        for v in vms:
            started.append(v.start())
        yield started
    finally:
        for v in started:
            v.stop()


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
