"""The in-build gate's result as its own report (gate.junit.xml in the build directory) says it.

The catalog used to record `gate: passed` for every finished build, on the reasoning that a failed
gate fails the Packer build. What the catalog now holds is read from the report: a build whose
report is missing, names a failure, an unexpected skip or too few passes is not recorded as passed.
"""
from __future__ import annotations

from pathlib import Path

from builder.bake import gate, skips

REPORT = "gate.junit.xml"


def read(build_dir: Path) -> dict:
    """{"gate": passed | failed | missing, "gate_report": counts and problems, or None}."""
    junit = Path(build_dir) / REPORT
    if not junit.is_file():
        return {"gate": "missing", "gate_report": None}
    passed, skipped, failed = gate.parse_junit(junit)
    unexpected = skips.problems("gate", passed, gate.skipped_checks(junit))
    result = "passed" if passed and not failed and not unexpected else "failed"
    return {"gate": result,
            "gate_report": {"passed": passed, "skipped": skipped, "failed": failed, "unexpected": unexpected}}
