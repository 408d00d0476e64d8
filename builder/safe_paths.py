"""Only delete what djbake made, inside its own directories.

A directory djbake creates and may later remove gets a marker file
(MARKER). remove() refuses any target that is not strictly inside the
given root, is a symlink, or lacks the marker (in it or in the `owner`
directory that contains it): a VM name like `..`, a `directory` in a
hand-edited vm.json, or `--out` pointed at someone's directory can then
never remove what djbake did not make.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from builder.errors import UserError

MARKER = ".djbake-made"
# VM names become directory names and the guest's hostname: an RFC 1123 label.
VM_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_vm_name(name: str) -> str:
    if not isinstance(name, str) or not VM_NAME.fullmatch(name):
        raise UserError(f"--name {name!r} is not a VM name: lowercase letters, digits and inner dashes, "
                        "at most 63 (it becomes a directory and the VM's hostname)")
    return name


def make(path: Path) -> Path:
    """Create `path` (and parents) as djbake's own: the marker says djbake may remove it later."""
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by djbake; removed by djbake\n")
    return path


def is_ours(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def claim(path: Path, legacy_root: Path | None = None) -> Path:
    """Make `path` djbake's: new, empty, already marked, or (made before markers) inside legacy_root."""
    if path.is_symlink():
        raise UserError(f"{path} is a symlink; djbake writes only into directories it made")
    if path.exists() and not is_ours(path):
        legacy = legacy_root is not None and _strictly_inside(path.resolve(), legacy_root.resolve())
        if any(path.iterdir()) and not legacy:
            raise UserError(f"{path} exists and was not made by djbake (no {MARKER} in it)",
                            hint="give an empty or new output directory")
    return make(path)


def _strictly_inside(path: Path, root: Path) -> bool:
    return root in path.parents


def remove(target: Path, root: Path, owner: Path | None = None, missing_ok: bool = True) -> bool:
    """Remove the directory tree `target` if djbake made it inside `root`; UserError otherwise.

    `owner`: a marked directory that contains target (payload parts live in a rendered output directory
    and carry no marker of their own). Returns whether something was removed.
    """
    if not target.exists() and not target.is_symlink():
        if missing_ok:
            return False
    resolved_root = root.resolve()
    # The target as written, its parent resolved (a symlinked target itself is refused below).
    placed = target.parent.resolve() / target.name
    if not _strictly_inside(placed, resolved_root) or target.name in ("", ".", ".."):
        raise UserError(f"refusing to remove {target}: it is not inside djbake's directory {root}")
    if target.is_symlink():
        raise UserError(f"refusing to remove {target}: a symlink, which djbake never makes there")
    marked = is_ours(target) or (owner is not None and is_ours(owner) and _strictly_inside(placed, owner.resolve()))
    if not marked:
        raise UserError(f"refusing to remove {target}: not made by djbake (no {MARKER})",
                        hint="remove it yourself if it should go")
    shutil.rmtree(placed)
    return True
