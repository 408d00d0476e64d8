"""builder/gate.py without a target: command line, junit parsing, boot comparison, the key file, and
interrupting a running suite (a real child process stands in for pytest)."""
from __future__ import annotations

import _thread
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from builder.bake import gate, skips

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3">
<testcase classname="tests.image.test_http" name="test_nginx_config_valid[docker://abc]">
  <failure message="AssertionError: nginx: [emerg] unknown directive&#10;more">trace</failure></testcase>
<testcase classname="tests.image.test_http" name="test_health_url[docker://abc]"/>
<testcase classname="tests.image.test_services" name="test_time_sync_active[docker://abc]">
  <skipped message="needs a real kernel"/></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_names_the_failing_check(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    passed, skipped, failed = gate.parse_junit(path)
    assert (passed, skipped) == (1, 1)
    assert failed == ["test_http::test_nginx_config_valid (AssertionError: nginx: [emerg] unknown directive)"]


def test_markers_per_backend():
    assert gate.default_markers(gate.Target(container="c"), "gate") == "gate and not kernel"
    assert gate.default_markers(gate.Target(host="h", user="djbake"), "gate") == "gate"
    # the second fresh boot of one image: the per-VM checks only
    assert gate.default_markers(gate.Target(host="h", user="djbake"), gate.SECOND_BOOT) == "per_vm and fresh_boot"
    assert gate.default_markers(gate.Target(container="c"), gate.SECOND_BOOT) == "per_vm and fresh_boot and not kernel"


def collected(markers: str) -> set[str]:
    """module::test of the image suite's checks that -m markers selects (collection only, no host)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", str(gate.SUITE), "--hosts=paramiko://u@127.0.0.1:1",
                           "-m", markers, "--collect-only", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=gate.ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {line.split("[")[0].replace("tests/image/", "").replace(".py", "")
            for line in proc.stdout.splitlines() if "::" in line}


def test_second_boot_runs_what_differs_between_vms():
    """The second boot runs fewer checks; what it runs must still cover every per-VM value compare_boots
    reads (the checks that take the `record` fixture) and what that boot starts, and pass its minimum."""
    fresh, second = collected("fresh_boot"), collected("per_vm and fresh_boot")
    assert second < fresh
    recording = {f"{path.stem}::{name}" for path in gate.SUITE.glob("test_*.py")
                 for name in re.findall(r"^def (test_\w+)\([^)]*\brecord\b", path.read_text(), re.M)}
    assert recording and recording <= second, recording - second
    for check in ("test_services::test_no_failed_units", "test_services::test_services_enabled_and_running",
                  "test_services::test_firstboot_unit_ran",
                  "test_http::test_django_answers_on_the_vm_address", "test_hygiene::test_booted_only_per_vm_secrets"):
        assert check in second, check
    # the disk's own checks stay with the first boot
    assert "test_resilience::test_services_come_back_after_kill_9" not in second
    # a container's second boot (no kernel, no cloud-init) still reaches its minimum
    container = collected("per_vm and fresh_boot and not kernel") - {"test_firstboot::test_cloud_init_done"}
    assert len(container) >= skips.MIN_PASSED["per_vm"] + 3  # a spec without PostgreSQL skips 2, without nginx 2


def test_ssh_target_uses_one_root_process_unless_it_is_root(tmp_path):
    t = gate.Target(host="127.0.0.1", port=2222, user="djbake", key_file="/k")
    cmd = gate.pytest_command(t, "gate", tmp_path / "j.xml")
    assert "--hosts=djbake-root://djbake@127.0.0.1:2222?timeout=30&ssh_identity_file=/k" in cmd
    assert "--sudo" not in cmd   # the root process is root already
    root = gate.Target(host="h", user="root")
    cmd = gate.pytest_command(root, "gate", tmp_path / "j.xml")
    assert "--hosts=paramiko://root@h:22?timeout=30" in cmd and "--sudo" not in cmd
    with pytest.raises(ValueError):
        gate.Target(host="h", container="c")


def test_compare_boots():
    a = {"ssh_host_keys": "x", "machine_id": "1", "secret_key_sha256": "s", "db_password_sha256": "p"}
    assert gate.compare_boots(a, {k: v + "2" for k, v in a.items()}) == []
    same = gate.compare_boots(a, dict(a))
    assert len(same) == 4 and all("the same" in p for p in same)
    assert "not recorded" in gate.compare_boots(a, {})[0]


def test_compare_boots_of_an_image_without_a_database():
    """`database: none`: no password on either boot is no problem; one boot with one is."""
    a = {"ssh_host_keys": "x", "machine_id": "1", "secret_key_sha256": "s"}
    assert gate.compare_boots(a, {k: v + "2" for k, v in a.items()}) == []
    b = {**{k: v + "2" for k, v in a.items()}, "db_password_sha256": "p"}
    assert gate.compare_boots(a, b) == ["db_password_sha256: not recorded by both boots"]
    assert "secret_key_sha256: not recorded by both boots" in gate.compare_boots(a, {"ssh_host_keys": "y",
                                                                                       "machine_id": "2"})


def test_key_from_environment_is_private_and_removed(monkeypatch):
    class Args:
        key_file = None

    monkeypatch.setenv("DJBAKE_GATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----")
    made: list[str] = []
    path = gate._key_file(Args, made)
    assert made == [path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Path(path).read_text().endswith("-----\n")
    Path(path).unlink()


def test_gate_command_registered():
    from builder import cli

    args = cli.parser().parse_args(["gate", "--provider", "docker", "--container", "abc", "--log-dir", "/tmp/x"])
    assert args.container == "abc" and args.func is not None


def test_suite_markers_registered_and_documented():
    text = (gate.SUITE / "conftest.py").read_text()
    for marker in ("gate", "fresh_boot", "sealed", "kernel"):
        assert f'"{marker}":' in text


def test_skipped_checks_carry_their_message(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    assert gate.skipped_checks(path) == [("test_services::test_time_sync_active", "needs a real kernel")]


def test_a_skip_no_rule_allows_is_not_a_pass():
    allowed = [("test_services::test_redis_when_asked", "the spec has no redis"),
               ("test_services::test_time_sync_active", "needs a real kernel: a container shares the host's")]
    assert skips.problems("fresh_boot and not kernel", 80, allowed) == []
    # The same check skipping for another reason, and a check no rule names, are reported.
    odd = [("test_services::test_redis_when_asked", "no redis-cli here"),
           ("test_firstboot::test_user_data_deploy_applied", "set DJBAKE_EXPECT_SETTINGS")]
    assert [p.split(" skipped")[0] for p in skips.problems("fresh_boot", 80, odd)] == [c for c, _ in odd]


def test_too_few_passes_is_not_a_pass():
    assert skips.problems("sealed", 8, []) == []
    assert skips.problems("sealed", 7, []) == ["only 7 checks passed (a complete sealed run passes at least 8)"]
    assert skips.problems("gate or fresh_boot", 39, [])[0].startswith("only 39 checks passed")
    assert skips.problems("fresh_boot and not kernel", 40, []) == []
    assert skips.problems("per_vm and fresh_boot and not kernel", 9, [])[0].startswith("only 9 checks passed")
    assert skips.problems("per_vm and fresh_boot", 10, []) == []
    # a run of some modules only (the QEMU planted faults) is held to no minimum
    assert skips.problems("fresh_boot", 12, [], complete=False) == []


def test_a_run_of_some_modules_names_only_them():
    cmd = gate.pytest_command(gate.Target(host="h", user="u"), "fresh_boot", Path("j.xml"),
                              modules=("test_network.py", "test_hardening.py"))
    assert [a for a in cmd if a.startswith(str(gate.SUITE))] == [str(gate.SUITE / "test_network.py"),
                                                                  str(gate.SUITE / "test_hardening.py")]
    assert str(gate.SUITE) in gate.pytest_command(gate.Target(host="h"), "gate", Path("j.xml"))


def test_suite_result_with_an_unexpected_skip_is_not_ok():
    r = gate.SuiteResult("fresh-boot", 0, "fresh_boot", passed=80, unexpected=["x::y skipped: why"])
    assert not r.ok and "not a pass: x::y skipped: why" in r.summary


# -- interrupting a running suite ---------------------------------------------------------------

def _slow_suite(monkeypatch):
    """A suite command that would run for two minutes (a real child process, as pytest is)."""
    monkeypatch.setattr(gate, "pytest_command",
                        lambda *a, **k: [sys.executable, "-c", "import time; time.sleep(120)"])


def test_stop_running_suites_ends_the_suites_a_thread_waits_for(tmp_path, monkeypatch):
    """Fresh-boot verification waits for its two suites in worker threads; on Ctrl-C or SIGTERM the main
    thread ends them (gate.stop_running_suites), so the pool and the VMs are released at once instead
    of after the suites' timeout."""
    _slow_suite(monkeypatch)
    got = {}
    worker = threading.Thread(target=lambda: got.update(result=gate.run_suite(
        host="127.0.0.1", port=1, user="x", key_file="k", log_dir=tmp_path, timeout=600)))
    worker.start()
    deadline = time.monotonic() + 30
    while not gate._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gate._running, "run_suite did not register its pytest process"
    (proc,) = list(gate._running)
    gate.stop_running_suites()
    worker.join(timeout=60)
    assert not worker.is_alive(), "run_suite still waits after stop_running_suites"
    assert proc.poll() is not None and got["result"].returncode != 0
    assert not gate._running


def test_an_interrupted_run_suite_leaves_no_suite_process(tmp_path, monkeypatch):
    """Interrupted in the thread that waits (the main thread: the gate command, the docker loop), the
    suite's process is killed before the interruption goes on."""
    _slow_suite(monkeypatch)
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        threading.Timer(0.5, _thread.interrupt_main).start()
        return proc

    monkeypatch.setattr(gate.subprocess, "Popen", popen)
    # interrupt_main does nothing while SIGINT is ignored, as it is for a shell's background job (CI
    # runs the suite as one): Python's own handler for the length of the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            gate.run_suite(host="127.0.0.1", port=1, user="x", key_file="k", log_dir=tmp_path, timeout=600)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started and started[0].poll() is not None, "the suite's process outlived the interruption"
    assert not gate._running


def test_path_stats_reads_what_testinfra_file_reads_in_one_command(tmp_path):
    """tests/image/batch.path_stats against testinfra's own file() on real files of this host."""
    import testinfra
    from tests.image import batch
    host = testinfra.get_host("local://")
    (tmp_path / "secret").write_text("x")
    (tmp_path / "secret").chmod(0o640)
    (tmp_path / "dir").mkdir(mode=0o751)
    (tmp_path / "dir").chmod(0o751)
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    paths = [str(tmp_path / "secret"), str(tmp_path / "dir"), f"{tmp_path / 'link'}/", str(tmp_path / "missing")]
    stats = batch.path_stats(host, paths)
    assert set(stats) == set(paths[:3]), "a missing path is left out, the others are named as asked"
    for path in paths[:3]:
        f = host.file(path)
        assert stats[path] == (f.user, f.group, f.mode), path
    assert stats[paths[0]][2] == 0o640 and stats[f"{tmp_path / 'link'}/"][2] == 0o751


def test_the_root_process_answers_each_command_apart():
    """builder/bake/root_shell.py's server, run here as the guest runs it: exit status, both outputs as
    bytes, and a command reading stdin gets nothing of the request stream (it would eat the next request)."""
    import base64
    import json

    from builder.bake import root_shell

    proc = subprocess.Popen([sys.executable, "-u", "-c", root_shell.SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    answers = []
    for cmd in ("printf 'a\\000b'; echo err >&2; exit 3", "cat; echo after-cat", "echo $0"):
        proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
        proc.stdin.flush()
        a = json.loads(proc.stdout.readline())
        answers.append((a["rc"], base64.b64decode(a["out"]), base64.b64decode(a["err"])))
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert answers == [(3, b"a\x00b", b"err\n"), (0, b"after-cat\n", b""), (0, b"/bin/sh\n", b"")]
