"""`djbake launch --provider qemu`: a local VM from the newest verified qcow2.

The VM runs on an overlay disk backed by the catalogued image (the image
is never written; the VM keeps its own state across reboots), with a
NoCloud seed: an `admin` user with a key made for this VM, merged with the
user's own user-data if given. SSH and HTTP are forwarded to free local
ports. Its state lives in build/vms/<name>/ (vm.json: PID, ports, key);
`djbake launch --stop` powers it off (ACPI, then by PID) and removes it.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from builder import paths, safe_paths
from builder.errors import UserError
from builder.qemu import accel, overlay, vm

USER = "admin"


@dataclass
class Launched:
    name: str
    pid: int
    ssh_port: int
    http_port: int
    user: str
    key: str
    artifact: str
    directory: str
    probe_port: int = 0   # host port forwarded to the guest's firewall-probe port (vm.PROBE_GUEST_PORT), TCP and UDP

    def describe(self) -> str:
        return "\n".join([
            f"VM {self.name} is running (PID {self.pid}) from {self.artifact}",
            f"  ssh:  ssh -i {self.key} -p {self.ssh_port} -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null {self.user}@127.0.0.1",
            f"  http: http://127.0.0.1:{self.http_port}/",
            f"  stop: djbake launch --provider qemu --stop --name {self.name}   (or: kill {self.pid})",
        ])


def state_file(name: str) -> Path:
    return paths.vms_dir() / name / "vm.json"


def load(name: str) -> Launched | None:
    try:
        return Launched(**json.loads(state_file(name).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def start(artifact: Path, name: str, user_data: str | None = None, cpus: int = 2, memory_mb: int = 2048,
          wait: bool = True, timeout: float = 900) -> Launched:
    if not artifact.is_file():
        raise UserError(f"the catalogued image {artifact} no longer exists",
                        hint="make image PROVIDER=qemu, or djbake images to see what is recorded")
    current = load(name)
    if current and vm.pid_alive(current.pid):
        raise UserError(f"VM {name} is already running (PID {current.pid})",
                        hint=f"djbake launch --provider qemu --stop --name {name}")
    directory = paths.vms_dir() / safe_paths.check_vm_name(name)
    safe_paths.remove(directory, paths.vms_dir())  # only a directory djbake made there
    safe_paths.make(directory)
    disk = directory / "disk.qcow2"
    overlay.create(artifact, disk)
    key = directory / "id_ed25519"
    public = vm.new_key(key, comment=f"djbake-launch-{name}")
    seed = vm.write_seed_dir(directory / "seed", vm.merge_user_data(vm.user_config(USER, public), user_data),
                             instance_id=f"djbake-{name}-{secrets.token_hex(4)}", hostname=name)
    iso = vm.seed_iso(seed, directory / "seed.iso")
    machine = vm.VM(name, disk, iso, cpus=cpus, memory_mb=memory_mb, accelerator=accel.resolve().accelerator,
                    workdir=directory)
    machine.start(daemonize=True)
    launched = Launched(name, machine.pid or 0, machine.ssh_port, machine.http_port, USER, str(key),
                        str(artifact.resolve()), str(directory), machine.probe_port)
    state_file(name).write_text(json.dumps(launched.__dict__, indent=2) + "\n")
    if wait:
        try:
            machine.wait_for_ssh(USER, key, timeout)
        except BaseException:
            stop(name)
            raise
    return launched


def stop(name: str, keep: bool = False) -> Launched | None:
    """Power the VM off (ACPI, 60 s), then by PID; remove its directory unless keep."""
    current = load(name)
    if current is None:
        return None
    directory = Path(current.directory)
    machine = vm.VM(name, directory / "disk.qcow2", None, workdir=directory, pid=current.pid)
    machine.stop(graceful_seconds=60)
    if not keep:  # vm.json says where: removed only if djbake made it inside its VM directory
        safe_paths.remove(directory, paths.vms_dir())
    return current


def running() -> list[Launched]:
    out = []
    for f in sorted(paths.vms_dir().glob("*/vm.json")):
        item = load(f.parent.name)
        if item and vm.pid_alive(item.pid):
            out.append(item)
    return out
