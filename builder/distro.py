"""Where an OS's packages come from when djbake builds a base from them.

One answer for both local bases (the qemu `bootstrap` disk and the docker
base image): the apt sources (release, -updates, -security), the archive
components, and the keyring mmdebstrap trusts. Debian's archive key is on
every Debian host (debian-archive-keyring); Ubuntu's is fetched and pinned
(builder/ubuntu_keyring.py). Ubuntu's archive is reachable from our machines
but not promised: reachable() says so in one line, before anything is built.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request

from builder import tables, ubuntu_keyring
from builder.errors import UserError

UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_SECURITY_MIRROR = "http://security.ubuntu.com/ubuntu"


# A bootable base's packages under Ubuntu's names (builder/base_image.py lists
# Debian's): Ubuntu's kernel for VMs is linux-image-virtual.
UBUNTU_NAMES = {"linux-image-cloud-amd64": "linux-image-virtual"}
# Before 23.04 systemd-resolved is part of Ubuntu's systemd package.
PART_OF_SYSTEMD = {"jammy": ("systemd-resolved",)}


def packages(os_: tables.OS, debian_names: tuple[str, ...]) -> tuple[str, ...]:
    """debian_names as os_ calls them."""
    if os_.family != "ubuntu":
        return debian_names
    gone = PART_OF_SYSTEMD.get(os_.codename, ())
    return tuple(UBUNTU_NAMES.get(p, p) for p in debian_names if p not in gone)


# Releases whose systemd (258 and later) runs on cgroup v2 only: in a container
# on a cgroup v1 host it needs djbake's init wrapper (builder/docker_base.py).
# resolute ships systemd 259; bookworm 252, trixie 257, jammy 249, noble 255.
SYSTEMD_CGROUP2_ONLY = ("resolute",)


def needs_cgroup2(os_: tables.OS) -> bool:
    return os_.codename in SYSTEMD_CGROUP2_ONLY


def ubuntu_mirrors() -> dict[str, str]:
    return {
        "ubuntu": os.environ.get("DJBAKE_UBUNTU_MIRROR") or UBUNTU_MIRROR,
        "security": os.environ.get("DJBAKE_UBUNTU_SECURITY_MIRROR") or UBUNTU_SECURITY_MIRROR,
    }


def components(os_: tables.OS) -> tuple[str, ...]:
    return os_.components  # the OS table's row (Ubuntu: universe too, for python3-venv and fail2ban)


def sources(os_: tables.OS, debian: dict[str, str]) -> list[str]:
    """Release, updates and security lines for os_; debian holds the Debian mirrors
    ({"debian": ..., "security": ...}) a Debian OS uses."""
    comps = " ".join(components(os_))
    if os_.family == "ubuntu":
        main, security = ubuntu_mirrors()["ubuntu"], ubuntu_mirrors()["security"]
    else:
        main, security = debian["debian"], debian["security"]
    return [
        f"deb {main} {os_.codename} {comps}",
        f"deb {main} {os_.codename}-updates {comps}",
        f"deb {security} {os_.codename}-security {comps}",
    ]


def keyring_options(os_: tables.OS) -> list[str]:
    """mmdebstrap options naming the keyring (the path only: ensure_keyring() fetches it)."""
    if os_.family == "ubuntu":
        return [f"--keyring={ubuntu_keyring.path()}"]
    return []


def ensure_keyring(os_: tables.OS, log=print) -> None:
    """Make the keyring keyring_options() names exist, verified; a no-op for Debian."""
    if os_.family == "ubuntu":
        ubuntu_keyring.ensure(ubuntu_mirrors()["ubuntu"], log)


def mmdebstrap_options(os_: tables.OS) -> list[str]:
    # The components are in the source lines (mmdebstrap's --components only
    # applies to the mirrors it makes up itself), so only the keyring.
    return keyring_options(os_)


def unreachable(os_: tables.OS, timeout: float = 15.0) -> str:
    """"" when os_'s archive answers for its release, else a one-line reason.

    Only Ubuntu's is asked: Debian's archive is the one builds can always count on.
    """
    if os_.family != "ubuntu":
        return ""
    url = f"{ubuntu_mirrors()['ubuntu']}/dists/{os_.codename}/InRelease"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):  # noqa: S310
            return ""
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"Ubuntu's archive cannot be reached ({url}: {getattr(e, 'reason', e)})"


def require_reachable(os_: tables.OS) -> None:
    if reason := unreachable(os_):
        raise UserError(reason, hint="set DJBAKE_UBUNTU_MIRROR to a reachable Ubuntu mirror, or use a Debian OS")
