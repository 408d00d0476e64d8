"""The OS matrix (builder/os_matrix.py): its table, and one non-default OS baked in `make test-matrix`.

The fast tests check what the runner writes and decides. The docker test
runs one Ubuntu release through the same path `make test-matrix` takes
(`djbake image -p docker`, gate, seal, two fresh boots): the newest Ubuntu of
the OS table whose systemd can run as PID 1 in a container on this host. It
skips, saying why, when Ubuntu's archive cannot be reached. It and the full
matrix (every OS of the table) are `make test-matrix` (marker `matrix`), not
part of `make test`, whose CI run must end within 90 minutes.
"""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
import yaml

from builder import distro, os_matrix, tables


def test_the_matrix_takes_its_oses_from_the_os_table():
    assert os_matrix.oses() == [n for n, o in tables.OPERATING_SYSTEMS.items() if o.bootstrappable]
    for name in ("debian-12", "ubuntu-26.04", "ubuntu-24.04"):
        assert name in os_matrix.oses()


def test_spec_is_the_default_spec_on_another_os(tmp_path):
    spec = yaml.safe_load(os_matrix.spec_for("ubuntu-24.04", tmp_path).read_text())
    default = yaml.safe_load(os_matrix.SPEC.read_text())
    assert spec["os"] == "ubuntu-24.04" and spec["name"] == "matrix-ubuntu-24-04"
    assert spec["stack"] == default["stack"] and spec["packages"] == default["packages"]
    assert spec["providers"] == {"docker": {}}


def test_systemd_258_and_later_cannot_boot_in_a_pure_cgroup_v1_container():
    assert "cgroup v2" in os_matrix.cannot_boot_here("259.9-0ubuntu0.1", "v1")
    # With the unified hierarchy beside v1, djbake's init wrapper gives it one.
    assert os_matrix.cannot_boot_here("259.9-0ubuntu0.1", "hybrid") == ""
    assert os_matrix.cannot_boot_here("259.9-0ubuntu0.1", "v2") == ""
    assert os_matrix.cannot_boot_here("255.4-1ubuntu8", "v1") == ""
    assert os_matrix.cannot_boot_here("252.39-1~deb12u1", "v1") == ""


def test_doc_table_is_replaced_between_markers_only(tmp_path):
    doc = tmp_path / "m.md"
    doc.write_text(f"# title\n\nprose before\n\n{os_matrix.BEGIN}\nold\n{os_matrix.END}\n\nprose after\n")
    rows = [os_matrix.Row("ubuntu-24.04", "noble", "3.12", "verified", 301.4, 812.3, "255.4"),
            os_matrix.Row("ubuntu-26.04", "resolute", "3.14", "skipped", note="a | reason")]
    os_matrix.write_doc(rows, doc, when=dt.datetime(2026, 11, 30, 1, 2, tzinfo=dt.timezone.utc))
    text = doc.read_text()
    assert text.startswith("# title\n\nprose before\n") and text.endswith("\n\nprose after\n")
    assert "old" not in text and "Last written 2026-11-30 01:02 UTC" in text
    assert "| ubuntu-24.04 | noble | 3.12 | 255.4 | verified | 5m01s | 812 MiB | 2026-11-30 01:02, " in text
    assert "| ubuntu-26.04 | resolute | 3.14 | - | skipped | - | - | 2026-11-30 01:02, " in text
    assert text.count("a \\| reason |") == 1
    # A later run of one OS replaces its row and keeps the others, in the OS table's order.
    again = [os_matrix.Row("ubuntu-26.04", "resolute", "3.14", "verified", 400, 900, "259.9")]
    os_matrix.write_doc(again, doc, when=dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.timezone.utc))
    block = doc.read_text().split(os_matrix.BEGIN)[1].split(os_matrix.END)[0]
    rows_now = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows_now] == ["ubuntu-26.04", "ubuntu-24.04"]
    assert "| verified | 6m40s | 900 MiB | 2026-12-01 00:00, " in rows_now[0]
    assert "| 5m01s | 812 MiB | 2026-11-30 01:02, " in rows_now[1]


def test_unknown_os_is_exit_2(capsys):
    assert os_matrix.main(["ubuntu-18.04"]) == 2
    assert "unknown OS 'ubuntu-18.04'" in capsys.readouterr().err


def test_committed_matrix_names_every_os_of_the_table():
    """A new OS row must be run through the matrix, and no committed row may say FAILED."""
    text = os_matrix.DOC.read_text()
    block = text.split(os_matrix.BEGIN, 1)[1].split(os_matrix.END, 1)[0]
    for name in os_matrix.oses():
        assert f"| {name} |" in block, f"docs/os-matrix.md has no row for {name}: run make test-matrix"
    failed = [line.split("|")[1].strip() for line in block.splitlines() if "| FAILED |" in line]
    assert not failed, f"docs/os-matrix.md records failed OSes: {failed}"


@pytest.mark.docker
@pytest.mark.matrix   # make test-matrix: ~5 min of CI's 90 for an OS the default image does not use
def test_newest_ubuntu_that_boots_here_bakes_and_verifies(tmp_path):
    if shutil.which("dockerd") is None:
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    subprocess.run(["bash", str(os_matrix.ROOT / "scripts" / "host" / "start-dockerd.sh")], check=True)
    ubuntus = [n for n in os_matrix.oses() if tables.OPERATING_SYSTEMS[n].family == "ubuntu"]
    reasons = []
    for name in ubuntus:   # the table lists the newest first
        reason, _ = os_matrix.skip_reason(name, log=print)
        if not reason:
            break
        reasons.append(f"{name}: {reason}")
        if reason.startswith("Ubuntu's archive"):
            pytest.skip(reason)
    else:
        pytest.skip("; ".join(reasons))
    print("skipped first: " + "; ".join(reasons) if reasons else "")
    row = os_matrix.bake(name, tmp_path)
    log = (tmp_path / f"{os_matrix.image_name(name)}.log").read_text()
    assert row.result == "verified", f"{name}: {row.note}\n{log[-4000:]}"
    assert row.seconds and row.seconds > 0 and row.size_mib and row.size_mib > 100, row
    # The gate ran on it and said so; both fresh boots were checked.
    assert " passed" in log and "fresh-boot-b" in log, log[-3000:]
    assert distro.unreachable(tables.OPERATING_SYSTEMS[name]) == ""
