"""The project a spec bakes into the image (`app.source`): a URL, or a path on the build host.

A URL (https://, git+..., ssh://, git@...) is fetched inside the build VM by
djbake-deploy. A path names a directory, a wheel or a tarball on the host,
relative to the spec file; it is copied into the rendered payload
(`payload/app/<name>`), uploaded with the scripts, and app.sh deploys it from
there. The spec loader rejects a missing path with its location, so a build
never starts without its project.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from builder import safe_paths
from builder.spec import source_checks
from builder.spec.source_checks import resolve

if TYPE_CHECKING:
    from builder.spec import Spec

# Inside the payload (stack.PAYLOAD_DIR in the build VM): app.sh resolves
# DJBAKE_APP_SOURCE against it.
PAYLOAD_APP_DIR = "app"
# Never shipped into an image: the host's VCS data and bytecode.
_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", ".tox", ".pytest_cache")


def local_path(spec: "Spec") -> Path | None:
    return resolve(spec.app.source, spec.base_dir) if spec.app else None


def payload_source(spec: "Spec") -> str:
    """DJBAKE_APP_SOURCE: the URL as given, or where the copy lies in the payload."""
    if not spec.app:
        return ""
    path = local_path(spec)
    return spec.app.source if path is None else f"{PAYLOAD_APP_DIR}/{path.name}"


def copy_into(spec: "Spec", payload: Path) -> None:
    """Put the spec's local project into payload/app/ (and nothing there when there is none)."""
    target = payload / PAYLOAD_APP_DIR
    safe_paths.remove(target, payload.parent, owner=payload.parent)
    path = local_path(spec)
    if path is None:
        return
    target.mkdir(parents=True)
    # Checked again: it may have changed since the spec was loaded.
    source_checks.copy_project(path, target / path.name, ignore=_IGNORE)
