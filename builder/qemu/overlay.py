"""qcow2 overlays: a disk that holds only what a VM writes, over a backing disk it reads.

Two users: a launched VM runs on an overlay over its catalogued image
(launch.py), and the image layer's build boots an overlay over the cached
stack layer (providers/qemu.py). For the build this saves a full copy:
Packer 1.6.6 copies its source disk byte for byte before booting it, which
for the stack layer meant gigabytes; an overlay is a few hundred KiB, and
Packer's capture (`qemu-img convert -c`) reads through it to the backing
disk and writes the one standalone, compressed image. (Packer's own
`use_backing_file` cannot be used: 1.6.6 runs `qemu-img create -b` without
`-F`, which QEMU 6.1 and newer refuse.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from builder.errors import BuildFailed


def create(backing: Path, disk: Path) -> Path:
    """A new qcow2 at `disk` over `backing` (absolute path, format given: QEMU 6.1+ requires it)."""
    proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing.resolve()),
                           str(disk)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildFailed(f"qemu-img create of the overlay {disk} failed: {proc.stderr.strip()}")
    return disk


def pinned(disk: Path, dest: Path) -> Path:
    """`disk` under a name of this build's, so that the cache pruning it mid-build cannot pull an
    overlay's backing disk away: a hard link (no bytes copied), or a copy where `dest` is on
    another file system. The caller removes it when the build ends."""
    dest.unlink(missing_ok=True)
    try:
        os.link(disk, dest)
    except FileNotFoundError:
        raise BuildFailed(f"{disk} was removed as this build started (another build pruned the cache?): "
                          "run the build again") from None
    except OSError:
        shutil.copyfile(disk, dest)
    return dest
