"""Every failure a user can cause: one line `djbake: error: ...` with the fix, exit 2, no traceback.

Through the real CLI in a subprocess. `--debug` shows the traceback instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder import providers

ROOT = Path(__file__).resolve().parent.parent
DJBAKE = str(Path(sys.executable).with_name("djbake"))
CREDENTIAL_VARS = {c.env for p in providers.PROVIDERS.values() for c in p.credentials}


def djbake(*args, path=None, tmp=None, **env):
    e = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS and not k.startswith("DJBAKE_")}
    if tmp is not None:
        e["DJBAKE_CATALOG"] = str(tmp / "catalog.sqlite")
    if path is not None:
        e["PATH"] = str(path)
    e.update(env)
    return subprocess.run([DJBAKE, *args], capture_output=True, text=True, env=e, timeout=300, cwd=ROOT)


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert lines, proc.stdout
    last = lines[-1]
    assert last.startswith("djbake: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


def bin_without_packer(tmp_path, packer_script=None):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("git", "qemu-system-x86_64", "qemu-img", "xorriso", "mmdebstrap", "ssh-keygen", "docker"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    if packer_script:
        (bindir / "packer").write_text("#!/bin/sh\n" + packer_script)
        (bindir / "packer").chmod(0o755)
    return bindir


# -- unknown provider ---------------------------------------------------------------

@pytest.mark.parametrize("command", [["render"], ["validate"], ["image"], ["doctor"], ["regions"]])
def test_unknown_provider(command, tmp_path):
    proc = djbake(*command, "--provider", "hetzer", tmp=tmp_path)
    one_line_error(proc, "unknown provider 'hetzer'", "did you mean 'hetzner'?")


def test_debug_shows_the_traceback(tmp_path):
    proc = djbake("--debug", "render", "--provider", "hetzer", tmp=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr


# -- Packer missing or too old --------------------------------------------------------

@pytest.mark.parametrize("command", [["validate", "-p", "qemu"], ["image", "-p", "qemu"]])
def test_packer_missing(command, tmp_path):
    proc = djbake(*command, path=bin_without_packer(tmp_path), tmp=tmp_path)
    one_line_error(proc, "Packer is not installed", "fix: make deps")


@pytest.mark.parametrize("command", [["validate", "-p", "docker"], ["image", "-p", "docker"]])
def test_packer_too_old(command, tmp_path):
    proc = djbake(*command, path=bin_without_packer(tmp_path, 'echo "Packer v1.5.2"'), tmp=tmp_path)
    one_line_error(proc, "Packer 1.5.2 is too old; djbake needs 1.6.6 or newer", "fix: apt-get install packer")


# -- regions and specs ------------------------------------------------------------------

def test_region_the_provider_does_not_have(tmp_path):
    spec = tmp_path / "bad-region.yaml"
    spec.write_text("name: web\nproviders:\n  hetzner:\n    regions: [fsn1, nbg2]\n")
    for command in (["check"], ["render", "-p", "hetzner", "--no-packer", "--out", str(tmp_path / "out")]):
        proc = djbake(*command, "--spec", str(spec), tmp=tmp_path)
        one_line_error(proc, f"{spec}:4:", "providers.hetzner.regions[1]", "nbg2")


def test_invalid_spec_and_unknown_image(tmp_path):
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: web\nstack:\n  databse: none\n")
    one_line_error(djbake("check", "--spec", str(spec), tmp=tmp_path), f"{spec}:3:3", "did you mean 'database'?")
    one_line_error(djbake("check", "--image", "no-such-image", tmp=tmp_path), "no image spec images/no-such-image.yaml")


# -- catalog --------------------------------------------------------------------------------

def test_nothing_to_select_yet(tmp_path):
    one_line_error(djbake("latest", "-p", "hetzner", tmp=tmp_path), "no verified hetzner image", "fix: make image")
    one_line_error(djbake("images", "--show", "4242", tmp=tmp_path), "no image with id 4242")


def test_merge_of_a_missing_export(tmp_path):
    one_line_error(djbake("catalog", "merge", str(tmp_path / "nope.json"), tmp=tmp_path), "no such file")


# -- before a build: credentials, builder, disk (doctor.preflight in pipeline.run) ----------------

def test_missing_credential_stops_the_build(tmp_path):
    proc = djbake("image", "-p", "hetzner", "--out", str(tmp_path / "out"), "--plain", tmp=tmp_path)
    one_line_error(proc, "HCLOUD_TOKEN", "fix: export HCLOUD_TOKEN=...")


def test_no_disk_space_stops_a_local_build(tmp_path):
    proc = djbake("image", "-p", "qemu", "--out", str(tmp_path / "out"), "--plain", tmp=tmp_path,
                  DJBAKE_MIN_FREE_GB="1000000")
    one_line_error(proc, "a qemu build needs at least 1000000 GB")


def test_preflight_messages(monkeypatch):
    """The same checks in-process, with Packer, Docker and mmdebstrap taken as present."""
    from builder import doctor
    from builder.errors import UserError

    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(doctor, "check_packer", lambda: ([], None))  # whatever Packer this machine has
    monkeypatch.setattr(doctor, "check_docker", lambda: doctor.Check("docker engine", "ok", "stub"))
    monkeypatch.setattr(doctor, "check_mmdebstrap", lambda: doctor.Check("mmdebstrap", "ok", "stub"))
    with pytest.raises(UserError) as e:
        doctor.preflight("hetzner")
    assert str(e.value) == "cannot bake hetzner: Hetzner Cloud: not set: HCLOUD_TOKEN (fix: export HCLOUD_TOKEN=...)"
    monkeypatch.setenv("HCLOUD_TOKEN", "x" * 32)
    doctor.preflight("hetzner")
    monkeypatch.setenv("DJBAKE_MIN_FREE_GB", "1000000")
    with pytest.raises(UserError, match="a docker build needs at least 1000000 GB"):
        doctor.preflight("docker")
