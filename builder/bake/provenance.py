"""Build provenance: which commit, which spec, which tools made an artifact."""
from __future__ import annotations

import datetime as dt
import platform
import secrets
import subprocess

from builder import __version__
from builder.paths import ROOT
from builder.spec import Spec


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return ""


def git_commit() -> str:
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if dirty else "")


def image_version(spec: Spec) -> str:
    if spec.version:
        return spec.version
    described = _git("describe", "--tags", "--always", "--dirty")
    return described or "0.0.0"


def new_build_id() -> str:
    # Sortable and unique: AMI names and snapshot names must not collide.
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)


def provenance(spec: Spec, build_id: str | None = None) -> dict[str, str]:
    return {
        "image_version": image_version(spec),
        "build_id": build_id or new_build_id(),
        "git_commit": git_commit(),
        "spec_hash": spec.spec_hash(),
    }


def tools(packer_version: str) -> dict[str, str]:
    return {"djbake": __version__, "packer": packer_version, "python": platform.python_version()}
