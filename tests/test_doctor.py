"""`djbake doctor` through the real CLI: on this machine, without Packer, with an old or a new Packer."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from builder import doctor

DJBAKE = str(Path(sys.executable).with_name("djbake"))
# What a doctor run may look for; everything but packer is linked into a bare PATH.
TOOLS = ("qemu-system-x86_64", "qemu-img", "xorriso", "mkisofs", "genisoimage", "ssh-keygen",
         "mmdebstrap", "docker", "dockerd", "git")
CREDENTIAL_VARS = [c.env for p in doctor.providers.PROVIDERS.values() for c in p.credentials]


def run(*args, path=None, **env):
    e = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS and not k.startswith("DJBAKE_")}
    e.update(env)
    if path is not None:
        e["PATH"] = str(path)
    return subprocess.run([DJBAKE, "doctor", "--no-probe", *args], capture_output=True, text=True, env=e,
                          timeout=120)


def bare_path(tmp_path, packer_script: str | None = None) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    if packer_script is not None:
        fake = bindir / "packer"
        fake.write_text("#!/bin/sh\n" + packer_script)
        fake.chmod(0o755)
    return bindir


def fixes_follow_problems(text: str) -> None:
    """Every FAIL, miss and warn line is followed by a `fix:` line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line[2:6].strip() in ("FAIL", "miss", "warn"):
            assert "fix: " in lines[i + 1], f"no fix for: {line}"


def test_doctor_on_this_machine():
    proc = run()
    assert proc.returncode in (0, 2), proc.stderr
    assert proc.stderr == ""
    fixes_follow_problems(proc.stdout)
    if proc.returncode == 0:
        assert "OK: qemu can be baked on this machine" in proc.stdout
    else:
        assert "NOT READY" in proc.stdout and "FAIL" in proc.stdout


def test_without_packer_says_exactly_what_to_do(tmp_path):
    proc = run(path=bare_path(tmp_path))
    assert proc.returncode == 2
    assert "FAIL  packer" in proc.stdout
    assert "Packer is not installed" in proc.stdout
    assert "fix: make deps   (or: apt-get install packer)" in proc.stdout
    assert "NOT READY" in proc.stdout and "Traceback" not in proc.stderr
    # Packer is needed by every provider, the local docker one too
    (tmp_path / "again").mkdir()
    assert run("-p", "docker", path=bare_path(tmp_path / "again")).returncode == 2


def test_packer_too_old(tmp_path):
    proc = run(path=bare_path(tmp_path, 'echo "Packer v1.5.2"'))
    assert proc.returncode == 2
    assert "Packer 1.5.2 is too old; djbake needs 1.6.6 or newer" in proc.stdout
    assert "fix: apt-get install packer, or install a current Packer from HashiCorp" in proc.stdout


def test_new_packer_needs_init_and_has_every_builder(tmp_path):
    bindir = bare_path(tmp_path, 'echo "Packer v1.11.2"')
    proc = run("-p", "linode", path=bindir, LINODE_TOKEN="x" * 20)
    assert "info  packer init" in proc.stdout and "runs `packer init`" in proc.stdout
    assert "builder linode" not in proc.stdout
    assert "ok    linode credentials" in proc.stdout
    assert proc.returncode == 0, proc.stdout
    assert "OK: linode can be baked" in proc.stdout


def test_missing_credentials_block_only_that_provider():
    proc = run("-p", "hetzner")
    assert proc.returncode == 2
    assert "FAIL  hetzner credentials" in proc.stdout
    assert "fix: export HCLOUD_TOKEN=...  # a project API token" in proc.stdout
    assert "miss  linode credentials" in proc.stdout  # not asked about: listed, not blocking


def test_debian_packer_cannot_build_linode_even_with_a_token():
    if shutil.which("packer") is None or doctor.packer_mod.find().needs_plugins:
        pytest.skip("needs Debian's Packer 1.6.6")
    proc = run("-p", "linode", LINODE_TOKEN="x" * 20)
    assert proc.returncode == 2
    assert "FAIL  builder linode" in proc.stdout
    assert "install Packer >= 1.7 from HashiCorp" in proc.stdout


def test_disk_space_and_json():
    proc = run("--json", DJBAKE_MIN_FREE_GB="1000000")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    disk = next(c for c in report["checks"] if c["name"] == "disk space (qemu)")
    assert disk["status"] == "fail" and disk["blocks"] and "at least 1000000 GB" in disk["detail"]
    assert report["ok"] is False and report["targets"] == ["qemu"]


def test_unknown_provider_is_one_line():
    proc = run("-p", "lindoe")
    assert proc.returncode == 2
    assert proc.stderr.startswith("djbake: error: unknown provider 'lindoe'; did you mean 'linode'?")
    assert "Traceback" not in proc.stderr


def test_credential_file_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("GCP_PROJECT_ID", "p")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    gcp = next(c for c in doctor.check_credentials() if c.name == "gcp credentials")
    assert gcp.status == "fail" and "names no file" in gcp.detail
    (tmp_path / "nope.json").write_text("{}")
    gcp = next(c for c in doctor.check_credentials() if c.name == "gcp credentials")
    assert gcp.status == "ok"


@pytest.mark.parametrize("answer, ok", [
    (True, True), (False, False), ("kvm", True), ("tcg", False),
    (types.SimpleNamespace(accelerator="tcg", reason="qemu with KVM exited: failed to set MSR 0x10a"), False),
    (types.SimpleNamespace(accelerator="kvm", reason="a Linux kernel booted under KVM"), True),
])
def test_kvm_probe_adapter(monkeypatch, answer, ok):
    monkeypatch.delenv("DJBAKE_ACCELERATOR", raising=False)
    fake = types.SimpleNamespace(resolve=lambda: answer)
    monkeypatch.setattr(doctor, "_accel", lambda: fake)
    check = doctor.check_kvm(probe=True)
    assert check.status == ("ok" if ok else "warn")
    assert doctor.check_kvm(probe=False).status == "info"


def test_disk_need_is_the_providers(monkeypatch, tmp_path):
    """A docker build needs less room than a qemu one, and where the engine keeps its layers.

    CI stop 27: docker builds refused at 3.3 GB free, under the qemu build's 5 GB.
    """
    monkeypatch.delenv("DJBAKE_MIN_FREE_GB", raising=False)
    monkeypatch.setattr(doctor, "free_gb", lambda path: 3.3)
    qemu, docker = (doctor.check_disk(tmp_path, name) for name in ("qemu", "docker"))
    assert qemu.status == "fail" and "a qemu build needs at least 5 GB" in qemu.detail
    assert qemu.needed_by == {"qemu"}
    assert docker.status == "warn" and docker.needed_by == {"docker"}
    monkeypatch.setattr(doctor, "free_gb", lambda path: 1.0)
    assert doctor.check_disk(tmp_path, "docker").status == "fail"
    monkeypatch.setenv("DJBAKE_MIN_FREE_GB", "0.5")
    assert doctor.check_disk(tmp_path, "docker").status == "warn"

    engine_root = tmp_path / "engine"
    engine_root.mkdir()
    monkeypatch.setattr(doctor, "_docker_root", lambda: engine_root)
    assert doctor.disk_path("docker", tmp_path / "build") == engine_root
    assert doctor.disk_path("qemu", tmp_path / "build") == tmp_path / "build"
    monkeypatch.setattr(doctor, "_docker_root", lambda: None)  # no engine here: the build dir
    assert doctor.disk_path("docker", tmp_path / "build") == tmp_path / "build"
