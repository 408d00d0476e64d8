"""builder/bake/gate_report.py and artifact_guard.py: the catalog's gate result and the artifact's
hash come from what happened (the suite's report, the file before and after), not from assumptions."""
from __future__ import annotations

from builder.bake import artifact_guard, gate_report
from builder.providers.base import Verification


def _junit(cases: str) -> str:
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'


def _passes(n: int) -> str:
    return "".join(f'<testcase classname="tests.image.test_x" name="test_{i}[docker://c]"/>' for i in range(n))


def test_gate_result_is_read_from_the_report(tmp_path):
    assert gate_report.read(tmp_path) == {"gate": "missing", "gate_report": None}
    (tmp_path / "gate.junit.xml").write_text(_junit(_passes(45)))
    got = gate_report.read(tmp_path)
    assert got["gate"] == "passed" and got["gate_report"]["passed"] == 45


def test_a_failure_an_odd_skip_or_too_few_passes_is_not_passed(tmp_path):
    report = tmp_path / "gate.junit.xml"
    report.write_text(_junit(_passes(45) + '<testcase classname="tests.image.test_http" name="test_a[x]">'
                                           '<failure message="boom"/></testcase>'))
    assert gate_report.read(tmp_path)["gate"] == "failed"
    report.write_text(_junit(_passes(45) + '<testcase classname="tests.image.test_x" name="test_b[x]">'
                                           '<skipped message="set SOMETHING to run this"/></testcase>'))
    got = gate_report.read(tmp_path)
    assert got["gate"] == "failed" and "test_x::test_b skipped" in got["gate_report"]["unexpected"][0]
    report.write_text(_junit(_passes(3)))
    assert gate_report.read(tmp_path)["gate"] == "failed"


def test_artifact_unchanged_by_verification(tmp_path):
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"image")
    found = [("local", str(disk))]
    before = artifact_guard.hashes(found)
    ok = artifact_guard.check(Verification(True, summary="fine"), before, found)
    assert ok.passed and ok.checks["artifact_unchanged"]["ok"]
    disk.write_bytes(b"image written by a boot")
    bad = artifact_guard.check(Verification(True, summary="fine"), before, found)
    assert not bad.passed and not bad.checks["artifact_unchanged"]["ok"]
    assert "artifact changed" in bad.summary


def test_no_file_artifact_no_check():
    v = Verification(True, summary="docker")
    found = [("local", "sha256:" + "0" * 64)]
    assert artifact_guard.check(v, artifact_guard.hashes(found), found) is v
