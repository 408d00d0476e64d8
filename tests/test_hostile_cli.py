"""Hostile command lines (issue 17, class 7): one line `djbake: error: ...`, exit 2, no traceback, no hang."""
from __future__ import annotations

import os
import subprocess

import pytest

from builder.catalog import store as catalog
from tests.test_cli_errors import DJBAKE, ROOT, djbake, one_line_error


@pytest.mark.parametrize("args, fragment", [
    (["latest", "--provider", "bogus"], "unknown provider"),
    (["prune", "--provider", "bogus"], "unknown provider"),
    (["prune", "--provider", "qemu"], "does not support qemu"),
    (["prune", "--provider", "docker"], "does not support docker"),
    (["images", "--show", "1e23"], "not a catalog id"),
    (["images", "--show", "100000000000000000000000"], "not a catalog id"),
    (["render", "--provider", ",", "--no-packer"], "names no provider"),
    (["render", "--provider", " , ,", "--no-packer"], "names no provider"),
    (["schema", "-o", "/proc/no/such/dir/schema.json"], "/proc/no/such/dir/schema.json"),
    (["catalog", "export", "-o", "/proc/no/such/export.json"], "/proc/no/such/export.json"),
    (["check", "--spec", "/dev/zero"], "not a regular file"),
])
def test_one_line_exit_2(tmp_path, args, fragment):
    one_line_error(djbake(*args, tmp=tmp_path), fragment)


def test_render_out_unwritable_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory would go")
    one_line_error(djbake("render", "--provider", "qemu", "--no-packer", "--out", str(blocker / "x"), tmp=tmp_path),
                   str(blocker))


def test_check_on_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    one_line_error(djbake("check", "--spec", str(fifo), tmp=tmp_path), "not a regular file")


def test_broken_pipe_is_one_line_exit_2(tmp_path):
    db = tmp_path / "c.sqlite"
    cat = catalog.Catalog(db)
    cat.add([catalog.Entry(f"b{i}", "django-web", "1.0", "qemu", "local", "x" * 200) for i in range(3000)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJBAKE_")}
    env["DJBAKE_CATALOG"] = str(db)
    proc = subprocess.run(f"'{DJBAKE}' images | head -n 1; exit ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.stdout.count("\n") == 1
    one_line_error(proc, "broken pipe")
