"""The base image of the docker provider: Debian from packages, systemd as PID 1.

No registry can be reached here, so the base is built locally: mmdebstrap
writes a minbase rootfs tarball and the Docker engine imports it. It stands
in for a cloud image: systemd, dbus and the few tools every cloud image has,
nothing of the Django stack (the scripts install that, as on a VM).

The image is labelled with the hash of everything that goes into it and
reused while that hash is unchanged, so the fast loop pays the ~30 s only
once.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder import distro, nodoc, paths, tables
from builder.bake import apt_cache
from builder.docker import client as client_mod
from builder.errors import BuildFailed, UserError

MIRROR = "http://deb.debian.org"
HASH_LABEL = "djbake.base-input-hash"
# Bump when the way the rootfs is made changes in a way the inputs don't show.
RECIPE_VERSION = "3"

# A cloud image's baseline: an init system, a bus, networking tools, certs.
INCLUDE = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "ca-certificates",
    "iproute2", "procps", "less", "sudo", "apt-utils", "gnupg",
)
# Units that make no sense in a container and only slow or break its boot.
MASK = (
    "getty@tty1.service", "console-getty.service", "serial-getty@.service",
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-modules-load.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "systemd-firstboot.service",
    # Debian 13 and Ubuntu 26.04 mount a tmpfs on /tmp at boot (tmp.mount): in a container it
    # would hide what Packer has already uploaded to /tmp.
    "tmp.mount",
)
# /sbin/init boots systemd. (`docker import`/`commit` refuse STOPSIGNAL, so
# whoever stops such a container sends SIGRTMIN+3 itself: see stop().)
CHANGES = (
    'ENTRYPOINT ["/sbin/init"]',
    "ENV container=docker",
)
# PID 1 for releases whose systemd needs cgroup v2 (distro.needs_cgroup2):
# data/container-init.sh, which gives systemd a cgroup2 of its own on a
# cgroup v1 host and is plain /sbin/init elsewhere.
CGROUP2_INIT = "/usr/local/sbin/djbake-init"
CGROUP2_INIT_SCRIPT = paths.DATA / "container-init.sh"


def init_path(os_name: str) -> str:
    """The container's PID 1 for os_name's images."""
    return CGROUP2_INIT if distro.needs_cgroup2(_os(os_name)) else "/sbin/init"


def changes(os_name: str) -> tuple[str, ...]:
    return tuple(f'ENTRYPOINT ["{init_path(os_name)}"]' if c.startswith("ENTRYPOINT") else c for c in CHANGES)


@dataclass(frozen=True)
class BaseImage:
    os: str
    reference: str      # repository:tag
    input_hash: str
    built: bool          # False: an existing image was reused


def _os(os_name: str) -> tables.OS:
    os_ = tables.OPERATING_SYSTEMS.get(os_name)
    if os_ is None or not os_.bootstrappable:
        raise UserError(f"no local docker base for {os_name}: only bootstrappable releases can be built here",
                        hint="use os: debian-12 for the docker provider")
    return os_


def reference(os_name: str) -> str:
    return tables.SOURCE_IMAGES["docker"][os_name]["image"]


def sources(os_: tables.OS) -> list[str]:
    """Release, updates and security: the same suites a cloud image has."""
    return distro.sources(os_, {"debian": f"{MIRROR}/debian", "security": f"{MIRROR}/debian-security"})


def mmdebstrap_command(os_name: str, out: Path) -> list[str]:
    os_ = _os(os_name)
    cmd = ["mmdebstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}",
           "--customize-hook=" + _customize_hook(), *_init_hooks(os_), *distro.mmdebstrap_options(os_),
           *nodoc.mmdebstrap_options(),
           os_.codename, str(out)]
    # Several mirror lines: mmdebstrap takes them as extra positional arguments.
    return cmd + sources(os_)


def _init_hooks(os_: tables.OS) -> list[str]:
    """Hooks only some releases need (none for Debian 12: its base's inputs stay as they were)."""
    hooks = []
    if distro.needs_cgroup2(os_):
        hooks += [f"--customize-hook=upload {CGROUP2_INIT_SCRIPT} {CGROUP2_INIT}",
                  f'--customize-hook=chmod 0755 "$1{CGROUP2_INIT}"']
    return hooks


def _customize_hook() -> str:
    """Run in the finished rootfs ("$1"): container-friendly systemd, no unique state."""
    masks = " ".join(MASK)
    return (
        f'chroot "$1" systemctl mask {masks} >/dev/null 2>&1; '
        # machine-id is generated at each container's first boot, as on a VM.
        ': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"; '
        # Packer uploads to /tmp the moment the container starts, while
        # systemd-tmpfiles may still be emptying /tmp for the boot (Debian's
        # tmp.conf: `D /tmp`): keep /tmp, as a container's /tmp always is.
        'echo "d /tmp 1777 root root -" > "$1/etc/tmpfiles.d/tmp.conf"'
    )


def input_hash(os_name: str) -> str:
    recipe = {
        "recipe": RECIPE_VERSION,
        "command": mmdebstrap_command(os_name, Path("ROOTFS")),
        "changes": changes(os_name),
    }
    if distro.needs_cgroup2(_os(os_name)):
        recipe["init"] = hashlib.sha256(CGROUP2_INIT_SCRIPT.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def existing(client, ref: str):
    import docker

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def ensure(os_name: str = "debian-12", rebuild: bool = False, client=None, log=print) -> BaseImage:
    """Return the base image for os_name, building it only when missing or stale."""
    ref = reference(os_name)
    want = input_hash(os_name)
    client = client or client_mod.connect()
    image = existing(client, ref)
    if image is not None and not rebuild and (image.labels or {}).get(HASH_LABEL) == want:
        return BaseImage(os_name, ref, want, built=False)
    distro.require_reachable(_os(os_name))
    distro.ensure_keyring(_os(os_name), log)
    log(f"building docker base image {ref} (input hash {want}) with mmdebstrap")
    repo, tag = ref.rsplit(":", 1)
    with tempfile.TemporaryDirectory(prefix="djbake-base-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        cmd = mmdebstrap_command(os_name, tar)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=apt_cache.host_env(log))
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.splitlines()[-15:])
            raise BuildFailed(f"mmdebstrap failed ({proc.returncode}):\n{tail}")
        labelled = [*changes(os_name), f'LABEL {HASH_LABEL}="{want}" djbake.os="{os_name}"']
        client.api.import_image(src=str(tar), repository=repo, tag=tag, changes=labelled)
    if existing(client, ref) is None:
        raise BuildFailed(f"docker import of {ref} reported no error but the image is missing")
    return BaseImage(os_name, ref, want, built=True)


# -- systemd containers: the build container, the verify container, the fast loop --

# What a container needs to run systemd as PID 1 and the stack's services
# (nftables, fail2ban, PostgreSQL). Not --privileged: our CI hosts lack
# CAP_SYS_RESOURCE, and --privileged asks for every capability, so runc
# fails with "unable to apply caps". ALL minus that one works everywhere.
RUN_ARGS = (
    "--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
)
RUN_KWARGS = dict(
    cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
    security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    tmpfs={"/run": "", "/run/lock": ""},
    volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
)
LABEL = "djbake.container"


def start(image: str, purpose: str, client=None, boot_timeout: int = 300):
    """Run image with systemd as PID 1 and wait until boot finished.

    The wait is long because a first boot does real work (PostgreSQL role,
    SECRET_KEY, host keys) and our 2-core hosts run several builds at once:
    120 s was seen to run out (systemd still 'starting') under such load."""
    client = client or client_mod.connect()
    container = client.containers.run(image, detach=True, labels={LABEL: purpose}, **RUN_KWARGS)
    try:
        state = wait_booted(container, boot_timeout)
    except BaseException:
        stop(container)
        raise
    if state not in ("running", "degraded"):
        logs = container.logs(tail=30).decode(errors="replace")
        stop(container)
        raise BuildFailed(f"systemd in {image} did not finish booting (state {state!r}):\n{logs}")
    return container


def wait_booted(container, timeout: int) -> str:
    """systemd's state once boot is over: running, degraded, or what it was at the timeout."""
    import time

    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            return f"container {container.status}"
        code, out = container.exec_run(["systemctl", "is-system-running"])
        state = out.decode(errors="replace").strip()
        if state in ("running", "degraded", "maintenance", "stopping"):
            return state
        time.sleep(1)
    return state


def stop(container) -> None:
    """SIGRTMIN+3 is systemd's 'halt': a clean stop (SIGTERM only re-executes it)."""
    import docker

    try:
        container.kill(signal="SIGRTMIN+3")
        container.wait(timeout=30)
    except Exception:  # noqa: BLE001 - already gone or stuck: force below
        pass
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def put_dir(container, src: Path, dest: str) -> None:
    """Copy a host directory to dest in the container (dest is created)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(src), arcname=Path(dest).name)
    container.exec_run(["mkdir", "-p", str(Path(dest).parent)])
    if not container.put_archive(str(Path(dest).parent), buf.getvalue()):
        raise BuildFailed(f"could not copy {src} into the container at {dest}")
