"""Which QEMU accelerator to use: KVM only when a real boot under KVM works.

/dev/kvm may exist and still be unusable (no vmx/svm in a nested VM: QEMU
aborts setting an MSR, or hangs loading Linux), so the device node is no
answer. `resolve()` boots a Linux kernel under KVM for a few seconds and
looks for the kernel reaching userspace on the serial console; the answer
is cached per host (kernel, QEMU version, CPU flags). DJBAKE_ACCELERATOR
(kvm, tcg) overrides everything.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from builder.errors import UserError
from builder.paths import cache_root

CHOICES = ("kvm", "tcg")
ENV = "DJBAKE_ACCELERATOR"
PROBE_SECONDS = 45
# The kernel printed this: it ran its whole init and started userspace.
BOOTED = ("Run /init as init process", "Freeing unused kernel image", "Kernel panic - not syncing: VFS")


@dataclass(frozen=True)
class Choice:
    accelerator: str
    reason: str


def _cache_file() -> Path:
    return cache_root() / "accelerator.json"


def host_key() -> str:
    """What decides whether KVM works here: kernel, QEMU, CPU flags."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    try:
        qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True,
                              timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        qemu = "none"
    blob = json.dumps([platform.release(), qemu, flags])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def kvm_device_usable(path: str = "/dev/kvm") -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def probe(kernel: Path, initrd: Path | None, seconds: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Boot kernel under KVM; True when it reaches userspace within seconds."""
    with tempfile.TemporaryDirectory(prefix="djbake-kvm-probe-") as tmp:
        serial = Path(tmp) / "serial.log"
        cmd = ["qemu-system-x86_64", "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "512",
               "-display", "none", "-no-reboot", "-kernel", str(kernel),
               "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent rootwait=0",
               "-serial", f"file:{serial}"]
        if initrd:
            cmd[cmd.index("-kernel"):cmd.index("-kernel")] = ["-initrd", str(initrd)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + seconds
        ok, why = False, f"no Linux boot under KVM within {seconds:.0f} s"
        try:
            while time.monotonic() < deadline:
                text = serial.read_text(errors="replace") if serial.exists() else ""
                if any(marker in text for marker in BOOTED):
                    ok, why = True, "a Linux kernel booted under KVM"
                    break
                if proc.poll() is not None:
                    out = (proc.stdout.read() if proc.stdout else "").strip().splitlines()
                    why = f"qemu with KVM exited: {out[-1] if out else proc.returncode}"
                    break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
    return ok, why


def probe_kernel() -> tuple[Path, Path | None] | None:
    """A kernel to boot for the probe: the bootstrapped base's, or the host's own."""
    for kernel in sorted((cache_root() / "base").glob("*.vmlinuz"), key=lambda p: p.stat().st_mtime,
                         reverse=True):
        initrd = kernel.with_suffix(".initrd")
        return kernel, initrd if initrd.exists() else None
    boot = sorted(Path("/boot").glob("vmlinuz-*"))
    if boot:
        initrd = Path("/boot") / boot[-1].name.replace("vmlinuz", "initrd.img")
        return boot[-1], initrd if initrd.exists() else None
    return None


def resolve(requested: str = "auto", use_cache: bool = True) -> Choice:
    """The accelerator for a build or a VM: env override, explicit choice, or probed."""
    override = os.environ.get(ENV, "").strip().lower()
    if override and override != "auto":
        if override not in CHOICES:
            raise UserError(f"{ENV}={override!r}: expected one of {', '.join(CHOICES)} or auto")
        return Choice(override, f"{ENV}={override}")
    if requested != "auto":
        if requested not in CHOICES:
            raise UserError(f"accelerator {requested!r}: expected one of {', '.join(CHOICES)} or auto")
        return Choice(requested, "asked for")
    return detect(use_cache)


def detect(use_cache: bool = True) -> Choice:
    """Probe (or recall) whether KVM really boots Linux here; no environment override."""
    if not kvm_device_usable():
        return Choice("tcg", "/dev/kvm cannot be opened")
    key = host_key()
    cache = _cache_file()
    if use_cache:
        try:
            data = json.loads(cache.read_text())
            if data.get("host") == key:
                return Choice(data["accelerator"], data["reason"] + " (cached)")
        except (OSError, ValueError, KeyError):
            pass
    kernel = probe_kernel()
    if kernel is None:
        # Nothing to boot yet: don't cache, the next run may have a kernel.
        return Choice("tcg", "no kernel to probe KVM with")
    ok, why = probe(*kernel)
    choice = Choice("kvm" if ok else "tcg", why)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.write_text(json.dumps({"host": key, "accelerator": choice.accelerator, "reason": why}) + "\n")
    tmp.replace(cache)
    return choice


def probe_kvm() -> Choice:
    """For `djbake doctor`: the probed answer, ignoring DJBAKE_ACCELERATOR."""
    return detect()
