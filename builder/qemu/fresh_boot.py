"""Fresh-boot verification of a qcow2: what a user's first VM will see.

The image is booted twice, as two new VMs (`-snapshot`: the artifact is
never written), each with a NoCloud seed like a user's: a `verify` user
with a key made for this run, and a `write_files` marker that proves the
user-data was applied. On the first VM the whole testinfra suite runs
(every marker, fresh_boot included, through builder/bake/gate.py). Across the
two, djbake checks what only two boots can show: SSH host keys,
machine-id and the per-VM secrets differ. On both, Django must answer 200
through nginx on the forwarded HTTP port.

Both VMs boot at once (1 vCPU each on a 2-core host). Every QEMU started
here is stopped by its PID whatever happens.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from builder.bake import gate
from builder.providers.base import Verification
from builder.qemu import accel, vm

if TYPE_CHECKING:   # builder.spec imports every provider, and providers/qemu.py imports this module
    from builder.spec import Spec

USER = "verify"
MARKER = "/var/lib/djbake-verify/marker"
BOOT_TIMEOUT = 900
READY_TIMEOUT = 600
HTTP_TIMEOUT = 180

# Per-VM facts, read over SSH. Secrets are hashed inside the VM: only
# digests ever leave it (and reach logs and the catalog).
FACTS = {
    "machine_id": "cat /etc/machine-id",
    "host_keys": "cat /etc/ssh/ssh_host_*_key.pub | awk '{print $1, $2}' | sort | sha256sum | cut -c1-64",
    "secret_key": "sudo sh -c 'djbake-env get DJANGO_SECRET_KEY 2>/dev/null || "
                  "sed -n s/^DJANGO_SECRET_KEY=//p /etc/djbake/app.env' | sha256sum | cut -c1-64",
    "db_password": "sudo sh -c 'djbake-env get DJANGO_DB_PASSWORD 2>/dev/null || "
                   "sed -n s/^DJANGO_DB_PASSWORD=//p /etc/djbake/app.env' | sha256sum | cut -c1-64",
    "marker": f"sudo cat {MARKER}",
    "cloud_init": "sudo cloud-init status --wait >/dev/null 2>&1; sudo cloud-init status | sed -n 's/^status: //p'",
    "system": "systemctl is-system-running --wait 2>/dev/null || true",
}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_LINE_SHA256 = hashlib.sha256(b"\n").hexdigest()


def seed_config(public_key: str, token: str) -> dict:
    """A user's kind of user-data: a user with a key, and a file written by cloud-init."""
    return vm.user_config(USER, public_key, write_files=[
        {"path": MARKER, "content": token + "\n", "permissions": "0600", "owner": "root:root"},
    ])


def _make_vm(name: str, disk: Path, workdir: Path, accelerator: str, memory_mb: int) -> tuple[vm.VM, Path, str]:
    key = workdir / f"{name}.key"
    public = vm.new_key(key, comment=f"djbake-{name}")
    token = secrets.token_hex(16)
    seed = vm.write_seed_dir(workdir / f"{name}.seed", vm.cloud_config_text(seed_config(public, token)),
                             instance_id=f"djbake-{name}-{secrets.token_hex(4)}", hostname=name)
    iso = vm.seed_iso(seed, workdir / f"{name}.seed.iso")
    machine = vm.VM(name, disk, iso, cpus=1, memory_mb=memory_mb, accelerator=accelerator, snapshot=True,
                    workdir=workdir)
    return machine, key, token


