"""Every path djbake reads or writes outside a temp dir, and the DJBAKE_* variables that move them.

One place, so a reader (or a test) finds where the repository, the build
tree, the caches, the catalog and the VM/image directories are without
following imports. The functions read the environment when called, so a
variable set after import (tests, `djbake bench`) still counts.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent   # the repository (images/, scripts/, tests/image/)
DATA = Path(__file__).resolve().parent / "data"  # files shipped with the package
BUILD_DIR = ROOT / "build"                       # rendered templates, logs, artifacts per image/provider
SECURITY_DOC = ROOT / "docs" / "security.md"    # its Exceptions table: what the bench's scans may still find
NODOC_DPKG = ROOT / "scripts" / "files" / "dpkg" / "01-djbake-nodoc"  # dpkg path-excludes: bases and base.sh
UV_FROM_WHEEL = ROOT / "scripts" / "files" / "python" / "uv-from-wheel.py"  # python.sh and the bench's floor


def cache_root() -> Path:
    """Base images, wheelhouses, stack layers, the accelerator probe (DJBAKE_CACHE moves it)."""
    return Path(os.environ.get("DJBAKE_CACHE") or BUILD_DIR / "cache")


def catalog_path() -> Path:
    """The SQLite catalog (DJBAKE_CATALOG moves it)."""
    return Path(os.environ.get("DJBAKE_CATALOG") or BUILD_DIR / "catalog.sqlite")


def catalog_location() -> str:
    """DJBAKE_CATALOG as given: a SQLite file, or a postgresql:// URL (which a Path would mangle).
    builder/config_file.py adds djbake.toml's `catalog` between the variable and this default."""
    return os.environ.get("DJBAKE_CATALOG") or str(BUILD_DIR / "catalog.sqlite")


def config_files() -> list[Path]:
    """Where djbake.toml is read, first found wins: the checkout's (a team's, committed), then the user's."""
    user = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "djbake" / "djbake.toml"
    return [ROOT / "djbake.toml", user]


def vms_dir() -> Path:
    """Locally launched QEMU VMs, one directory each (DJBAKE_VMS moves it)."""
    return Path(os.environ.get("DJBAKE_VMS") or BUILD_DIR / "vms")


def images_dir() -> Path:
    """Finished qcow2 images, outside build/<image>/ which `make clean` removes (DJBAKE_IMAGES moves it)."""
    return Path(os.environ.get("DJBAKE_IMAGES") or BUILD_DIR / "images")


def apt_cache_dir() -> Path:
    """The host's apt-cacher-ng directory (DJBAKE_APT_CACHE_DIR moves it; shared by every checkout)."""
    base = os.environ.get("DJBAKE_APT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "djbake" / "apt-cacher-ng")
    return Path(base)
