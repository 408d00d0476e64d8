"""End to end, for real: `djbake image --provider qemu`, then `djbake latest` and `djbake launch`.

Bakes the default spec on this machine (bootstrapped and cached Debian
base, Packer's qemu builder under TCG here, in-build gate, seal), boots the
result twice fresh and verifies it, records it in a catalog of its own,
then launches a VM from the newest verified image with the user's
user-data and gets HTTP 200 through the forwarded port. On that VM, where
kernel and firewall are real: a reboot keeps it serving with the same
secrets, planted kernel and firewall faults fail exactly their checks, and
a full disk leaves PostgreSQL consistent (tests/launched_vm.py). Last, it
rebuilds on the cached stack layer. In CI of 1f832a5 on 2026-12-02 (TCG, 2 cores,
beside the rest of the tests): base 1.6 min, stack layer 8.4, image layer with
its gate 8.8, two fresh boots 7.8, the launch tests 10, the rebuild 9.3; the
module 46 min. Every VM is stopped at the end, by PID.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder import secretscan
from builder.bake import skips
from builder.bake import stack
from builder.catalog import store as catalog
from builder.digest import sha256_file
from builder.paths import ROOT
from builder.bake import gate
from builder.qemu import fresh_boot, vm
from tests import launched_vm
from tests.launched_vm import Guest

pytestmark = pytest.mark.vm

DJBAKE = [sys.executable, "-m", "builder"]
BUILD_TIMEOUT = 75 * 60
# CI must end within 90 minutes. On the slower machines of this kind the first build took 57 min
# under CI's load (2026-12-02, with the stack packages in the base and the suite's root process;
# 75+ min before them), and the rebuild (~0.4 of a build) would take the run past its limit; it
# then skips, saying so, and `make test-rebuild` runs it alone. On the faster ones it runs.
CI_BUDGET = 80 * 60
STARTED = time.monotonic()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qemu-e2e")
    return {**os.environ, "DJBAKE_CATALOG": str(tmp / "catalog.sqlite"), "DJBAKE_IMAGES": str(tmp / "images"),
            "DJBAKE_VMS": str(tmp / "vms"), "CI": "1"}


def djbake(env, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([*DJBAKE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def bake(env, log: Path, *args) -> subprocess.CompletedProcess:
    """`djbake image` with its output written to `log` as it comes (one line per step and Packer step),
    so a build that runs out of time still says where its time went: a CI run's build once hit
    BUILD_TIMEOUT and left nothing but the timeout. Out of time, it is interrupted as Ctrl-C would
    (djbake stops its VMs) and the test fails with the log's tail."""
    with log.open("w") as out:
        proc = subprocess.Popen([*DJBAKE, "image", *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            proc.wait(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"djbake image {' '.join(args)} did not end in {BUILD_TIMEOUT} s; its log ({log}) "
                        f"ends:\n{log.read_text()[-6000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(), "")


@pytest.fixture(scope="module")
def baked(env):
    reuse = os.environ.get("DJBAKE_TEST_QEMU_BUILD")
    if reuse:
        # For iterating on the tests after the bake only (never set in CI): a finished run's directory
        # (catalog.sqlite, image.log) stands for the bake; its catalog is copied, its images are only read.
        shutil.copy(Path(reuse) / "catalog.sqlite", env["DJBAKE_CATALOG"])
        return subprocess.CompletedProcess([], 0, (Path(reuse) / "image.log").read_text(), "")
    proc = bake(env, Path(env["DJBAKE_IMAGES"]).parent / "image.log", "--provider", "qemu", "--plain")
    assert proc.returncode == 0, proc.stdout[-6000:]
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


@pytest.fixture(scope="module")
def launched(baked, env, tmp_path_factory):
    """`djbake launch` of the newest verified image with a user's user-data; the tests below use this one VM
    (reboot, planted faults, full disk) and the last stops it. Stopped by its PID here if they did not."""
    user_data = tmp_path_factory.mktemp("launch") / "user-data"
    user_data.write_text("#cloud-config\nwrite_files:\n  - path: /etc/djbake-launch-test\n    content: hello\n")
    name = f"e2e-{os.getpid()}"
    state_file = Path(env["DJBAKE_VMS"]) / name / "vm.json"
    try:
        proc = djbake(env, "launch", "--provider", "qemu", "--name", name, "--user-data", str(user_data),
                      "--cpus", "1", "--memory", "1536", timeout=1200)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = json.loads(state_file.read_text())
        machine = vm.VM(name, Path(state["directory"]) / "disk.qcow2", None, ssh_port=state["ssh_port"],
                        http_port=state["http_port"], probe_port=state["probe_port"],
                        workdir=Path(state["directory"]), pid=state["pid"])
        yield {"name": name, "proc": proc, "state": state, "guest": Guest(machine, state["user"], Path(state["key"]))}
    finally:
        if state_file.exists():   # a test failed before the last one stopped it
            djbake(env, "launch", "--provider", "qemu", "--stop", "--name", name)
        if state_file.exists():
            vm.kill_pid(json.loads(state_file.read_text())["pid"])


def test_launch_boots_the_latest_image_with_user_data_and_serves_http(launched):
    proc, state, guest = launched["proc"], launched["state"], launched["guest"]
    http_port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout).group(1))
    assert vm.pid_alive(state["pid"])
    assert fresh_boot.wait_http(http_port) == 200
    out = guest.machine.ssh(guest.user, guest.key, "cat /etc/djbake-launch-test")
    assert out.stdout.strip() == "hello", out.stderr
    # the VM writes its own overlay, backed by the catalogued image
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(Path(state["directory"]) / "disk.qcow2")],
                          capture_output=True, text=True)
    assert json.loads(info.stdout)["backing-filename"] == state["artifact"]


