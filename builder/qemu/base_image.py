"""The base disk the qemu provider starts from.

Two sources, chosen by the spec's `providers.qemu.source_image`:

- `bootstrap`: a Debian qcow2 built here with mmdebstrap (kernel
  linux-image-cloud-amd64, GRUB on an MBR disk, systemd-networkd DHCP,
  openssh-server, cloud-init with NoCloud, sudo), and the apt packages the
  spec's stack layer installs (stack.preinstall: installed here natively,
  where the build VM under TCG took minutes per script). No download of a
  cloud image, so it works air-gapped with only the host's Debian mirror. It
  is cached under build/cache/base/ (DJBAKE_CACHE moves the cache) keyed by
  a hash of its inputs: recipe version, package list, mirrors and the chroot
  script's contents; the newest KEEP of an OS are kept. It is built into a
  temporary directory and renamed into place, so a half-built base is never
  used.
- unset: the official cloud image from tables.SOURCE_IMAGES (URL plus
  checksum; Packer downloads and checks it). An explicit URL or a local file
  path is used as given.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from builder import distro, locks, nodoc, paths, tables
from builder.bake import apt_cache
from builder.digest import sha256_file
from builder.errors import BuildFailed, UserError

# Bump when the way the disk is made changes in a way the inputs don't show.
RECIPE_VERSION = "1"
SETUP_SCRIPT = paths.DATA / "base-image.sh"
DISK_GB = 3          # Packer grows it to the spec's disk_size_gb; cloud-init grows the partition
PART_START = 2048    # sectors: 1 MiB, room for GRUB's core.img after the MBR
KEEP = 3             # newest bases of an OS kept: specs with other stack packages have bases of their own

PACKAGES = (
    "linux-image-cloud-amd64", "grub-pc", "initramfs-tools",
    "systemd", "systemd-sysv", "systemd-resolved", "udev", "dbus", "libpam-systemd",
    "openssh-server", "cloud-init", "cloud-guest-utils", "sudo",
    "ca-certificates", "iproute2", "iputils-ping", "netbase", "procps", "less",
    "apt-utils", "gnupg", "e2fsprogs", "kmod", "locales",
)

DEFAULT_MIRRORS = {"debian": "http://deb.debian.org/debian", "security": "http://deb.debian.org/debian-security"}
APT_SOURCES = Path("/etc/apt")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """What Packer's qemu builder boots: iso_url and iso_checksum."""

    url: str
    checksum: str
    bootstrapped: bool
    input_hash: str = ""
    built: bool = False          # False: a cached base was reused
    seconds: float = 0.0


# -- mirrors ---------------------------------------------------------------

