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
# python3-venv is in Ubuntu's universe; Debian keeps everything djbake uses in main.
COMPONENTS = {"debian": ("main",), "ubuntu": ("main", "universe")}


def ubuntu_mirrors() -> dict[str, str]:
    return {
        "ubuntu": os.environ.get("DJBAKE_UBUNTU_MIRROR") or UBUNTU_MIRROR,
        "security": os.environ.get("DJBAKE_UBUNTU_SECURITY_MIRROR") or UBUNTU_SECURITY_MIRROR,
    }


def components(os_: tables.OS) -> tuple[str, ...]:
    return COMPONENTS[os_.family]


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