def test_launched_vm_keeps_serving_after_a_reboot(launched):
    """Issue 20 point 4 on a real kernel: the same VM rebooted (`systemctl reboot`) comes back with no
    failed unit, serves 200 through the forwarded port and keeps every per-VM secret of its first boot
    (tests/test_docker_reboot.py is the container's version)."""
    guest = launched["guest"]
    assert fresh_boot.wait_http(guest.machine.http_port) == 200
    before = launched_vm.identity(guest)
    seconds = launched_vm.reboot(guest)
    print(f"reboot: SSH from the new boot after {seconds:.0f} s")
    state = guest.machine.ssh(guest.user, guest.key, "systemctl is-system-running --wait", timeout=900)
    failed = guest.out("systemctl --failed --no-legend --plain")
    assert state.stdout.strip() == "running" and failed == "", (state.stdout, failed)
    assert fresh_boot.wait_http(guest.machine.http_port) == 200
    assert launched_vm.identity(guest) == before


def fault_suite(guest: Guest, workdir: Path, name: str, modules: tuple[str, ...]) -> gate.SuiteResult:
    """Image-suite modules (or single checks, `test_x.py::test_y`) run as the QEMU verifier runs the suite
    (fresh-boot markers, the VM's forwards named so the firewall is probed from outside)."""
    return gate.run_suite(host="127.0.0.1", port=guest.machine.ssh_port, user=guest.user, key_file=str(guest.key),
                          markers="fresh_boot", log_dir=workdir, name=name, fresh_boot=True,
                          extra_env={vm.FORWARDS_ENV: guest.machine.forwards()}, modules=modules)


def test_launched_vm_planted_kernel_and_firewall_faults(launched, tmp_path):
    """Issue 21 on a real kernel and a real network path: with both faults planted (their checks are
    disjoint), exactly the union of their named checks fails; once they are taken out, those checks pass."""
    guest = launched["guest"]
    faults = launched_vm.QEMU_FAULTS
    try:
        for fault in faults.values():
            guest.out(fault.plant)
        planted = fault_suite(guest, tmp_path, "planted", launched_vm.FAULT_MODULES)
    finally:
        removed = {key: guest.sh(fault.remove) for key, fault in faults.items()}
    expected = set().union(*(f.checks for f in faults.values()))
    print(planted.summary)
    assert launched_vm.failed_checks(planted.failed) == expected and not planted.unexpected, planted.summary
    # The firewall check failed because the probe saw the runner's TCP and UDP through the forward.
    (firewall,) = [f for f in planted.failed if f.startswith("test_network::")]
    assert "tcp 10.0.2.2" in firewall and "udp 10.0.2.2" in firewall, firewall
    assert all(p.returncode == 0 for p in removed.values()), {k: p.stderr for k, p in removed.items()}
    # Taken out, the named checks pass again on this VM: their failures were the faults'. Only they run
    # (every other check of those modules has just passed with the faults in; ~4 min less under TCG).
    named = tuple(sorted(check.replace("::", ".py::", 1) for check in expected))
    clean = fault_suite(guest, tmp_path, "clean", named)
    print(clean.summary)
    assert clean.ok and clean.passed == len(named), clean.summary