def http_status(port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = 15) -> int:
    req = urllib.request.Request(f"http://{host}:{port}{path}", headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_http(port: int, timeout: float = HTTP_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        status = http_status(port)
        if status == 200:
            return status
        time.sleep(3)
    return status


def facts(machine: vm.VM, key: Path) -> dict[str, str]:
    out = {}
    for name, command in FACTS.items():
        proc = machine.ssh(USER, key, command, timeout=READY_TIMEOUT)
        out[name] = proc.stdout.strip()
    return out


def compare(a: dict[str, str], b: dict[str, str], tokens: tuple[str, str], database: str) -> dict[str, dict]:
    """The first-boot checks between two boots of the same image: name -> {ok, detail}."""
    def check(ok: bool, detail: str) -> dict:
        return {"ok": bool(ok), "detail": detail}

    empty = {"", EMPTY_SHA256, EMPTY_LINE_SHA256}
    checks = {
        "machine_id_differs": check(a["machine_id"] and b["machine_id"] and a["machine_id"] != b["machine_id"],
                                    "each boot has its own /etc/machine-id"),
        "host_keys_differ": check(a["host_keys"] not in empty and b["host_keys"] not in empty
                                  and a["host_keys"] != b["host_keys"], "each boot has its own SSH host keys"),
        "secret_key_differs": check(a["secret_key"] not in empty and b["secret_key"] not in empty
                                    and a["secret_key"] != b["secret_key"],
                                    "DJANGO_SECRET_KEY generated per VM (compared as sha256)"),
        "user_data_applied": check(a["marker"] == tokens[0] and b["marker"] == tokens[1],
                                   f"write_files marker {MARKER} holds each VM's token"),
        "cloud_init_done": check(a["cloud_init"] == "done" and b["cloud_init"] == "done",
                                 f"cloud-init status: {a['cloud_init']} / {b['cloud_init']}"),
        "system_running": check(a["system"] == "running" and b["system"] == "running",
                                f"systemctl is-system-running: {a['system']} / {b['system']}"),
    }
    if database == "postgresql":
        checks["db_password_differs"] = check(
            a["db_password"] not in empty and b["db_password"] not in empty and a["db_password"] != b["db_password"],
            "database password generated per VM (compared as sha256)")
    return checks


def fresh_boot(disk: Path, spec: Spec, workdir: Path, accelerator: str | None = None,
               note: Callable[[str], None] = print, run_suite: bool = True,
               memory_mb: int = 1536, build_user: str = "djbake") -> Verification:
    """Boot disk twice, test both VMs, stop both. The disk is never written."""
    started = time.monotonic()
    accelerator = accelerator or accel.resolve().accelerator
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    first, key_a, token_a = _make_vm("verify-a", disk, workdir, accelerator, memory_mb)
    second, key_b, token_b = _make_vm("verify-b", disk, workdir, accelerator, memory_mb)
    checks: dict[str, dict] = {}
    timings: dict[str, float] = {}
    try:
        with vm.running([first, second]):
            note(f"fresh boot: 2 VMs from {disk.name} ({accelerator}); SSH on ports "
                 f"{first.ssh_port}, {second.ssh_port}, HTTP on {first.http_port}, {second.http_port}")
            with ThreadPoolExecutor(2) as pool:
                try:
                    waits = [pool.submit(m.wait_for_ssh, USER, k, BOOT_TIMEOUT) for m, k in
                             ((first, key_a), (second, key_b))]
                    timings["ssh_a"], timings["ssh_b"] = (round(w.result(), 1) for w in waits)
                    note(f"fresh boot: SSH up after {timings['ssh_a']:.0f} s / {timings['ssh_b']:.0f} s")
                    got = [pool.submit(facts, m, k) for m, k in ((first, key_a), (second, key_b))]
                    fa, fb = got[0].result(), got[1].result()
                except BaseException:
                    # Interrupted: the waiters poll their VM (alive?) every few seconds; stopping the
                    # VMs now ends them, instead of the pool's exit waiting out BOOT_TIMEOUT.
                    for machine in (first, second):
                        machine.stop()
                    raise
            checks.update(compare(fa, fb, (token_a, token_b), spec.stack.database))
            if spec.stack.nginx:
                for label, machine in (("a", first), ("b", second)):
                    status = wait_http(machine.http_port)
                    checks[f"http_200_{label}"] = {"ok": status == 200,
                                                   "detail": f"GET / through nginx on the forwarded port: {status}"}
            timings["ready"] = round(time.monotonic() - started, 1)
            if run_suite:
                t = time.monotonic()
                checks.update(suites([(first, key_a), (second, key_b)], workdir, build_user))
                timings["suite"] = round(time.monotonic() - t, 1)
    except Exception as e:  # noqa: BLE001 - any failure here means "not verified", with the reason
        checks["boot"] = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
    failed = [name for name, c in checks.items() if not c["ok"]]
    passed = bool(checks) and not failed
    summary = "all fresh-boot checks passed" if passed else "failed: " + ", ".join(failed)
    result = Verification(passed, summary=summary, checks=checks | {"timings": timings},
                          seconds=time.monotonic() - started)
    (workdir / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    for key in (key_a, key_b):
        vm.delete_key(key)
    return result


def suites(machines: list[tuple[vm.VM, Path]], workdir: Path, build_user: str) -> dict[str, dict]:
    """The testinfra suite on both VMs at once, then builder.gate.compare_boots on their records.

    The first VM runs every check that holds on a VM. The second runs the per-VM ones (gate.SECOND_BOOT):
    the rest are about the disk, the same unwritten bytes on both. It is stopped when its suite ends,
    which gives the first VM's suite the host's other core (one vCPU each, software emulation here)."""
    def one(index: int) -> "gate.SuiteResult":
        machine, key = machines[index]
        result = gate.run_suite(host="127.0.0.1", port=machine.ssh_port, user=USER, key_file=str(key),
                                log_dir=workdir, name=f"suite-{machine.name}",
                                record=workdir / f"{machine.name}.record.json", fresh_boot=True,
                                second_boot=index > 0,
                                extra_env={"DJBAKE_BUILD_USER": build_user, vm.FORWARDS_ENV: machine.forwards()})
        if index > 0:
            machine.stop()
        return result

    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(one, i) for i in range(len(machines))]
        try:
            results = [run.result() for run in runs]
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the pool's exit waits for its workers, which wait for
            # their pytest processes; end those so the VMs are stopped now, not after the suites.
            gate.stop_running_suites()
            raise
    checks = {f"suite_{m.name}": {"ok": r.ok, "detail": r.summary} for (m, _), r in zip(machines, results)}
    records = []
    for machine, _ in machines:
        try:
            records.append(json.loads((workdir / f"{machine.name}.record.json").read_text()))
        except (OSError, ValueError):
            records.append({})
    problems = gate.compare_boots(*records[:2])
    checks["suite_boots_differ"] = {"ok": not problems, "detail": "; ".join(problems) or
                                    "host keys, machine-id and secret hashes recorded by the suite differ"}
    return checks
