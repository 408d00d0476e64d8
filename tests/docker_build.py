"""The default spec's docker image, built once per test session and shared by every docker module.

Each build of the default image takes 3-5 minutes on 2 cores; before this the docker loop, the
sealed-artifact checks, the release tests and the certificate test each built their own copy.
`DJBAKE_TEST_DOCKER_BUILD=OUT:LOG` reuses a build made before with
`python -m builder image -p docker --out OUT --plain > LOG` instead of building at all.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.docker import client as client_mod
from builder.paths import ROOT


def engine():
    """A docker client on the local engine (started here, idempotently); skip without docker.io."""
    if shutil.which("dockerd") is None:
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    subprocess.run(["bash", str(ROOT / "scripts" / "host" / "start-dockerd.sh")], check=True)
    # djbake's own client (600 s per API call), not the SDK's default 60 s: under CI's load (a QEMU
    # build beside) a forced container removal once took longer and failed a passing test.
    return client_mod.connect()


def reused_build() -> tuple[subprocess.CompletedProcess, Path] | None:
    """DJBAKE_TEST_DOCKER_BUILD=OUT:LOG: a `djbake image -p docker --out OUT` run before (LOG: its output)."""
    value = os.environ.get("DJBAKE_TEST_DOCKER_BUILD")
    if not value:
        return None
    out, log = value.split(":", 1)
    return subprocess.CompletedProcess([], 0, Path(log).read_text(), ""), Path(out) / "django-web" / "docker"


def build_default(out: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """`djbake image -p docker` of images/django-web.yaml into out: (the run, its build directory)."""
    reused = reused_build()
    if reused:
        return reused
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "builder", "image", "-p", "docker", "--out", str(out), "--plain"],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    print(f"djbake image -p docker: exit {proc.returncode} in {time.monotonic() - started:.0f} s")
    return proc, out / "django-web" / "docker"


def built_id(build_dir: Path) -> str:
    """The image id the last build of build_dir committed (its manifest's artifact)."""
    manifest = json.loads((build_dir / "manifest.json").read_text())
    run = [b for b in manifest["builds"] if b["packer_run_uuid"] == manifest["last_run_uuid"]]
    return run[-1]["artifact_id"]
