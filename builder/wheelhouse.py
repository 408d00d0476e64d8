"""The pinned wheels the guest installs from, downloaded once on the host.

The build VM installs Django and friends offline from payload/wheels/
(`pip install --no-index --find-links /tmp/djbake/wheels -r
/tmp/djbake/wheels/requirements.txt`), so a build needs no PyPI access from
the guest and every provider gets exactly the same files. The host runs
`pip download --only-binary=:all:` for the image's Python and platform
(manylinux, the OS's glibc and the spec's architecture); the result is
cached under build/cache/wheels/<key>/, keyed by the requirement list,
Python version and platform, and reused until one of them changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from builder import stack
from builder.errors import BuildFailed
from builder.spec import Spec

# glibc of each OS: the newest manylinux tag its Python can install.
GLIBC = {"debian-12": (2, 36), "ubuntu-26.04": (2, 43), "ubuntu-24.04": (2, 39), "ubuntu-22.04": (2, 35)}
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
COMPLETE = ".complete"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path
    key: str
    files: tuple[str, ...]
    downloaded: bool
    seconds: float = 0.0


def platforms(os_name: str, arch: str) -> list[str]:
    """manylinux tags from the OS's glibc down to 2.17 (newest first), and the legacy alias."""
    major, minor = GLIBC[os_name]
    machine = MACHINE[arch]
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    return tags


def python_version(spec: Spec) -> str:
    return spec.python_version


def key(spec: Spec) -> str:
    blob = json.dumps({
        "requirements": sorted(stack.requirements(spec)),
        "python": python_version(spec),
        "platforms": platforms(spec.os, spec.arch),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(spec: Spec) -> Path:
    from builder.base_image import cache_root

    return cache_root() / "wheels" / key(spec)


def download_command(spec: Spec, dest: Path, requirements_file: Path) -> list[str]:
    py = python_version(spec)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-cache-dir",
           "--only-binary=:all:", "--implementation", "cp",
           "--python-version", py, "--abi", "cp" + py.replace(".", ""), "--abi", "abi3", "--abi", "none"]
    for tag in platforms(spec.os, spec.arch):
        cmd += ["--platform", tag]
    return cmd + ["--dest", str(dest), "-r", str(requirements_file)]


def ensure(spec: Spec, log: Callable[[str], None] = print) -> Wheelhouse:
    """The cached wheelhouse for spec, downloading it when missing."""
    target = cache_dir(spec)
    if (target / COMPLETE).exists():
        return Wheelhouse(target, key(spec), _wheels(target), downloaded=False)
    started = time.monotonic()
    reqs = stack.requirements(spec)
    log(f"downloading {len(reqs)} pinned requirements for Python {python_version(spec)} "
        f"({MACHINE[spec.arch]}) into the wheelhouse")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (tmp / REQUIREMENTS).write_text("".join(r + "\n" for r in reqs))
        proc = subprocess.run(download_command(spec, tmp, tmp / REQUIREMENTS), capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            raise BuildFailed(f"pip download of the pinned wheels failed:\n{tail}")
        if not _wheels(tmp):
            raise BuildFailed("pip download finished but left no wheels")
        (tmp / COMPLETE).write_text(json.dumps({"requirements": reqs, "key": key(spec)}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - started
    return Wheelhouse(target, key(spec), _wheels(target), downloaded=True, seconds=seconds)


def _wheels(directory: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in directory.glob("*.whl")))


def install_into(house: Wheelhouse, payload: Path) -> Path:
    """Copy the wheels and their requirements.txt into payload/wheels/ (replacing what was there)."""
    dest = payload / "wheels"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (*house.files, REQUIREMENTS):
        shutil.copy2(house.directory / name, dest / name)
    return dest
