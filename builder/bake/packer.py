"""For step 3 (validate) and 7 (build): which Packer is installed, what it needs, `packer validate`."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from builder.errors import UserError

MIN_VERSION = (1, 6, 6)
PLUGINS_SINCE = (1, 7, 0)   # `required_plugins` and `packer init`
BUILTINS_UNTIL = (1, 10, 0)  # from 1.10 no builder ships inside Packer


@dataclass(frozen=True)
class Packer:
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def needs_plugins(self) -> bool:
        return self.version >= PLUGINS_SINCE


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


@lru_cache(maxsize=None)
def find(binary: str | None = None) -> Packer:
    path = binary or os.environ.get("DJBAKE_PACKER") or shutil.which("packer")
    if not path:
        raise UserError("Packer is not installed", hint="make deps (or: apt-get install packer)")
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=60).stdout
        version = parse_version(out)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        raise UserError(f"cannot run Packer at {path}: {e}", hint="make deps") from None
    if version < MIN_VERSION:
        raise UserError(
            f"Packer {'.'.join(map(str, version))} is too old; djbake needs {'.'.join(map(str, MIN_VERSION))} or newer",
            hint="apt-get install packer, or install a current Packer from HashiCorp",
        )
    return Packer(path, version)


def init(packer: Packer, directory: Path) -> None:
    """Install the plugins a 1.7+ Packer needs (no-op for 1.6.x)."""
    if not packer.needs_plugins:
        return
    proc = subprocess.run([packer.path, "init", str(directory)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"packer init {directory} failed: {_last_line(proc.stderr or proc.stdout)}",
                        hint="check network access to the plugin registry")


def validate(packer: Packer, directory: Path, variables: dict[str, str],
             syntax_only: bool = False) -> tuple[bool, str]:
    args = [packer.path, "validate"] + (["-syntax-only"] if syntax_only else [])
    for key, value in sorted(variables.items()):
        args += ["-var", f"{key}={value}"]
    proc = subprocess.run(args + [str(directory)], capture_output=True, text=True, cwd=directory)
    output = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, output


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@lru_cache(maxsize=None)
def builtin_builders(packer: Packer) -> frozenset[str]:
    """Builders this Packer has built in, read from its own error message.

    Packer before 1.10 answers an unknown source type with the list of the
    builders it knows; that is the only listing 1.6.x offers.
    """
    import tempfile

    probe = '{"source":{"djbake-probe":{"x":{}}},"build":[{"sources":["source.djbake-probe.x"]}]}'
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "probe.pkr.json").write_text(probe)
        proc = subprocess.run([packer.path, "validate", tmp], capture_output=True, text=True)
    m = re.search(r"known builders: \[([^\]]*)\]", proc.stdout + proc.stderr)
    return frozenset(m.group(1).split()) if m else frozenset()
