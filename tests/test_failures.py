"""A provisioning script that fails midway: the build fails with one line naming the script,
its line, the command and the log; nothing is recorded.

Through `djbake image` (the real pipeline and runner, as in test_interrupts.py) with the real
Packer running a deliberately failing copy of a guest script next to the real scripts/lib.sh,
whose ERR trap names the failure.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from test_interrupts import PACKER, ROOT, Run, _catalog_rows, tmpdir_short  # noqa: F401 (fixture)

from builder.bake import runner

pytestmark = pytest.mark.skipif(not PACKER, reason="packer is not installed (make deps)")

BROKEN = textwrap.dedent("""\
    #!/usr/bin/env bash
    # A guest script that fails on line 9.
    set -euo pipefail
    . "$(dirname "$0")/lib.sh"

    log "installing things"
    mkdir -p "$WORK/etc"
    echo ok > "$WORK/etc/first-step-done"
    grep -q django "$WORK/etc/no-such-file"
    echo "never reached" > "$WORK/etc/second-step-done"
""")


def _scripts(tmp: Path, body: str, name: str) -> Path:
    scripts = tmp / "scripts"
    scripts.mkdir()
    shutil.copy2(ROOT / "scripts" / "lib.sh", scripts / "lib.sh")
    script = scripts / name
    script.write_text(body)
    script.chmod(0o755)
    return script


def test_failing_script_names_script_line_command_and_log(tmp_path, tmpdir_short):
    script = _scripts(tmp_path, BROKEN, "broken.sh")
    run = Run(tmp_path, tmpdir_short, "none", SCRIPT=str(script), WORK=str(tmp_path))
    rc, out, err = run.finish(timeout=120)
    assert rc == 1, (out, err)
    last = err.strip().splitlines()[-1]
    assert last == (f"djbake: failed: scripts/broken.sh line 9 failed: grep -q django \"$WORK/etc/no-such-file\" "
                    f"(exit 2); log: {run.log}"), err
    assert "Traceback" not in err
    assert (tmp_path / "etc" / "first-step-done").exists()
    assert not (tmp_path / "etc" / "second-step-done").exists()
    assert _catalog_rows(run.catalog) == 0, "a failed build was recorded"
    assert "scripts/broken.sh line 9 failed" in run.log.read_text()
    assert sorted(p.name for p in run.tmpdir.iterdir()) == []


def test_failure_inside_a_helper_names_the_scripts_line(tmp_path, tmpdir_short):
    body = textwrap.dedent("""\
        #!/usr/bin/env bash
        set -euo pipefail
        . "$(dirname "$0")/lib.sh"
        sleep() { :; }  # retry's pauses, not needed here
        log "fetching"
        retry 2 false
    """)
    script = _scripts(tmp_path, body, "fetch.sh")
    run = Run(tmp_path, tmpdir_short, "none", SCRIPT=str(script))
    rc, out, err = run.finish(timeout=120)
    assert rc == 1
    assert err.strip().splitlines()[-1] == f"djbake: failed: scripts/fetch.sh line 6 failed: retry 2 false (exit 1); " \
                                           f"log: {run.log}"
    assert _catalog_rows(run.catalog) == 0


def test_die_message_is_surfaced(tmp_path, tmpdir_short):
    body = '#!/usr/bin/env bash\nset -euo pipefail\n. "$(dirname "$0")/lib.sh"\ndie "no wheel for django"\n'
    script = _scripts(tmp_path, body, "app.sh")
    run = Run(tmp_path, tmpdir_short, "none", SCRIPT=str(script))
    rc, out, err = run.finish(timeout=120)
    assert rc == 1
    assert err.strip().splitlines()[-1] == f"djbake: failed: scripts/app.sh failed: no wheel for django; log: {run.log}"


@pytest.mark.parametrize("line, expected", [
    ("    docker.docker: djbake: scripts/base.sh line 28 failed: apt-get -q update (exit 100)",
     "scripts/base.sh line 28 failed: apt-get -q update (exit 100)"),
    ("    qemu.qemu: [djbake nginx] ERROR: nginx -t failed", "scripts/nginx.sh failed: nginx -t failed"),
    ("    qemu.qemu: [djbake base] installing", None),
    ("==> qemu.qemu: Provisioning with shell script: /tmp/x/base.sh", None),
])
def test_script_failure_parsing(line, expected):
    assert runner.script_failure(line) == expected


# -- transient network errors: `retry N cmd...` from scripts/lib.sh ----------------------

def _retry(tmp: Path, tries: int, fail_times: int) -> tuple[int, int, list[int], str]:
    """Run `retry tries flaky` in bash; flaky fails fail_times times, then succeeds.
    Returns (exit status, calls, the pauses retry asked for, its output)."""
    import subprocess

    counter, pauses = tmp / "calls", tmp / "pauses"
    script = textwrap.dedent(f"""\
        set -euo pipefail
        . {ROOT / 'scripts' / 'lib.sh'}
        sleep() {{ echo "$1" >> {pauses}; }}  # record the pause instead of waiting
        flaky() {{
            echo x >> {counter}
            [ "$(wc -l < {counter})" -gt {fail_times} ] || {{ echo "Temporary failure resolving deb.debian.org" >&2; return 100; }}
        }}
        retry {tries} flaky
        echo "after retry"
    """)
    path = tmp / "flaky-test.sh"
    path.write_text(script)
    proc = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=30)
    calls = len(counter.read_text().splitlines()) if counter.exists() else 0
    waits = [int(x) for x in pauses.read_text().split()] if pauses.exists() else []
    return proc.returncode, calls, waits, proc.stdout + proc.stderr


def test_retry_survives_two_transient_failures(tmp_path):
    rc, calls, waits, out = _retry(tmp_path, 5, 2)
    assert (rc, calls) == (0, 3), out
    assert waits == [5, 10], "growing pauses between tries"
    assert "after retry" in out and out.count("retrying in") == 2


def test_retry_gives_up_after_n_tries(tmp_path):
    rc, calls, waits, out = _retry(tmp_path, 4, 1000)
    assert rc != 0 and calls == 4, out
    assert waits == [5, 10, 15], "no pause after the last try"
    assert "giving up after 4 tries: flaky" in out
    assert "after retry" not in out
    # ... and the ERR trap names the call that gave up.
    assert "scripts/flaky-test.sh line 8 failed: retry 4 flaky (exit 1)" in out


def test_network_steps_in_guest_scripts_are_retried():
    """apt and pip downloads in the guest scripts go through retry (bounded) or apt's own retries."""
    import re

    scripts = {p.name: p.read_text() for p in (ROOT / "scripts").glob("*.sh")}
    lib = scripts["lib.sh"]
    assert re.search(r"^\s*retry 5 apt-get -q update", lib, re.M) and "retry 5 apt-get -q -y" in lib
    for name, text in scripts.items():
        for line in text.splitlines():
            code = line.split("#")[0]
            if re.search(r"\bapt-get\b.*\b(update|install|dist-upgrade)\b|\bpip[3]?\b.*\binstall\b|"
                         r'"\$\{pip\[@\]\}" install', code) and "retry" not in code and "--no-index" not in code \
                    and not code.strip().startswith(
                    ("local ", "pip=", "echo")):
                pytest.fail(f"scripts/{name}: a download without retry: {line.strip()}")
    assert 'Acquire::Retries "5"' in (ROOT / "scripts/files/apt/99zz-djbake-retries").read_text()