def _host_source_entries(apt_dir: Path = APT_SOURCES) -> list[tuple[str, list[str]]]:
    """(uri, suites) of every `deb` entry in the host's apt configuration."""
    entries: list[tuple[str, list[str]]] = []
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 3 and words[0] == "deb":
                    rest = [w for w in words[1:] if not w.startswith("[")]
                    # Drop an options block like [arch=amd64 signed-by=...].
                    if "[" in line and "]" in line:
                        rest = line.split("]", 1)[1].split("#", 1)[0].split()
                    if len(rest) >= 2:
                        entries.append((rest[0], [rest[1]]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in path.read_text().split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        key, value = line.split(":", 1)
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and fields.get("uris"):
                    for uri in fields["uris"].split():
                        entries.append((uri, fields.get("suites", "").split()))
    return entries


def mirrors(apt_dir: Path = APT_SOURCES) -> dict[str, str]:
    """The Debian and Debian-security mirrors the host's apt uses.

    DJBAKE_DEBIAN_MIRROR / DJBAKE_DEBIAN_SECURITY_MIRROR override them; a
    host without Debian entries falls back to deb.debian.org.
    """
    found = dict(DEFAULT_MIRRORS)
    seen: set[str] = set()
    for uri, suites in _host_source_entries(apt_dir):
        uri = uri.rstrip("/")
        kind = "security" if any(s.endswith("-security") for s in suites) or uri.endswith("-security") else "debian"
        if kind in seen or not uri.startswith(("http://", "https://", "file:")):
            continue
        if kind == "debian" and not (uri.endswith("/debian") or "debian" in uri.rsplit("/", 1)[-1]):
            continue
        found[kind] = uri
        seen.add(kind)
    found["debian"] = os.environ.get("DJBAKE_DEBIAN_MIRROR") or found["debian"]
    found["security"] = os.environ.get("DJBAKE_DEBIAN_SECURITY_MIRROR") or found["security"]
    return found


def sources(codename: str, mirror: dict[str, str]) -> list[str]:
    return [
        f"deb {mirror['debian']} {codename} main",
        f"deb {mirror['debian']} {codename}-updates main",
        f"deb {mirror['security']} {codename}-security main",
    ]


# -- the bootstrapped base ---------------------------------------------------

def _os(os_name: str) -> tables.OS:
    os_ = tables.OPERATING_SYSTEMS[os_name]
    if not os_.bootstrappable:
        raise UserError(f"source_image: bootstrap: {os_name} cannot be bootstrapped here",
                        hint="remove providers.qemu.source_image to start from the official cloud image")
    return os_


def inputs(os_name: str, arch: str = "amd64", apt_dir: Path = APT_SOURCES, extra: tuple[str, ...] = ()) -> dict:
    """Everything that decides the base disk's contents; extra: packages beyond PACKAGES (Debian's names)."""
    if arch != "amd64":
        raise UserError(f"source_image: bootstrap builds amd64 only, not {arch}")
    os_ = _os(os_name)
    return {
        "recipe": RECIPE_VERSION,
        "os": os_name,
        "arch": arch,
        "packages": sorted(set(distro.packages(os_, PACKAGES + tuple(extra)))),
        "sources": distro.sources(os_, mirrors(apt_dir)),
        "setup_script": hashlib.sha256(SETUP_SCRIPT.read_bytes()).hexdigest(),
        "dpkg_excludes": nodoc.mmdebstrap_options(),
        "disk_gb": DISK_GB,
    }


def input_hash(os_name: str, arch: str = "amd64", apt_dir: Path = APT_SOURCES, extra: tuple[str, ...] = ()) -> str:
    blob = json.dumps(inputs(os_name, arch, apt_dir, extra), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached_path(os_name: str, digest: str) -> Path:
    return paths.cache_root() / "base" / f"{os_name}-{digest}.qcow2"


def kernel_files(base: Path) -> tuple[Path, Path] | None:
    """The kernel and initrd saved beside a bootstrapped base (the KVM probe boots them)."""
    kernel, initrd = base.with_suffix(".vmlinuz"), base.with_suffix(".initrd")
    return (kernel, initrd) if kernel.exists() and initrd.exists() else None


def ensure_bootstrap(os_name: str, arch: str = "amd64", rebuild: bool = False, log: Log = print,
                     extra: tuple[str, ...] = ()) -> Source:
    """The bootstrapped base of os_name holding PACKAGES and extra: cached, or built now."""
    digest = input_hash(os_name, arch, extra=extra)
    target = cached_path(os_name, digest)
    sums = target.with_suffix(".sha256")
    def cached() -> Source | None:
        if target.exists() and sums.exists() and not rebuild:
            return Source(str(target), "sha256:" + sums.read_text().split()[0], True, digest, built=False)
        return None

    if found := cached():
        return found
    if os.geteuid() != 0:
        raise UserError("building the bootstrap base image needs root (mmdebstrap, loop devices)",
                        hint="run as root once, or set providers.qemu.source_image to a cloud image")
    for tool in ("mmdebstrap", "qemu-img", "losetup", "partx", "mkfs.ext4"):
        if not shutil.which(tool):
            raise UserError(f"{tool} is not installed", hint="make deps")
    target.parent.mkdir(parents=True, exist_ok=True)
    with locks.exclusive(target.parent / ".bootstrap.lock", "waiting for another build's bootstrap of the base image",
                         log):
        # Another build may have made it while this one waited.
        if found := cached():
            return found
        # Holding the lock, any work directory is an interrupted bootstrap's.
        for stale in sorted(target.parent.glob(".bootstrap-*")):
            log(f"removing {stale.name}, left by an interrupted bootstrap")
            _discard(stale)
        started = time.monotonic()
        log(f"bootstrapping {os_name} base image {target.name} with mmdebstrap (inputs {digest})")
        work = Path(tempfile.mkdtemp(prefix=".bootstrap-", dir=target.parent))
        try:
            qcow2 = _build(os_name, work, log, extra)
            digest_file = sha256_file(qcow2)
            (work / "inputs.json").write_text(json.dumps(inputs(os_name, arch, extra=extra), indent=2,
                                                         sort_keys=True) + "\n")
            # Sidecars first, the disk last: the disk's presence means "complete".
            for suffix in (".vmlinuz", ".initrd"):
                os.replace(work / f"base{suffix}", target.with_suffix(suffix))
            os.replace(work / "inputs.json", target.with_suffix(".json"))
            sums.write_text(f"{digest_file}  {target.name}\n")
            os.replace(qcow2, target)
        finally:
            _discard(work)
    seconds = time.monotonic() - started
    log(f"base image ready in {seconds:.0f} s: {target}")
    _prune_old(target)
    return Source(str(target), f"sha256:{digest_file}", True, digest, built=True, seconds=seconds)


def _discard(work: Path) -> None:
    """Delete a bootstrap's work directory, after releasing what it has mounted and attached.

    Never deletes through a mount: the chroot has the host's /dev bind-mounted."""
    _release(work)
    left = _mounts_under(work)
    if left:
        raise BuildFailed(f"cannot unmount {left[0]}, so {work} is not deleted: unmount it "
                          f"(umount -R {left[-1]}), then delete the directory")
    shutil.rmtree(work, ignore_errors=True)


def _release(work: Path) -> None:
    """Unmount everything under work (deepest first) and detach loop devices backed by files in it."""
    for point in _mounts_under(work):
        _umount(point)
    listed = subprocess.run(["losetup", "--list", "--noheadings", "--raw", "--output", "NAME,BACK-FILE"],
                            capture_output=True, text=True)
    root = os.path.realpath(work) + "/"
    for line in listed.stdout.splitlines():
        name, _, back = line.partition(" ")
        if back.startswith(root):
            subprocess.run(["partx", "-d", name], capture_output=True)
            subprocess.run(["losetup", "-d", name], capture_output=True)


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below path, deepest first (from /proc/self/mountinfo)."""
    root = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # The mount point is field 5, with spaces and the like as octal escapes.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == root or point.startswith(root + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _prune_old(keep: Path, newest: int = KEEP) -> None:
    """Remove all but the newest bases of the same OS, never keep itself: a spec whose stack
    packages differ has a base of its own, and two specs built in turn must not evict each other's."""
    prefix = keep.name.rsplit("-", 1)[0] + "-"
    disks = [p for p in keep.parent.glob(prefix + "*.qcow2")
             if not p.name.startswith(".") and re.fullmatch(r"[0-9a-f]{16}", p.stem[len(prefix):])]
    disks.sort(key=lambda p: (p != keep, -p.stat().st_mtime))
    for old in disks[newest:]:
        for other in keep.parent.glob(old.stem + ".*"):
            with contextlib.suppress(OSError):
                other.unlink()


def _run(cmd: list[str], input: str | None = None, **kw) -> subprocess.CompletedProcess:
    """Run one tool of the bootstrap in a process group of its own. Interrupted (Ctrl-C
    reaches only djbake then), the whole group is stopped, mmdebstrap's apt and dpkg with
    it, before the work directory is unmounted and deleted."""
    popen = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else None,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)
    try:
        out, err = popen.communicate(input)
    except BaseException:
        _stop_group(popen)
        raise
    proc = subprocess.CompletedProcess(cmd, popen.returncode, out, err)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildFailed(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{tail}")
    return proc


def _stop_group(popen: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the group (mmdebstrap cleans up on it), then SIGKILL to whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(grace)
    # Leader gone or not, nothing of its group may outlive the bootstrap.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def mbr(total_sectors: int, start: int = PART_START) -> bytes:
    """A DOS partition table with one bootable Linux partition filling the disk."""
    size = total_sectors - start
    entry = bytes([0x80, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF])
    entry += start.to_bytes(4, "little") + size.to_bytes(4, "little")
    table = bytearray(512)
    table[440:444] = os.urandom(4)  # disk signature
    table[446:462] = entry
    table[510:512] = b"\x55\xaa"
    return bytes(table)


def _build(os_name: str, work: Path, log: Log, extra: tuple[str, ...] = ()) -> Path:
    os_ = _os(os_name)
    distro.require_reachable(os_)
    distro.ensure_keyring(os_, log)
    rootfs = work / "rootfs"
    # Unique, in order: mmdebstrap hands the list to apt as given.
    include = ",".join(dict.fromkeys(distro.packages(os_, PACKAGES + tuple(extra))))
    cmd = ["mmdebstrap", "--variant=minbase", f"--include={include}",
           *distro.mmdebstrap_options(os_), *nodoc.mmdebstrap_options(), "--aptopt=Acquire::Retries \"3\"",
           os_.codename, str(rootfs),
           *distro.sources(os_, mirrors())]
    t = time.monotonic()
    _run(cmd, env=apt_cache.host_env(log))
    log(f"  mmdebstrap: {time.monotonic() - t:.0f} s")
    raw = work / "disk.raw"
    total = DISK_GB * 1024 * 1024 * 2
    with open(raw, "wb") as f:
        f.truncate(total * 512)
        f.write(mbr(total))
    with _loop(raw) as (disk, part):
        uuid = _run(["uuidgen"]).stdout.strip() if shutil.which("uuidgen") else _uuid()
        _run(["mkfs.ext4", "-q", "-L", "root", "-U", uuid, part])
        mnt = work / "mnt"
        mnt.mkdir()
        with _mounted(part, mnt):
            _run(["cp", "-a", f"{rootfs}/.", str(mnt)])
            shutil.rmtree(rootfs)
            with _chroot_mounts(mnt, disk):
                script = SETUP_SCRIPT.read_text()
                _run(["chroot", str(mnt), "/bin/sh", "-s"], input=script,
                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DJBAKE_DISK": disk, "DJBAKE_ROOT_UUID": uuid,
                          "LC_ALL": "C"})
            kernel = sorted(glob.glob(str(mnt / "boot" / "vmlinuz-*")))
            initrd = sorted(glob.glob(str(mnt / "boot" / "initrd.img-*")))
            if not kernel or not initrd:
                raise BuildFailed("the bootstrapped base has no kernel or initrd in /boot")
            shutil.copy(kernel[-1], work / "base.vmlinuz")
            shutil.copy(initrd[-1], work / "base.initrd")
    qcow2 = work / "base.qcow2"
    t = time.monotonic()
    _run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)])
    raw.unlink()
    log(f"  qcow2 (compressed): {qcow2.stat().st_size / 2**20:.0f} MiB in {time.monotonic() - t:.0f} s")
    return qcow2


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


