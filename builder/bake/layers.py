"""The stack layer: a cached disk holding the slow, rarely changing part of an image.

A layered provider (qemu) builds in two Packer runs. The first runs the
stack layer's scripts (stack.STACK_LAYER: apt, Python, the database server)
on the base image and keeps the disk here, under a key of everything those
scripts read; the second runs the image layer's scripts, the in-build gate
and the seal on an overlay over that disk (builder/qemu/overlay.py). A
later build whose key is unchanged (only the app, a late script or the
provenance changed) skips the first run.

The cached disk is an intermediate, never an image: it is not sealed (its
host keys and machine-id are replaced by the seal of every image built on
it), holds no private key (the build's key pair lives in the build
directory and is deleted when the build ends), and is never recorded in
the catalog.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from builder import locks, safe_paths
from builder.bake import template
from builder.errors import BuildFailed
from builder.paths import cache_root
from builder.spec import Spec

KEEP = 3   # newest stack layers kept; older ones are deleted after a new one is made


@dataclass(frozen=True)
class Layer:
    key: str
    path: Path
    built: bool          # False: taken from the cache
    seconds: float = 0.0


def cache_dir() -> Path:
    return cache_root() / "layers"


def key(rendered_dir: Path, spec: Spec, base_checksum: str, wheelhouse_key: str) -> str:
    """A hash of everything the stack layer's scripts read, and nothing else.

    The layer's template (its scripts, their order and environment, the
    source settings), the scripts it runs (with lib*.sh), the files/ they
    install with `put` or name as "$FILES/...", the base disk and the wheelhouse.
    """
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    add("base", base_checksum.encode())
    add("wheelhouse", wheelhouse_key.encode())
    text = (rendered_dir / template.LAYER_DIR / template.template_name(spec)).read_bytes()
    add("template", text)
    provisioners = json.loads(text)["build"][0]["provisioner"]
    wanted = {Path(script).name for p in provisioners for script in p.get("shell", {}).get("scripts", [])}
    scripts = rendered_dir / "payload" / "scripts"
    read = [path for path in sorted(scripts.glob("*.sh")) if path.name in wanted or path.name.startswith("lib")]
    for path in read:
        add(f"script:{path.name}", path.read_bytes())
    # Only the files/ entries these scripts install: the image layer's files
    # (firstboot, nginx, ...) change often and must not rebuild the stack.
    files = scripts / "files"
    for rel, script in sorted(files_read(read).items(), key=lambda kv: kv[0] or ""):
        if rel is None:   # a script reads $FILES some other way: key all of it
            for path in sorted(p for p in files.rglob("*") if p.is_file()):
                add(f"file:{path.relative_to(files)}", path.read_bytes())
            continue
        if (files / rel).is_dir():   # "$FILES/dir/." copies a whole directory
            for path in sorted(p for p in (files / rel).rglob("*") if p.is_file()):
                add(f"file:{path.relative_to(files)}", path.read_bytes())
            continue
        if not (files / rel).is_file():
            raise BuildFailed(f"{script}: `put {rel}` names no file under scripts/files/")
        add(f"file:{rel}", (files / rel).read_bytes())
    return h.hexdigest()[:20]


PUT = re.compile(r"^\s*put\s+(\S+)\s", re.MULTILINE)
# A literal "$FILES/some/file" (nginx.sh fills a template from one): that file is read.
FILE_REF = re.compile(r"\$\{?FILES\}?/([A-Za-z0-9_./@+-]+)")


def files_read(scripts: list[Path]) -> dict:
    """{scripts/files/ path: script} for lib.sh's `put SRC DEST MODE` lines and literal
    "$FILES/path" references; a None key when a script uses $FILES any other way (then
    every file counts)."""
    found: dict = {}
    for path in scripts:
        text = path.read_text()
        for m in PUT.finditer(text):
            found.setdefault(m.group(1).strip("'\""), path.name)
        rest = PUT.sub("", text)
        for m in FILE_REF.finditer(rest):
            rel = m.group(1).rstrip("/.")
            # lib.sh's FILES is files/ beside the scripts; a path not there is read some other way.
            found.setdefault(rel if (path.parent / "files" / rel).exists() else None, path.name)
        if not path.name.startswith("lib") and "FILES" in FILE_REF.sub("", rest):
            found.setdefault(None, path.name)
    return found


def cached(layer_key: str) -> Path | None:
    path = cache_dir() / f"stack-{layer_key}.qcow2"
    return path if path.is_file() else None


def ensure(layer_key: str, layer_dir: Path, run_packer: Callable[[Path], None],
           note: Callable[[str], None] = lambda s: None, facts: dict | None = None) -> Layer:
    """The stack layer for this key: from the cache, or built now with `run_packer(layer_dir)`.

    One build at a time per key: a second build of the same layer waits and takes the first one's."""
    with locks.exclusive(cache_dir() / f".stack-{layer_key}.lock",
                         f"stack layer {layer_key}: another build is making it; waiting", note):
        return _ensure(layer_key, layer_dir, run_packer, note, facts)


def _ensure(layer_key: str, layer_dir: Path, run_packer: Callable[[Path], None],
            note: Callable[[str], None], facts: dict | None) -> Layer:
    found = cached(layer_key)
    if found is not None:
        note(f"stack layer {layer_key}: cached ({found})")
        return Layer(layer_key, found, built=False)
    output = layer_dir / "output"
    if output.exists():   # an interrupted run's leftovers; Packer refuses an existing output
        safe_paths.remove(output, layer_dir.parent, owner=layer_dir.parent)
    started = time.monotonic()
    run_packer(layer_dir)
    produced = sorted(output.glob("*.qcow2"))
    if len(produced) != 1:
        raise BuildFailed(f"the stack-layer build left {len(produced)} disks in {output}, expected one")
    dest = cache_dir() / f"stack-{layer_key}.qcow2"
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.move(str(produced[0]), partial)
    partial.replace(dest)   # atomic: a reader sees the whole layer or none
    shutil.rmtree(output, ignore_errors=True)
    seconds = time.monotonic() - started
    meta = {"key": layer_key, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(seconds, 1), **(facts or {})}
    dest.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    note(f"stack layer {layer_key}: built in {seconds:.0f}s")
    prune(keep=KEEP)
    return Layer(layer_key, dest, built=True, seconds=seconds)


def prune(keep: int = KEEP) -> list[Path]:
    """Delete all but the newest `keep` stack layers; returns what went."""
    layers = sorted(cache_dir().glob("stack-*.qcow2"), key=lambda p: p.stat().st_mtime, reverse=True)
    gone = layers[keep:]
    for path in gone:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        path.with_name(f".{path.stem}.lock").unlink(missing_ok=True)
    return gone
