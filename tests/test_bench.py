"""`djbake bench`: the ratio and report logic, the probes' parsers, and the QEMU path's pieces.

Fast: real inputs (this host's dpkg database and sockets, a junit file
written by a real pytest run, real rendered templates, a real qcow2 made by
qemu-img, real `packer validate`), no build and no VM. The measuring run
itself is `make bench` (docker: run for real, its report in bench/; qemu:
see docs/benchmarks.md).
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder import cli, spec, tables
from builder.bake import gate, layers, render, timings, wheelhouse
from builder.bake.packer_log import Timing
from builder.bench import (
    chart as bench_chart,
    exceptions as bench_exceptions,
    openscap as bench_openscap,
    probe as bench_probe,
    report as bench,
    run as bench_run,
    targets as bench_targets,
)
from builder.errors import BuildFailed
from builder.paths import ROOT
from builder.qemu import vm

SPEC = ROOT / "images" / "django-web.yaml"


def record(steps: dict[str, float], scripts: dict[str, float] | None = None, extra: float = 0.0) -> dict:
    """A catalog timings record as the pipeline writes it (timings.timings_record)."""
    total = sum(steps.values()) + extra
    packer = {"scripts": [Timing(k, v) for k, v in (scripts or {}).items()], "phases": []}
    return timings.timings_record([Timing(k, v) for k, v in steps.items()], packer, total)


# -- figures and ratios ---------------------------------------------------------

def test_ratio_is_value_over_baseline_and_none_without_a_baseline():
    assert bench.ratio(30.0, 12.0) == 30.0 / 12.0
    assert bench.ratio(30.0, 0) is None
    assert bench.ratio(30.0, None) is None
    assert bench.ratio(None, 3.0) is None


def test_build_seconds_leaves_out_verify_and_publish_and_counts_substeps_once():
    # qemu's "base image" is a step inside "prepare": both are in the record.
    steps = {"render": 0.4, "validate": 2.9, "base image": 41.0, "prepare": 42.5, "packer build": 600.0,
             "fresh-boot verify": 300.0, "publish": 0.1}
    timings = record({k: v for k, v in steps.items() if k != "base image"})
    timings["steps"].insert(2, {"name": "base image", "seconds": 41.0})
    want = timings["total_seconds"] - 300.0 - 0.1
    assert bench.build_seconds(timings) == pytest.approx(want)
    assert bench.build_seconds(timings) < sum(s["seconds"] for s in timings["steps"]) - 300.1


def test_full_build_and_rebuild_figures_use_the_catalog_records():
    full = record({"render": 0.1, "validate": 3.0, "packer build": 234.0, "fresh-boot verify": 77.0})
    again = record({"render": 0.1, "validate": 2.8, "packer build": 61.0, "publish": 0.0})
    f = bench.full_build(full, floor_seconds=120.0, bootstrap_seconds=25.0, provider="docker")
    assert f.value == pytest.approx(round(bench.build_seconds(full) + 25.0, 1))
    assert f.ratio == pytest.approx(f.value / 120.0)
    assert f.details["bootstrap_before_build_seconds"] == 25.0 and f.details["base_image_step_seconds"] == 0.0
    # qemu: the bootstrap is the build's own "base image" step, counted once (in the build's total).
    inside = record({"render": 0.1, "base image": 44.0, "packer build": 234.0})
    q = bench.full_build(inside, floor_seconds=120.0, bootstrap_seconds=0.0, provider="qemu")
    assert q.details["base_image_step_seconds"] == 44.0 and q.value == pytest.approx(round(bench.build_seconds(inside), 1))
    e = bench.end_to_end(full, floor_seconds=120.0, bare_boot_seconds=30.0, bootstrap_seconds=25.0)
    assert e.value == pytest.approx(round(full["total_seconds"] + 25.0, 1))   # verification included
    assert e.value == pytest.approx(f.value + 77.0, abs=0.2) and e.baseline == 150.0
    assert e.details["verify_seconds"] == 77.0
    r = bench.rebuild(again, full, "the app")
    assert r.value == pytest.approx(round(bench.build_seconds(again), 1))
    assert r.baseline == pytest.approx(round(bench.build_seconds(full), 1))
    assert r.ratio < 1


def test_size_figures_against_packages_and_ubuntu_minimal():
    image_bytes, installed_kib = 512 * bench.MIB + 123, 911030
    by_packages, by_ubuntu = bench.image_size(image_bytes, installed_kib, "compressed qcow2")
    assert by_packages.ratio == pytest.approx(round(image_bytes / bench.MIB, 1) / round(installed_kib / 1024, 1))
    assert by_ubuntu.baseline == tables.UBUNTU_MINIMAL_MIB
    assert by_ubuntu.ratio == pytest.approx(by_ubuntu.value / tables.UBUNTU_MINIMAL_MIB)


def test_suite_per_check_divides_by_the_number_of_checks():
    f = bench.suite_per_check(23.0, 57, 0.16, "docker", [("test_a::x", 2.5)])
    assert f.value == pytest.approx(round(23.0 / 57, 3))
    assert f.ratio == pytest.approx(f.value / 0.16)
    assert bench.suite_per_check(5.0, 0, 0.1, "ssh", []).value == 0.0


# -- the probes' parsers on real output -----------------------------------------

class _LocalTarget:
    """Stands in for gate.Target's addressing only: testinfra's local backend instead of SSH/docker."""
    needs_sudo = False
    backend = "local"

    def hosts_arg(self, scheme: str | None = None) -> str:
        return "local://"

    def describe(self) -> str:
        return "this host"


def test_gate_round_trip_times_true_through_a_real_testinfra_host():
    seconds = bench_probe.gate_round_trip(_LocalTarget(), times=5)
    # A local `true` through testinfra: a subprocess, not a login; well under a second anywhere.
    assert 0 < seconds < 1.0


def test_gate_round_trip_baseline_is_one_plain_ssh_exec_and_the_gates_transport_a_detail(tmp_path):
    """The baseline is one command round trip on an open connection (issue 18: "one SSH round trip"):
    over SSH a plain paramiko exec as the login user, no sudo; the gate's own transport (one root process,
    builder/bake/root_shell.py) is what the gate runs through, timed beside it and reported."""
    qemu = bench_targets.SSHSession(type("M", (), {"ssh_port": 2222})(), tmp_path / "key", "djbake")
    key = f"?timeout=30&ssh_identity_file={tmp_path / 'key'}"
    assert qemu.gate_target().hosts_arg() == f"djbake-root://djbake@127.0.0.1:2222{key}"
    assert qemu.gate_target().hosts_arg("paramiko") == f"paramiko://djbake@127.0.0.1:2222{key}"
    assert qemu.gate_target().needs_sudo
    docker = bench_targets.DockerSession(type("C", (), {"id": "abc123"})())
    assert docker.gate_target().hosts_arg() == docker.gate_target().hosts_arg("paramiko") == "docker://abc123"
    f = bench.suite_per_check(23.0, 57, 0.16, "ssh", [("test_a::x", 2.5)])
    assert f.baseline_title.startswith("one ssh round trip") and "no sudo" in f.baseline_title
    f.details.update({"gate_transport_seconds": 0.055, "login_round_trip_seconds": 0.9})
    doc = bench.document("qemu", [f], {}, "abc123", {})
    assert ("One `true` through the gate's own transport: 0.055 s; the baseline's plain round trip: 0.160 s; "
            "a new SSH login per `true`: 0.900 s.") in bench.report(doc)


def test_gate_round_trip_asks_testinfra_for_the_plain_or_the_gates_transport(monkeypatch):
    """Which --hosts value each timing is made with (testinfra's get_host recorded; the timing itself is
    test_gate_round_trip_times_true_through_a_real_testinfra_host's)."""
    import testinfra

    asked = []

    class Host:
        def run(self, command):
            return type("R", (), {"rc": 0})()

    monkeypatch.setattr(testinfra, "get_host", lambda spec, **kw: asked.append(spec) or Host())
    target = gate.Target(host="127.0.0.1", port=2222, user="djbake", key_file="/k")
    bench_probe.gate_round_trip(target, times=1)
    bench_probe.gate_round_trip(target, times=1, plain=False)
    assert [a.split("://")[0] for a in asked] == ["paramiko", "djbake-root"]


def test_packages_parser_on_this_hosts_dpkg_database():
    if not shutil.which("dpkg-query"):
        pytest.skip("not a Debian host")
    out = subprocess.run(["sh", "-c", bench_probe.PACKAGES_COMMAND], capture_output=True, text=True).stdout
    found = bench_probe.parse_packages(out)
    # The same facts asked another way: every installed package's size.
    sizes = subprocess.run(["sh", "-c", r"dpkg-query -W -f='${db:Status-Abbrev} ${Installed-Size}\n'"],
                           capture_output=True, text=True).stdout.splitlines()
    installed = [line.split() for line in sizes if line.startswith("ii")]
    assert len(found) == len(installed) > 50
    assert sum(found.values()) == sum(int(parts[1]) for parts in installed if len(parts) > 1)
    assert "dpkg" in found and found["dpkg"] > 0


def test_listening_parser_and_verdict():
    text = "\n".join([
        "tcp LISTEN 0      511      0.0.0.0:80   0.0.0.0:*",
        "tcp LISTEN 0      128      0.0.0.0:22   0.0.0.0:*",
        "tcp LISTEN 0      244    127.0.0.1:5432 0.0.0.0:*",
        "tcp LISTEN 0      511         [::]:80      [::]:*",
        "tcp LISTEN 0      511         [::1]:6379      [::]:*",
        "tcp LISTEN 0      511   [::ffff:127.0.0.1]:8000      *:*",
        "udp UNCONN 0      0     127.0.0.53%lo:53   0.0.0.0:*",
        "tcp LISTEN 0      511            *:443        *:*",
    ])
    sockets = bench_probe.parse_listening(text)
    assert ("tcp", "127.0.0.53", 53) not in sockets and ("udp", "127.0.0.53", 53) in sockets
    verdict = bench_probe.ports_verdict(sockets)
    assert verdict["public_tcp"] == [22, 80, 443] and verdict["ok"] and verdict["none_beyond"]
    assert verdict["local"] == ["tcp/5432", "tcp/6379", "tcp/8000", "udp/53"]
    no_tls = bench_probe.ports_verdict([s for s in sockets if s[2] != 443])
    assert not no_tls["ok"] and no_tls["none_beyond"] and no_tls["missing"] == [443]
    extra = bench_probe.ports_verdict(sockets + [("udp", "0.0.0.0", 5355)])
    assert not extra["ok"] and not extra["none_beyond"]
    # A booted VM's DHCP client socket is named, not counted as a service.
    dhcp = bench_probe.ports_verdict(sockets + [("udp", "0.0.0.0", 68)])
    assert dhcp["ok"] and dhcp["public_udp"] == [] and dhcp["dhcp_client"] == [68]


def test_listening_parser_on_this_hosts_sockets():
    if not shutil.which("ss"):
        pytest.skip("no ss here")
    out = subprocess.run(bench_probe.LISTEN_COMMAND.split(), capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if line.split()[:1] in (["tcp"], ["udp"])]
    assert len(bench_probe.parse_listening(out)) == len(lines)


def test_lynis_report_parser():
    text = ("# Lynis Report\nlynis_version=3.0.8\ntests_executed=AUTH-9262|BOOT-5122|SSH-7408|\nhardening_index=62\n"
            # Real lines of a Lynis 3.0.8 report (a debian-13 VM baked by djbake).
            "suggestion[]=SSH-7408|Consider hardening SSH configuration|AllowTcpForwarding (set YES to NO)|-|\n"
            "suggestion[]=BOOT-5264|Consider hardening system services|-|-|\n"
            "warning[]=PKGS-7392|Found one or more vulnerable packages.|-|-|\n")
    assert bench_probe.parse_lynis_report(text) == {
        "hardening_index": 62, "version": "3.0.8", "tests": 3,
        "warnings": [["PKGS-7392", "Found one or more vulnerable packages."]],
        "suggestions": [["SSH-7408", "Consider hardening SSH configuration (AllowTcpForwarding (set YES to NO))"],
                        ["BOOT-5264", "Consider hardening system services"]]}
    with pytest.raises(BuildFailed, match="hardening_index"):
        bench_probe.parse_lynis_report("lynis_version=3.0.8\n")


def test_exceptions_are_read_from_the_security_docs_exceptions_section_only(tmp_path):
    doc = tmp_path / "security.md"
    doc.write_text("## Host hardening\n| `sudo_add_ignore_dot` fixed | AUTH-9262 |\n### Exceptions\n"
                   "| Lynis DEB-0810/0811, SSH-7408 | OpenSCAP `sudo_add_{noexec,umask}`; LYNIS (its age) | "
                   "`test_x` proves it |\n## Known limits\nKRNL-6000 `sudoers_no_root_target`\n")
    assert bench_exceptions.documented(doc) == {
        "lynis": {"DEB-0810", "DEB-0811", "SSH-7408", "LYNIS"}, "openscap": {"sudo_add_noexec", "sudo_add_umask"}}
    # The real table names the exceptions the report needs (one of each form).
    real = bench_exceptions.documented()
    assert {"SSH-7408", "ACCT-9626", "DEB-0811"} <= real["lynis"]
    assert {"sudo_add_requiretty", "accounts_passwords_pam_faillock_deny"} <= real["openscap"]


def test_lynis_is_copied_from_this_host():
    if not Path("/usr/sbin/lynis").exists():
        pytest.skip("lynis is not installed here (make deps)")
    import io
    import tarfile

    names = tarfile.open(fileobj=io.BytesIO(bench_probe.lynis_tar())).getnames()
    assert "usr/sbin/lynis" in names and any(n.startswith("usr/share/lynis/include/") for n in names)


def test_check_times_from_a_real_junit_file(tmp_path):
    (tmp_path / "test_x.py").write_text("import time\ndef test_slow():\n    time.sleep(0.3)\n"
                                        "def test_fast():\n    pass\n")
    junit = tmp_path / "j.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    str(tmp_path / "test_x.py")], capture_output=True, cwd=tmp_path)
    times = gate.check_times(junit)
    assert [name for name, _ in times] == ["test_x::test_slow", "test_x::test_fast"]
    assert times[0][1] >= 0.3 > times[1][1]
    assert gate.check_times(tmp_path / "missing.xml") == []


# -- the document, the report, the chart ------------------------------------------

def a_document(tmp_path) -> dict:
    started = time.monotonic()
    full = record({"render": 0.1, "validate": 3.0, "packer build": 234.0, "fresh-boot verify": 77.0},
                  {"base.sh": 23.0, "python.sh": 69.0, "in-build gate (shell-local)": 23.0})
    again = record({"render": 0.1, "validate": 2.8, "packer build": 230.0}, {"app.sh": 2.0})
    figures = [
        bench.full_build(full, 150.0, 25.0, "docker"),
        bench.end_to_end(full, 150.0, 1.6, 25.0),
        bench.rebuild(again, full, "the app"),
        bench.boot(11.8, 1.6, "systemd boot finished"),
        *bench.image_size(1200 * bench.MIB, 911030, "docker image"),
        bench.suite_per_check(23.0, 57, 0.16, "docker", [("test_nginx::test_config", 1.2)]),
        bench.render_validate(0.3, {"aws": 1.3, "docker": 1.4}, time.monotonic() - started + 0.5),
    ]
    security = {"lynis": {"baked": 62, "base": 55, "version": "3.0.8", "findings": {
                    "warnings": [], "suggestions": [["SSH-7408", "Consider hardening SSH configuration (MaxSessions)"],
                                                    ["PKGS-7392", "Found one or more vulnerable packages."]]}},
                "openscap": {"baked": bench_openscap.parse(OSCAP_OUTPUT) | {
                    "profile": "anssi_bp28_intermediary", "content": "ssg-debian ssg-debian12-ds.xml",
                    "widened_to": "13"}, "base": {"error": "no ComplianceAsCode content for ubuntu-26.04"}},
                "ports": bench_probe.ports_verdict([("tcp", "0.0.0.0", 22), ("tcp", "0.0.0.0", 80)])}
    extra = {"substitutions": ["base reachable: systemd boot finished"],
             "builds": {"full": {"timings": full}, "rebuild": {"timings": again}}}
    return bench.document("docker", figures, security, "abc123", extra)


# Real `oscap xccdf eval` output (1.4.2, ssg-debian 0.1.76, a debian-13 container), four rules of it: oscap
# writes "\r\t" between a key and its value when its output is no terminal.
OSCAP_OUTPUT = (
    "WARNING: Skipping ./security-oval-oval-definitions-bookworm.xml.bz2 file which is referenced from XCCDF content\n"
    "--- Starting Evaluation ---\n\n"
    "Title\r\tInstall AIDE\nRule\r\txccdf_org.ssgproject.content_rule_package_aide_installed\n"
    "Result\r\tnotapplicable\n\n"
    "Title\r\tVerify Permissions On /etc/sudoers.d Directory\n"
    "Rule\r\txccdf_org.ssgproject.content_rule_directory_permissions_etc_sudoersd\nResult\r\tfail\n\n"
    "Title\r\tEnsure Software Patches Installed\n"
    "Rule\r\txccdf_org.ssgproject.content_rule_security_patches_up_to_date\nResult\r\tnotchecked\n\n"
    "Title\r\tDisable SSH Root Login\nRule\r\txccdf_org.ssgproject.content_rule_sshd_disable_root_login\n"
    "Result\r\tpass\n\n"
    "--- djbake: score ---\n"
    '<score system="urn:xccdf:scoring:default" maximum="100.000000">82.500000</score>\n')


def test_openscap_output_parser():
    found = bench_openscap.parse(OSCAP_OUTPUT)
    assert found == {"pass": 1, "fail": 1, "notapplicable": 1, "notchecked": 1, "other": {}, "applicable": 2,
                     "passing_percent": 50.0, "score": 82.5, "failed": ["directory_permissions_etc_sudoersd"]}
    # Read in text mode, the carriage returns became newlines: the same counts.
    assert bench_openscap.parse(OSCAP_OUTPUT.replace("\r", "\n")) == found
    with pytest.raises(ValueError, match="no rule results"):
        bench_openscap.parse("oscap: command not found\n")


def test_openscap_script_widens_debian_12_content_for_13_only(tmp_path):
    """The sed of the script, run here on the datastream's real line: Debian 13 matches, 11 does not."""
    line = '<ind:pattern operation="pattern match">^12.[0-9]+$</ind:pattern>\n'
    ds = tmp_path / "ds.xml"
    ds.write_text("<x>\n" + line + "</x>\n")
    script = bench_openscap.command(bench_openscap.CONTENTS["debian-13"])
    sed = next(s for s in script.splitlines() if s.startswith("sed "))
    sed = sed.replace(f"{bench_openscap.CONTENT_DIR}/ssg-debian12-ds.xml", str(ds)).replace(
        "/tmp/djbake-ds.xml", str(tmp_path / "out.xml"))
    subprocess.run(["sh", "-c", sed], check=True)
    pattern = re.search(r'match">(.*)</ind:pattern>', (tmp_path / "out.xml").read_text()).group(1)
    assert pattern == "^(12|13)[.][0-9]+$"
    assert re.match(pattern, "13.8") and re.match(pattern, "12.12") and not re.match(pattern, "11.9")
    assert "sed " not in bench_openscap.command(bench_openscap.CONTENTS["debian-12"])
    assert "Acquire::http::Proxy=http://10.0.2.2:3142" in bench_openscap.command(
        bench_openscap.CONTENTS["ubuntu-22.04"], "http://10.0.2.2:3142")
    assert set(bench_openscap.CONTENTS) | set(bench_openscap.MISSING) == set(tables.OPERATING_SYSTEMS)
    assert "no Ubuntu 24.04 datastream" in bench_openscap.scan(None, "ubuntu-24.04")["error"]


def test_document_has_every_figure_with_baseline_ratio_machine_commit_and_time(tmp_path):
    doc = a_document(tmp_path)
    keys = [f["key"] for f in doc["figures"]]
    assert keys == ["full_build", "end_to_end", "rebuild", "boot", "size_vs_packages", "size_vs_ubuntu_minimal",
                    "suite_per_check", "render_validate"]
    for f in doc["figures"]:
        assert f["baseline"] and f["ratio"] == pytest.approx(f["value"] / f["baseline"], rel=1e-3)
    assert doc["git_commit"] == "abc123" and doc["timestamp"].endswith("Z")
    assert doc["machine"]["cpus"] == os.cpu_count()
    path = tmp_path / "results.json"
    bench.write_results(doc, path)
    assert json.loads(path.read_text())["figures"] == json.loads(json.dumps(doc["figures"]))
    assert not list(tmp_path.glob("*.partial"))


def test_report_shows_every_ratio_the_substitutions_lynis_and_ports(tmp_path):
    doc = a_document(tmp_path)
    text = bench.report(doc)
    for f in doc["figures"]:
        assert f["title"] in text and bench._num(f["ratio"]) in text
    assert "systemd boot finished" in text
    assert "baked image **62**, bare base 55 (difference +7)" in text
    assert ("OpenSCAP `anssi_bp28_intermediary` (ssg-debian ssg-debian12-ds.xml, its platform check widened to "
            "Debian 13), baked image: **1 pass**, 1 fail, 1 notapplicable, 1 notchecked; 50.0% of applicable "
            "rules pass; score 82.5.") in text
    # Each finding is marked against docs/security.md's Exceptions table (SSH-7408 is in it).
    assert "Failing on the baked image: **directory_permissions_etc_sudoersd** (not in docs/security.md)." in text
    assert ("Lynis suggestions on the baked image (2; not in docs/security.md's exceptions: PKGS-7392):"
            in text and "  - SSH-7408: Consider hardening SSH configuration (MaxSessions)" in text)
    assert "OpenSCAP (bare base): not measured: no ComplianceAsCode content for ubuntu-26.04" in text
    assert "not listening: [443]; nothing else listens publicly" in text
    assert "test_nginx::test_config" in text


def test_report_without_audits_says_so_and_keeps_the_ports(tmp_path):
    doc = a_document(tmp_path)
    doc["security"].update({"audited": False, "lynis": {}, "openscap": {}})
    text = bench.report(doc)
    assert "- Lynis and OpenSCAP: not run (`djbake bench --no-audit`)." in text
    assert "hardening index" not in text and "OpenSCAP `" not in text
    assert "not listening: [443]; nothing else listens publicly" in text
    assert "Lynis and OpenSCAP: not run" not in bench.report(a_document(tmp_path))


def test_no_audit_skips_lynis_and_openscap_only(monkeypatch):
    calls = []
    monkeypatch.setattr(bench_run.bench_probe, "lynis", lambda s: calls.append("lynis") or {})
    monkeypatch.setattr(bench_run.bench_openscap, "scan", lambda *a: calls.append("scap") or {"x": 1})
    assert bench_run.audits(object(), spec.load(SPEC), "docker", "baked",
                            lambda m: None) == ({}, {"x": 1})
    assert calls == ["lynis", "scap"]
    p = cli.parser()
    assert p.parse_args(["bench", "--no-audit"]).no_audit is True
    assert p.parse_args(["bench"]).no_audit is False


def test_chart_is_a_png_of_both_builds(tmp_path):
    pytest.importorskip("matplotlib")
    doc = a_document(tmp_path)
    rows = bench_chart.rows(doc["builds"]["full"]["timings"])
    assert ("script: python.sh", 69.0) in rows and rows[0][0] == "step: render"
    nested = bench_chart.rows({"steps": [{"name": "prepare", "seconds": 113},
                                         {"name": "base image", "seconds": 110, "within": "prepare"}]})
    assert nested == [("step: prepare", 113), ("step: prepare > base image", 110)]
    path = bench_chart.write({k: v["timings"] for k, v in doc["builds"].items()}, tmp_path / "steps.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_only_rewrites_report_from_results(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bench.write_results(a_document(tmp_path), tmp_path / "results.json")
    assert cli.main(["bench", "--out", str(tmp_path), "--report-only"]) == 0
    assert "## Hardening and listening ports" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "steps.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["chart"] == "steps.png"


def test_report_only_without_results_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["bench", "--out", str(tmp_path), "--report-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0]
    assert list(tmp_path.iterdir()) == []


# -- the run's pieces (no build, no VM) ----------------------------------------------

def test_the_rebuild_changes_only_the_app_layer(tmp_path):
    """The variant spec differs only in `app:`, and the qemu stack-layer key stays: only the image layer rebuilds."""
    original = spec.load(SPEC)
    variant = spec.load(bench_run.app_variant(SPEC, tmp_path / "out"))
    assert variant.app is not None and original.app is None
    assert variant.model_dump(exclude={"app"}) == original.model_dump(exclude={"app"})
    keys = []
    for s, where in ((original, "a"), (variant, "b")):
        (r,) = render.render(s, ["qemu"], None, tmp_path / where)
        keys.append(layers.key(r.directory, s, "sha256:base", wheelhouse.key(s)))
    assert keys[0] == keys[1]


def test_environment_isolates_catalog_images_and_qemu_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_CATALOG", "/somewhere/catalog.sqlite")
    monkeypatch.delenv("DJBAKE_CACHE", raising=False)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "old-layer.qcow2").write_text("x")
    with bench_run.environment(tmp_path, "qemu"):
        assert os.environ["DJBAKE_CATALOG"] == str(tmp_path / "catalog.sqlite")
        assert os.environ["DJBAKE_IMAGES"] == str(tmp_path / "images")
        assert os.environ["DJBAKE_CACHE"] == str(tmp_path / "cache")
        assert not (tmp_path / "cache").exists()   # the full build starts from nothing
    assert os.environ["DJBAKE_CATALOG"] == "/somewhere/catalog.sqlite" and "DJBAKE_CACHE" not in os.environ
    with bench_run.environment(tmp_path, "docker"):
        assert "DJBAKE_CACHE" not in os.environ


def test_floor_script_is_valid_shell_and_installs_what_it_is_given(tmp_path):
    script = bench_targets.floor_script(["nginx", "postgresql-15", "libc6:amd64", "python3-venv"])
    assert "install libc6:amd64 nginx postgresql-15 python3-venv" in script
    assert f"--find-links {bench_targets.FLOOR_WHEELS}" in script
    (tmp_path / "floor.sh").write_text(script + "\n")
    assert subprocess.run(["bash", "-n", str(tmp_path / "floor.sh")]).returncode == 0
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", "-s", "sh", str(tmp_path / "floor.sh")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


def test_floor_takes_uv_out_of_its_wheel_as_the_build_does(tmp_path):
    """The floor installs the wheels with uv like python.sh, not with a slower pip that would flatter the ratio."""
    import zipfile

    script = bench_targets.floor_script([])
    assert "pip install -q --compile-bytecode" in script and "-m venv" not in script
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "uv-0.9.9-py3-none-manylinux_2_17_x86_64.whl", "w") as whl:
        whl.writestr("uv-0.9.9.dist-info/RECORD", "")
        whl.writestr("uv-0.9.9.data/scripts/uv", "#!/bin/sh\necho uv-from-the-wheel \"$@\"\n")
    # The floor script's command that unpacks uv (python.sh's helper, quoted in), run as the floor runs it.
    start = script.index("python3 -c ")
    line = script[start:script.index(bench_targets.FLOOR_UV, start) + len(bench_targets.FLOOR_UV)]
    line = line.replace(bench_targets.FLOOR_WHEELS, str(wheels)).replace(bench_targets.FLOOR_UV, str(tmp_path / "uv"))
    subprocess.run(["sh", "-c", line.replace("python3 ", f"{sys.executable} ", 1)], check=True)
    out = subprocess.run([str(tmp_path / "uv"), "venv"], capture_output=True, text=True, check=True).stdout
    assert out == "uv-from-the-wheel venv\n"


def test_dir_tar_unpacks_into_the_destination(tmp_path):
    import io
    import tarfile

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.whl").write_bytes(b"wheel")
    (tmp_path / "w" / ".complete").write_text("{}")
    names = tarfile.open(fileobj=io.BytesIO(bench_targets.dir_tar(tmp_path / "w", "/tmp/f/wheels"))).getnames()
    assert names == ["tmp/f/wheels/a.whl"]


def test_qemu_target_pieces(tmp_path):
    target = bench_targets.for_provider("qemu", tmp_path)
    assert isinstance(target, bench_targets.QemuTarget) and target.base_ready_what == "SSH login"
    assert target.bootstrap(spec.load(SPEC)) == 0.0   # the pipeline bootstraps in the fresh cache
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed")
    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    assert target.image_bytes(str(disk)) == disk.stat().st_size
    machine = vm.VM("m", disk, None, ssh_port=2222, workdir=tmp_path)
    session = bench_targets.SSHSession(machine, tmp_path / "k", "verify")
    cmd = machine.ssh_command("verify", tmp_path / "k", "sudo sh -c " + "'ss -Hlntu'")
    assert cmd[-1] == "sudo sh -c 'ss -Hlntu'" and "-p" in cmd and "2222" in cmd
    assert session.transport == "ssh"


def test_wait_http_counts_until_200_and_fails_naming_the_last_status():
    answers = iter([0, 502, 200])
    started = time.monotonic()
    seconds = bench_targets.seconds_to_http_200(lambda: next(answers), started, every=0.05)
    assert 0.1 <= seconds < 2
    with pytest.raises(BuildFailed, match="last status 502"):
        bench_targets.seconds_to_http_200(lambda: 502, time.monotonic(), timeout=0.2, every=0.05)


def test_null_template_validates_with_real_packer(tmp_path):
    from builder.bake import packer as packer_mod

    try:
        pk = packer_mod.find()
    except Exception:  # noqa: BLE001
        pytest.skip("no packer here")
    (tmp_path / "null.pkr.json").write_text(json.dumps(bench_run.NULL_TEMPLATE))
    ok, output = packer_mod.validate(pk, tmp_path, {})
    assert ok, output


def test_qemu_base_must_be_a_local_disk(tmp_path):
    """The bare base is booted by the bench itself: a cloud image URL is refused before any VM starts."""
    import yaml

    from builder.errors import UserError

    data = yaml.safe_load(SPEC.read_text())
    data["providers"]["qemu"]["source_image"] = "https://cloud.example/debian.qcow2"
    path = tmp_path / "url.yaml"
    path.write_text(yaml.safe_dump(data))
    target = bench_targets.QemuTarget(tmp_path / "vms", accelerator="tcg")
    with pytest.raises(UserError, match="no local file"):
        with target.base(spec.load(path)):
            pass
    assert not (tmp_path / "vms").exists()


def test_report_says_what_the_package_cache_saved():
    doc_cache = {"proxy": "http://10.0.2.2:3142",
                 "full": {"fetched": 300 * 2**20, "packages_fetched": 250, "served": 310 * 2**20,
                          "packages_served": 250},
                 "rebuild": {"fetched": 2**20, "packages_fetched": 0, "served": 40 * 2**20, "packages_served": 31}}
    text = "\n".join(bench._cache_lines(doc_cache))
    assert "| full | 300.0 MiB | 250 | 310.0 MiB | 250 |" in text
    assert "| rebuild | 1.0 MiB | 0 | 40.0 MiB | 31 |" in text
    assert "No host package cache ran" in "\n".join(bench._cache_lines({"proxy": None}))
    assert bench._cache_lines({}) == []


def test_render_validate_figure_is_the_wall_clock_of_side_by_side_validates(tmp_path):
    """The real figure, measured here: every provider validated once, side by side, against null validates."""
    if shutil.which("packer") is None:
        pytest.skip("no packer here")
    notes: list[str] = []
    fig = bench_run.render_and_validate(spec.load(SPEC), tmp_path, notes.append, null_runs=1)
    d = fig.details
    assert set(d["validate_seconds"]) == set(bench_run.providers.PROVIDERS)
    assert all("ok" in n for n in notes if n.startswith("validate ")), notes
    assert fig.value == pytest.approx(d["render_seconds"] + d["validate_wall_seconds"], abs=0.02)
    assert d["validate_sum_seconds"] == pytest.approx(sum(d["validate_seconds"].values()), abs=0.05)
    assert fig.baseline == pytest.approx(len(d["validate_seconds"]) * d["null_validate_seconds"], abs=0.05)
    assert d["ratio_side_by_side"] == pytest.approx(fig.value / d["null_side_by_side_seconds"], rel=0.02)
    text = bench.report(bench.document("qemu", [fig], {}, "abc123", {}))
    assert "ran side by side" in text and "Against the same null validates run side by side" in text