def test_err_trap_reports_once_and_ignores_masked_subshell_failures(tmp_path):
    import subprocess

    script = _scripts(tmp_path, textwrap.dedent("""\
        #!/usr/bin/env bash
        set -euo pipefail
        . "$(dirname "$0")/lib.sh"
        f() { local y=$(grep nope /etc/hostname); echo "continues"; }
        f
        inner() { ls /nonexistent-dir; }
        outer() { inner; }
        outer
    """), "nested.sh")
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "continues" in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("djbake: ")]
    assert lines == ["djbake: scripts/nested.sh line 8 failed: outer (exit 2)"], proc.stderr


def test_a_failed_verification_says_which_checks_failed_and_why():
    """A failed CI run printed only "failed: suite_verify-a, suite_verify-b"; the failing tests and their
    reasons must be in the build's log, not only in the VM's junit files that CI throws away."""
    from types import SimpleNamespace

    from builder.bake import pipeline
    from builder.providers.base import Verification

    result = Verification(False, summary="failed: suite_verify-a", checks={
        "suite_verify-a": {"ok": False, "detail": "suite-verify-a: 99 passed, 1 failed; failed: "
                                                 "test_resilience.py::test_services_come_back_after_kill_9 (gunicorn)"},
        "suite_verify-b": {"ok": True, "detail": "suite-verify-b: 100 passed"},
        "timings": {"ssh_a": 200.0}})
    notes: list[str] = []
    job = SimpleNamespace(ctx=SimpleNamespace(note=notes.append),
                          provider=SimpleNamespace(verify=lambda found, ctx: result))
    assert pipeline.verify_step(job, [("local", "not-a-file")]) is result
    assert notes[0] == "verification: FAILED - failed: suite_verify-a"
    assert notes[1:] == ["  suite_verify-a: suite-verify-a: 99 passed, 1 failed; failed: "
                         "test_resilience.py::test_services_come_back_after_kill_9 (gunicorn)"]
    assert result.failures() == [("suite_verify-a", notes[1].split(": ", 1)[1])]