@contextlib.contextmanager
def _loop(raw: Path) -> Iterator[tuple[str, str]]:
    disk = _run(["losetup", "--find", "--show", "--partscan", str(raw)]).stdout.strip()
    try:
        part = f"{disk}p1"
        if not _wait_for(part):
            subprocess.run(["partx", "-a", disk], capture_output=True)
        if not _wait_for(part):
            raise BuildFailed(f"no partition device {part} appeared for {disk}")
        yield disk, part
    finally:
        subprocess.run(["partx", "-d", disk], capture_output=True)
        subprocess.run(["losetup", "-d", disk], capture_output=True)


def _wait_for(path: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.2)
    return os.path.exists(path)


@contextlib.contextmanager
def _mounted(device: str, where: Path, *options: str) -> Iterator[None]:
    _run(["mount", *options, device, str(where)])
    try:
        yield
    finally:
        _umount(where)


def _umount(where: Path) -> None:
    for _ in range(5):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
            return
        time.sleep(1)
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextlib.contextmanager
def _chroot_mounts(root: Path, disk: str) -> Iterator[None]:
    done: list[Path] = []
    try:
        for args in (["--bind", "/dev"], ["-t", "proc", "proc"], ["-t", "sysfs", "sysfs"]):
            where = root / args[-1].lstrip("/")
            where.mkdir(exist_ok=True)
            _run(["mount", *args, str(where)])
            done.append(where)
        yield
    finally:
        for where in reversed(done):
            _umount(where)


# -- choosing the source -----------------------------------------------------

def resolve(spec, setting: str | None, rebuild: bool = False, log: Log = print, bare: bool = False) -> Source:
    """The qemu source for a spec: bootstrapped, a given URL/file, or the OS table's cloud image.
    bare: a bootstrapped base of PACKAGES only, without the stack layer's packages (the bench's floor)."""
    if setting == "bootstrap":
        from builder.bake import stack  # here: builder.spec loads the providers (this module) and stack needs Spec

        extra = () if bare else stack.preinstall(spec)
        return ensure_bootstrap(spec.os, spec.arch, rebuild=rebuild, log=log, extra=extra)
    if setting:
        if setting.startswith(("http://", "https://")):
            return Source(setting, "none", False)
        path = Path(setting).expanduser()
        if not path.exists():
            raise UserError(f"providers.qemu.source_image: no such file {setting}")
        return Source(str(path.resolve()), f"sha256:{sha256_file(path)}", False)
    image = tables.SOURCE_IMAGES["qemu"][spec.os]
    return Source(image["url"].format(arch=spec.arch), image["checksum"], False)