def test_launched_vm_survives_a_full_disk(launched):
    """Issue 20 point 4: with / full, PostgreSQL refuses writes; once space is freed it holds every
    committed row (and pg_amcheck finds nothing) and the site answers 200 again, nothing restarted by hand."""
    guest = launched["guest"]
    db = launched_vm.app_database(guest)
    guest.out(launched_vm.psql(db, f"drop table if exists {launched_vm.TABLE}; create table {launched_vm.TABLE} (id bigserial primary key, pad text not null); "
                                   f"insert into {launched_vm.TABLE}(pad) select repeat('x', 100) "
                                   f"from generate_series(1, {launched_vm.ROWS_BEFORE})"))
    try:
        print("filled:", launched_vm.fill_disk(guest))
        written, error = launched_vm.write_until_full(guest, db)
        print(f"full disk: {written} inserts committed, then: {error}")
        assert written < launched_vm.WRITE_LIMIT and error, (written, error)
        status = fresh_boot.http_status(guest.machine.http_port, timeout=60)
        print(f"full disk: GET / -> {status}")
        assert status in (200, 500, 502, 503, 504), status
    finally:
        guest.out(f"rm -f {launched_vm.FILL}")
    guest.out("for i in $(seq 120); do runuser -u postgres -- pg_isready -q && exit 0; sleep 2; done; exit 1")
    count = int(guest.out(launched_vm.psql(db, f"select count(*) from {launched_vm.TABLE}")))
    expected = launched_vm.ROWS_BEFORE + written
    # every committed row; at most one more: the failing insert's commit can be in doubt if the server crashed
    assert expected <= count <= expected + 1, (count, expected)
    amcheck = guest.sh(f"runuser -u postgres -- $(ls /usr/lib/postgresql/*/bin/pg_amcheck | tail -1) "
                       f"--install-missing --heapallindexed {db}", timeout=900)
    assert amcheck.returncode == 0, (amcheck.stdout[-2000:], amcheck.stderr[-2000:])
    assert fresh_boot.wait_http(guest.machine.http_port, timeout=300) == 200
    guest.out(launched_vm.psql(db, f"drop table {launched_vm.TABLE}"))


def test_launch_stop_powers_the_vm_off(launched, env):
    stop = djbake(env, "launch", "--provider", "qemu", "--stop", "--name", launched["name"])
    assert stop.returncode == 0, stop.stderr
    assert not vm.pid_alive(launched["state"]["pid"])


def test_rebuild_reuses_the_stack_layer(baked, env):
    """A second build of the same spec takes the cached stack layer and runs only the image layer.

    Its cloud-init sees a new instance on the layer's disk and adds this
    build's key; the whole image layer, gate and seal run again.
    """
    (first,) = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="qemu", verified=True)
    elapsed, built = time.monotonic() - STARTED, first.timings["total_seconds"]
    if elapsed + 0.4 * built > CI_BUDGET and not os.environ.get("DJBAKE_TEST_REBUILD"):
        pytest.skip(f"the first build took {built:.0f} s here and this run {elapsed:.0f} s so far: a "
                    f"rebuild would take it past {CI_BUDGET // 60} min (CI's limit is 90); `make test-rebuild` runs it")
    proc = bake(env, Path(env["DJBAKE_IMAGES"]).parent / "rebuild.log", "--provider", "qemu", "--plain",
                "--no-verify")
    assert proc.returncode == 0, proc.stdout[-6000:]
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
