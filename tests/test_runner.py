"""The streaming Packer runner: parsing, artifacts, secret filtering, signals (real Packer, null builder)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from builder.bake import runner

PACKER = shutil.which("packer")
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer is not installed (make deps)")


def test_parse_ui_line_with_commas_and_newlines():
    ev = runner.parse_line("1795868175,,ui,message,    null.x: a%!(PACKER_COMMA) b\\nsecond line\n")
    assert ev.type == "ui" and ev.level == "message"
    assert ev.message == "    null.x: a, b\nsecond line"
    assert ev.timestamp == 1795868175


def test_parse_rejects_non_machine_lines():
    assert runner.parse_line("plain text, not machine readable") is None
    assert runner.parse_line("") is None


def test_artifacts_assembled_from_lines():
    lines = [
        "1,amazon-ebs.aws,artifact-count,1",
        "1,amazon-ebs.aws,artifact,0,builder-id,mitchellh.amazonebs",
        "1,amazon-ebs.aws,artifact,0,id,eu-west-1:ami-0b%!(PACKER_COMMA)us-east-1:ami-0a",
        "1,amazon-ebs.aws,artifact,0,string,AMIs were created:\\neu-west-1: ami-0b",
        "1,amazon-ebs.aws,artifact,0,files-count,1",
        "1,amazon-ebs.aws,artifact,0,file,0,output/disk.qcow2",
        "1,amazon-ebs.aws,artifact,0,end",
    ]
    col = runner.ArtifactCollector()
    for line in lines:
        col.feed(runner.parse_line(line))
    (art,) = col.artifacts
    assert art.id == "eu-west-1:ami-0b,us-east-1:ami-0a"
    assert art.fields["builder-id"] == "mitchellh.amazonebs"
    assert art.fields["string"].endswith("eu-west-1: ami-0b")
    assert art.files == ["output/disk.qcow2"]


def test_secret_filter_removes_values_and_key_blocks():
    f = runner.SecretFilter(["hunter22-token", "abc", "pa,ss"])
    assert f("x pa%!(PACKER_COMMA)ss y") == "x [redacted] y"
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    out = f(f"token=hunter22-token abc {key} end")
    assert "hunter22-token" not in out and "AAAA" not in out
    assert "abc" in out  # too short to be treated as a secret: would shred the log
    assert out.count(runner.REDACTED) == 2


def _null_template(tmp: Path, command: str) -> Path:
    tpl = {
        "variable": {"tok": {"type": "string", "default": '${env("DJBAKE_TEST_TOKEN")}', "sensitive": True}},
        "source": {"null": {"x": {"communicator": "none"}}},
        "build": [{
            "sources": ["source.null.x"],
            "provisioner": [{"shell-local": {"inline": [command]}}],
            "post-processor": [{"manifest": {"output": "${path.root}/manifest.json"}}],
        }],
    }
    (tmp / "t.pkr.json").write_text(json.dumps(tpl))
    return tmp


@needs_packer
def test_real_build_streams_events_and_filters_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_TEST_TOKEN", "s3cr3t-value-42")
    d = _null_template(tmp_path, "echo using ${var.tok}, then done")
    events = []
    r = runner.PackerRunner(PACKER, tmp_path / "packer.log", secrets=["s3cr3t-value-42"], on_event=events.append)
    result = r.build(d)
    assert result.returncode == 0
    assert any("then done" in e.message for e in events)
    log = (tmp_path / "packer.log").read_text()
    assert "s3cr3t-value-42" not in log and "[redacted]%!(PACKER_COMMA) then done" in log
    assert {a.fields.get("builder-id") for a in result.artifacts} == {"fnoeding.null"}
    assert (tmp_path / "manifest.json").exists()


@needs_packer
def test_real_build_failure_collects_error(tmp_path):
    d = _null_template(tmp_path, "echo broken >&2; exit 3")
    result = runner.PackerRunner(PACKER, tmp_path / "packer.log").build(d)
    assert result.returncode != 0
    assert any("exit" in e.lower() or "error" in e.lower() for e in result.errors)


@needs_packer
def test_sigterm_is_forwarded_and_packer_cleans_up(tmp_path):
    d = _null_template(tmp_path, "sleep 120")
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from builder.bake import runner
        r = runner.PackerRunner({PACKER!r}, Path({str(tmp_path / 'packer.log')!r}))
        res = r.build(Path({str(d)!r}))
        print("rc", res.returncode, "interrupted", res.interrupted, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent.parent)
    log = tmp_path / "packer.log"
    deadline = time.time() + 60
    while time.time() < deadline and "Running local shell script" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    assert "Running local shell script" in log.read_text()
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert "interrupted True" in out
    assert proc.returncode == 0
    assert time.time() - started < 30, "the shell-local step was not stopped"
    # Packer says it cancelled; "Cleanly cancelled builds" follows only when Packer's own exit wins
    # the race with its plugins' (seen once in a CI run under load: the cancel line, then exit).
    text = log.read_text()
    assert "Cleanly cancelled builds" in text or "Cancelling build after receiving terminated" in text
    # No packer or sleep from this build is left behind.
    left = subprocess.run(["pgrep", "-f", str(d)], capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if int(pid) != os.getpid()] == []
