"""SIGINT and SIGTERM to djbake at every stage of a build, with the real Packer.

Stages: before Packer starts (a pipeline step in Python), during
provisioning, during post-processing. After each: djbake says
"interrupted" and exits 130, no Packer process (nor anything it started) is
left, nothing is left in TMPDIR, nothing is in the catalog, and the next run
works. The null builder keeps it fast; the pipeline runs for real
(builder/pipeline.py through `djbake image`) with its render, validate,
wheelhouse and prepare steps swapped for a null-builder template.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKER = os.environ.get("DJBAKE_PACKER") or subprocess.run(["sh", "-c", "command -v packer"], capture_output=True,
                                                           text=True).stdout.strip()
pytestmark = pytest.mark.skipif(not PACKER, reason="packer is not installed (make deps)")

# In the child: `djbake image --provider docker` with the pipeline's first steps swapped for a
# null-builder template whose provisioner or post-processor sleeps when the stage says so.
CHILD = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from builder import cli
    from builder.bake import pipeline, render, template

    stage, marker = os.environ["STAGE"], os.environ["MARKER"]

    def render_step(job):
        d = render.out_dir(job.spec, job.provider.name, job.base_dir)
        d.mkdir(parents=True, exist_ok=True)
        provision = f"echo provisioning; sleep {marker}" if stage == "provision" else "echo provisioned"
        post = f"echo post-processing; sleep {marker}" if stage == "post" else "echo post-processed"
        steps = [{"shell-local": {"inline": [provision]}}]
        if os.environ.get("SCRIPT"):  # a guest script, run as the shell provisioner runs ours
            steps.append({"shell-local": {"script": os.environ["SCRIPT"],
                                          "execute_command": ["/bin/bash", "-c", "{{.Vars}} {{.Script}}"]}})
        tpl = {
            "source": {"null": {"x": {"communicator": "none"}}},
            "build": [{"sources": ["source.null.x"],
                       "provisioner": steps,
                       "post-processor": [{"manifest": {"output": "${path.root}/manifest.json"}},
                                          {"shell-local": {"inline": [post]}}]}],
        }
        (d / "null.pkr.json").write_text(json.dumps(tpl))
        return template.Rendered(d, d / "null.pkr.json", {})

    def prepare_step(job):
        if stage == "before":
            print("READY before packer", flush=True)
            time.sleep(float(marker))

    pipeline.render_step = render_step
    pipeline.validate_step = lambda *a: None
    pipeline.wheelhouse_step = lambda *a: None
    pipeline.prepare_step = prepare_step
    pipeline.doctor.preflight = lambda *a: None  # a null build needs no Docker engine
    pipeline.packer_variables = lambda job: {}
    sys.exit(cli.main(sys.argv[1:]))
""")

SPEC = "name: tiny-null\nstack:\n  nginx: false\n  certbot: false\n  database: none\n"


class Run:
    """One `djbake image` child process with its own TMPDIR, catalog and build directory."""

    def __init__(self, tmp: Path, tmpdir: Path, stage: str, **env_vars: str):
        self.tmp = tmp
        self.tmpdir = tmpdir
        self.out = tmp / "build"
        self.catalog = tmp / "catalog.sqlite"
        spec = tmp / "tiny.yaml"
        spec.write_text(SPEC)
        # A unique sleep length: the way to find this run's sleeping step among all processes.
        self.marker = f"{60 + int(uuid.uuid4().int % 1000) / 1000:.3f}"
        env = dict(os.environ, TMPDIR=str(self.tmpdir), DJBAKE_CATALOG=str(self.catalog), STAGE=stage,
                   MARKER=self.marker, PYTHONUNBUFFERED="1", CHECKPOINT_DISABLE="1", **env_vars)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, "image", "--provider", "docker", "--spec", str(spec), "--out",
             str(self.out), "--no-verify", "--plain"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # (A shell without job control starts background commands with SIGINT ignored, and
        # Python then keeps ignoring it: the child gets Ctrl-C as a user's djbake would.)
        self.log = self.out / "tiny-null" / "docker" / "packer.log"

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log.exists() and text in self.log.read_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"djbake ended early ({self.proc.returncode}): {self.proc.communicate()}")
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared in {self.log}")

    def wait_ready_line(self, timeout: float = 60) -> None:
        line = self.proc.stdout.readline()  # "READY before packer", printed by the child before it sleeps
        assert "READY" in line, line

    def packer_group(self) -> int:
        # Packer re-executes itself (panicwrap): two processes, one group, the runner's own session.
        out = subprocess.run(["pgrep", "-f", f"packer build .*{self.out}"], capture_output=True, text=True).stdout
        (pgid,) = {os.getpgid(int(p)) for p in out.split()}
        return pgid

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def _alive_in_group(pgid: int) -> list[str]:
    """Processes of the group still running. Zombies are not: they have exited and wait to be
    reaped by PID 1 (which, in some containers, never reaps)."""
    out = subprocess.run(["ps", "-e", "-o", "pgid=,stat=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()]
    return [" ".join(r) for r in rows if len(r) >= 2 and r[0] == str(pgid) and not r[1].startswith("Z")]


def _sleepers(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-af", f"sleep {marker}"], capture_output=True, text=True).stdout.splitlines()


def _catalog_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM images").fetchone()[0]


def _assert_clean(run: Run, pgid: int | None) -> None:
    if pgid is not None:
        assert _alive_in_group(pgid) == [], "Packer or a plugin of it is still running"
    assert _sleepers(run.marker) == [], "the interrupted step is still running"
    assert sorted(p.name for p in run.tmpdir.iterdir()) == [], "temporary files left in TMPDIR"
    assert _catalog_rows(run.catalog) == 0, "an interrupted build was recorded"


@pytest.fixture
def tmpdir_short():
    """A TMPDIR of its own, short: Packer's plugin sockets live there (108 bytes a path at most)."""
    d = Path(tempfile.mkdtemp(prefix="djbint-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["before", "provision", "post"])
def test_interrupt_then_next_run_works(tmp_path, tmpdir_short, stage, sig):
    run = Run(tmp_path, tmpdir_short, stage)
    pgid = None
    try:
        if stage == "before":
            run.wait_ready_line()
        else:
            run.wait_for("provisioning" if stage == "provision" else "post-processing")
            pgid = run.packer_group()
        started = time.monotonic()
        run.proc.send_signal(sig)
        rc, out, err = run.finish()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    assert rc == 130, (rc, out, err)
    assert err.strip().splitlines()[-1] == "djbake: interrupted", err
    assert "Traceback" not in err
    assert time.monotonic() - started < 30, "the interrupted step was not stopped"
    if stage != "before":
        # Packer's own account of the signal. The whole group gets it, as from a terminal, so
        # under load the step's script may die of it (exit -1) before Packer prints its cancel lines.
        text = run.log.read_text()
        assert any(s in text for s in ("Cleanly cancelled builds", "Cancelling build after receiving",
                                       "exit status: -1")), text[-2000:]
    _assert_clean(run, pgid)

    again = Run(tmp_path, tmpdir_short, "none")
    rc, out, err = again.finish(timeout=120)
    assert rc == 0, (out, err)
    assert "catalog id" in out
    assert _catalog_rows(again.catalog) == 1
    assert sorted(p.name for p in again.tmpdir.iterdir()) == []
