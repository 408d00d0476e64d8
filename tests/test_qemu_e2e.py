"""End to end, for real: `djbake image --provider qemu`, then `djbake latest` and `djbake launch`.

Bakes the default spec on this machine (bootstrapped and cached Debian
base, Packer's qemu builder under TCG here, in-build gate, seal), boots the
result twice fresh and verifies it, records it in a catalog of its own,
then launches a VM from the newest verified image with the user's
user-data and gets HTTP 200 through the forwarded port, and rebuilds on
the cached stack layer. About 45 minutes under TCG on 2 cores (the stack
layer ~10-15, the image layer with its gate ~10, two fresh boots ~10,
launch ~5, the rebuild ~10). Every VM is stopped at the end, by PID.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from builder import secretscan
from builder.bake import skips
from builder.bake import stack
from builder.catalog import store as catalog
from builder.digest import sha256_file
from builder.paths import ROOT
from builder.qemu import fresh_boot, vm

pytestmark = pytest.mark.vm

DJBAKE = [sys.executable, "-m", "builder"]
BUILD_TIMEOUT = 60 * 60


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qemu-e2e")
    return {**os.environ, "DJBAKE_CATALOG": str(tmp / "catalog.sqlite"), "DJBAKE_IMAGES": str(tmp / "images"),
            "DJBAKE_VMS": str(tmp / "vms"), "CI": "1"}


def djbake(env, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([*DJBAKE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def baked(env):
    proc = djbake(env, "image", "--provider", "qemu", "--plain", timeout=BUILD_TIMEOUT)
    log = proc.stdout + proc.stderr
    (Path(env["DJBAKE_IMAGES"]).parent / "image.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]
    return proc


def test_image_is_baked_gated_verified_and_recorded(baked, env):
    (entry,) = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="qemu")
    assert entry.verified and entry.verification["passed"], entry.verification
    checks = entry.verification["checks"]
    for name in ("machine_id_differs", "host_keys_differ", "secret_key_differs", "user_data_applied",
                 "http_200_a", "http_200_b", "suite_verify-a", "suite_verify-b", "suite_boots_differ"):
        assert checks[name]["ok"], (name, checks[name])
    path = Path(entry.artifact)
    assert path.is_file() and entry.sha256 == sha256_file(path)
    # Read from the gate's own report (builder/bake/gate_report.py), no longer written as "passed".
    assert entry.extra["gate"] == "passed", entry.extra.get("gate_report")
    assert entry.extra["gate_report"]["passed"] >= skips.MIN_PASSED["gate"] and not entry.extra["gate_report"]["failed"]
    assert entry.extra["accelerator"]["build"] in ("kvm", "tcg")
    # The artifact was hashed before the verification boots and after them (builder/bake/artifact_guard.py):
    # the boots (-snapshot) left it unwritten, and the catalog's hash is that of the unbooted image.
    unchanged = entry.verification["checks"]["artifact_unchanged"]
    assert unchanged["ok"] and unchanged["before"][entry.artifact] == entry.sha256, unchanged
    assert entry.git_commit and entry.spec_hash and entry.tools["packer"]
    steps = [s["name"] for s in entry.timings["steps"]]
    for step in ("render", "validate", "wheelhouse", "prepare", "stack layer", "packer build", "artifacts",
                 "fresh-boot verify"):
        assert step in steps
    assert entry.extra["stack_layer"]["key"]
    assert any(s["name"] == "in-build gate (shell-local)" for s in entry.timings["scripts"])
    # the build key is gone, and the project's secret scanner finds nothing in the build directory
    # (packer.log included: its machine-readable lines escape newlines, so a key is one line there)
    # or in the catalog
    build_dir = ROOT / "build" / "django-web" / "qemu"
    assert not (build_dir / "build_key").exists()
    packer_log = (build_dir / "packer.log").read_text()
    needles = secretscan.env_needles()
    assert [str(f) for f in secretscan.scan_tree(build_dir, image=False, needles=needles)] == []
    assert [str(f) for f in secretscan.scan_catalog(Path(env["DJBAKE_CATALOG"]), needles=needles)] == []
    # seal.sh discarded the freed blocks (the disk has discard=unmap), so compaction left them out
    assert re.search(r"free space discarded: /: [\d.]+ \w+ \(\d+ bytes\) trimmed", packer_log), \
        [line for line in packer_log.splitlines() if "free space" in line or "fstrim" in line]
    # `djbake image` says so on the artifact's line ("NOT verified" would not match)
    assert re.search(rf"^qemu \S+: {re.escape(entry.artifact)} \(verified, catalog id {entry.id}\)$", baked.stdout,
                     re.M), baked.stdout[-2000:]


def test_latest_returns_the_verified_image(baked, env):
    proc = djbake(env, "latest", "--provider", "qemu")
    assert proc.returncode == 0, proc.stderr
    (entry,) = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="qemu")
    assert proc.stdout.strip() == entry.artifact


def test_launch_boots_the_latest_image_with_user_data_and_serves_http(baked, env, tmp_path):
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nwrite_files:\n  - path: /etc/djbake-launch-test\n    content: hello\n")
    name = f"e2e-{os.getpid()}"
    try:
        proc = djbake(env, "launch", "--provider", "qemu", "--name", name, "--user-data", str(user_data),
                      "--cpus", "1", "--memory", "1536", timeout=1200)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        http_port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout).group(1))
        state = json.loads((Path(env["DJBAKE_VMS"]) / name / "vm.json").read_text())
        assert vm.pid_alive(state["pid"])
        assert fresh_boot.wait_http(http_port) == 200
        machine = vm.VM(name, Path(state["directory"]) / "disk.qcow2", None, ssh_port=state["ssh_port"],
                        workdir=Path(state["directory"]), pid=state["pid"])
        out = machine.ssh(state["user"], Path(state["key"]), "cat /etc/djbake-launch-test")
        assert out.stdout.strip() == "hello", out.stderr
        # the VM writes its own overlay, backed by the catalogued image
        info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(Path(state["directory"]) / "disk.qcow2")],
                              capture_output=True, text=True)
        assert json.loads(info.stdout)["backing-filename"] == state["artifact"]
    finally:
        stop = djbake(env, "launch", "--provider", "qemu", "--stop", "--name", name)
        state_file = Path(env["DJBAKE_VMS"]) / name / "vm.json"
        if state_file.exists():  # --stop failed: still end the VM by its PID
            vm.kill_pid(json.loads(state_file.read_text())["pid"])
    assert stop.returncode == 0, stop.stderr
    assert not vm.pid_alive(state["pid"])


def test_rebuild_reuses_the_stack_layer(baked, env):
    """A second build of the same spec takes the cached stack layer and runs only the image layer.

    Its cloud-init sees a new instance on the layer's disk and adds this
    build's key; the whole image layer, gate and seal run again.
    """
    (first,) = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="qemu", verified=True)
    proc = djbake(env, "image", "--provider", "qemu", "--plain", "--no-verify", timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    entries = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="qemu")
    (again,) = [e for e in entries if e.build_id != first.build_id]
    assert again.extra["stack_layer"]["key"] == first.extra["stack_layer"]["key"]
    assert first.extra["stack_layer"]["built_now"] and not again.extra["stack_layer"]["built_now"]
    assert again.extra["gate"] == "passed" and not again.verified   # --no-verify: never `latest`
    # Only the image layer's scripts ran again (builder/bake/stack.py): the stack layer's, nginx and the
    # firewall among them since the late app-independent scripts moved there, came from the cache.
    scripts = [s["name"] for s in again.timings["scripts"]]
    for cached in (x.file for x in stack.SCRIPTS if x.layer == stack.STACK_LAYER):
        assert not any(cached in s for s in scripts), (cached, scripts)
    for rerun in ("app.sh", "gunicorn.sh", "firstboot.sh", "seal.sh", "in-build gate"):
        assert any(rerun in s for s in scripts), (rerun, scripts)
    proc = djbake(env, "latest", "--provider", "qemu")
    assert proc.stdout.strip() == first.artifact
