"""Progress views and timings: the pure timing parser against lines recorded from real Packer runs."""
from __future__ import annotations

import io
import json

import pytest

from builder.bake import packer_log, progress, timings
from builder.bake.runner import Result, parse_line

# `packer build -machine-readable` of Debian's Packer 1.6.6, docker builder:
# an inline shell, scripts a.sh (sleeps 2 s) and b.sh (1 s), a shell-local
# inline, b.sh again, then a manifest post-processor. Recorded as is.
RECORDED_DOCKER = r"""1795869634,,ui,say,==> rec.docker.d: Creating a temporary directory for sharing data...
1795869634,,ui,say,==> rec.docker.d: Starting docker container...
1795869634,,ui,message,    rec.docker.d: Run command: docker run -v /root/.packer.d/tmp4217756863:/packer-files -d -i -t --entrypoint=/bin/sh -- djbake/debian-12-base:latest
1795869635,,ui,message,    rec.docker.d: Container ID: e33072250e9b9776546ef1af7df4a330b28d7d4008a73c6cd474f2a3df5f65a6
1795869635,,ui,say,==> rec.docker.d: Using docker communicator to connect: 172.17.0.3
1795869635,,ui,say,==> rec.docker.d: Provisioning with shell script: /tmp/packer-shell1004057534
1795869635,,ui,message,    rec.docker.d: inline
1795869635,,ui,say,==> rec.docker.d: Provisioning with shell script: a.sh
1795869635,,ui,message,    rec.docker.d: hello from a%!(PACKER_COMMA) with comma
1795869637,,ui,say,==> rec.docker.d: Provisioning with shell script: b.sh
1795869637,,ui,message,    rec.docker.d: b running
1795869639,,ui,say,==> rec.docker.d: Running local shell script: /tmp/packer-shell2550896912
1795869639,,ui,message,    rec.docker.d: local
1795869640,,ui,say,==> rec.docker.d: Provisioning with shell script: b.sh
1795869640,,ui,message,    rec.docker.d: b running
1795869641,,ui,say,==> rec.docker.d: Killing the container: e33072250e9b9776546ef1af7df4a330b28d7d4008a73c6cd474f2a3df5f65a6
1795869641,,ui,say,==> rec.docker.d: Running post-processor:  (type manifest)
1795869641,,ui,say,Build 'rec.docker.d' finished after 6 seconds 972 milliseconds.
1795869641,,ui,say,\n==> Wait completed after 6 seconds 972 milliseconds
1795869641,,ui,say,\n==> Builds finished. The artifacts of successful builds are:
1795869641,rec.docker.d,artifact-count,2
1795869641,rec.docker.d,artifact,0,builder-id,packer.docker
1795869641,rec.docker.d,artifact,0,id,Container
1795869641,rec.docker.d,artifact,0,string,Exported Docker file: 
1795869641,rec.docker.d,artifact,0,files-count,1
1795869641,rec.docker.d,artifact,0,file,0,
1795869641,rec.docker.d,artifact,0,end
1795869641,,ui,say,--> rec.docker.d: Exported Docker file: 
1795869641,rec.docker.d,artifact,1,builder-id,packer.docker
1795869641,rec.docker.d,artifact,1,id,Container
1795869641,rec.docker.d,artifact,1,string,Exported Docker file: 
1795869641,rec.docker.d,artifact,1,files-count,1
1795869641,rec.docker.d,artifact,1,file,0,
1795869641,rec.docker.d,artifact,1,end
1795869641,,ui,say,--> rec.docker.d: Exported Docker file:"""

# Shaped like a djbake qemu build (1.6.6 wording): boot, payload upload,
# scripts whose stderr comes as ui,error lines, the gate, seal, shutdown.
QEMU_LIKE = r"""1000,,ui,say,==> django-web.qemu.qemu: Retrieving ISO
1000,,ui,say,==> django-web.qemu.qemu: Starting VM%!(PACKER_COMMA) booting disk image
1070,,ui,say,==> django-web.qemu.qemu: Waiting for SSH to become available...
1072,,ui,say,==> django-web.qemu.qemu: Connected to SSH!
1072,,ui,say,==> django-web.qemu.qemu: Provisioning with shell script: /tmp/packer-shell123
1073,,ui,say,==> django-web.qemu.qemu: Uploading /work/build/django-web/qemu/payload/ => /tmp/djbake
1075,,ui,say,==> django-web.qemu.qemu: Provisioning with shell script: /work/build/django-web/qemu/payload/scripts/base.sh
1080,,ui,error,==> django-web.qemu.qemu: W: an apt warning on stderr
1090,,ui,message,    django-web.qemu.qemu: installed
1095,,ui,say,==> django-web.qemu.qemu: Provisioning with shell script: /work/build/django-web/qemu/payload/scripts/python.sh
1215,,ui,say,==> django-web.qemu.qemu: Running local shell script: /tmp/packer-shell456
1255,,ui,say,==> django-web.qemu.qemu: Provisioning with shell script: /work/build/django-web/qemu/payload/scripts/seal.sh
1260,,ui,say,==> django-web.qemu.qemu: Gracefully halting virtual machine...
1290,,ui,say,==> django-web.qemu.qemu: Running post-processor:  (type manifest)
1291,,ui,say,Build 'django-web.qemu.qemu' finished after 4 minutes 51 seconds.
1291,,ui,say,\\n==> Wait completed after 4 minutes 51 seconds
"""


def events(text):
    return packer_log.events_from_lines(text.splitlines())


def pairs(timings):
    return [(t.name, t.seconds) for t in timings]


def test_script_timings_from_recorded_packer_run():
    t = packer_log.packer_timings(events(RECORDED_DOCKER))
    assert pairs(t["scripts"]) == [
        ("inline commands", 0), ("a.sh", 2), ("b.sh", 2), ("in-build gate (shell-local)", 1), ("b.sh", 1),
    ]
    assert pairs(t["phases"]) == [("boot and connect", 1), ("provision", 6), ("shutdown and capture", 0)]


def test_script_timings_djbake_shaped_build():
    t = packer_log.packer_timings(events(QEMU_LIKE))
    assert pairs(t["scripts"]) == [
        ("inline commands", 1), ("upload payload", 2), ("base.sh", 20), ("python.sh", 120),
        ("in-build gate (shell-local)", 40), ("seal.sh", 5),
    ]
    # stderr of a script (ui,error) and its output do not end it
    assert pairs(t["phases"]) == [("boot and connect", 72), ("provision", 188), ("shutdown and capture", 31)]


def test_failed_build_closes_the_open_script_at_the_last_event():
    lines = QEMU_LIKE.splitlines()[:9]  # python.sh never reached; base.sh still running
    lines.append("1101,,ui,error,Build 'django-web.qemu.qemu' errored after 1 minute 41 seconds: boom")
    t = packer_log.packer_timings(events("\n".join(lines)))
    assert pairs(t["scripts"])[-1] == ("base.sh", 26)


def test_no_provisioning_no_phases():
    t = packer_log.packer_timings(events("1,,ui,say,==> x.null.y: Running post-processor: manifest\n"))
    assert t == {"scripts": [], "phases": []}


def test_timings_from_log(tmp_path):
    log = tmp_path / "packer.log"
    log.write_text(RECORDED_DOCKER + "\nnot a machine-readable line\n")
    assert pairs(packer_log.timings_from_log(log)["scripts"])[1] == ("a.sh", 2)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def run_build(view, clock, ok=True):
    b = view.build("qemu")
    with b.step("base image"):
        clock.now += 90
    with b.step("packer build"):
        for ev in events(QEMU_LIKE):
            b.packer_event(ev)
        clock.now += 291
    return b.finish(Result(0 if ok else 1, [], [], None))


def test_plain_view_lines_and_summary():
    out, clock = io.StringIO(), FakeClock()
    view = progress.PlainProgress(out, clock=clock)
    with view:
        record = run_build(view, clock)
    text = out.getvalue()
    assert "[qemu    0.0s] > base image" in text
    assert "ok base image (1m30s)" in text
    assert "packer: ==> django-web.qemu.qemu: Provisioning with shell script" in text
    assert "packer error: ==> django-web.qemu.qemu: W: an apt warning" in text
    assert "installed" not in text  # script output only with --verbose
    assert "build succeeded after 6m21s" in text
    assert "timings for qemu (ok):" in text and "python.sh" in text
    assert record["total_seconds"] == 381 and record["ok"] is True
    assert record["steps"] == [{"name": "base image", "seconds": 90}, {"name": "packer build", "seconds": 291}]
    assert {"name": "python.sh", "seconds": 120} in record["scripts"]
    json.dumps(record)  # stored in the catalog as JSON


def test_a_step_inside_another_is_recorded_within_it_after_it():
    """qemu's prepare times its base image and accelerator as steps of their own: the record lists
    them after prepare, marked within it, so their seconds are not read as beside prepare's."""
    out, clock = io.StringIO(), FakeClock()
    view = progress.PlainProgress(out, clock=clock)
    with view:
        b = view.build("qemu")
        with b.step("prepare"):
            with b.step("base image"):
                clock.now += 110
            with b.step("accelerator"):
                clock.now += 2
            clock.now += 1
        with b.step("packer build"):
            clock.now += 300
        record = b.finish(Result(0, [], [], None))
    assert record["steps"] == [{"name": "prepare", "seconds": 113}, {"name": "base image", "seconds": 110,
                                                                       "within": "prepare"},
                               {"name": "accelerator", "seconds": 2, "within": "prepare"},
                               {"name": "packer build", "seconds": 300}]
    assert sum(s["seconds"] for s in record["steps"] if "within" not in s) == record["total_seconds"]
    rows = {line.split()[1]: line for line in timings.timings_text(record).splitlines()[1:-1]}
    # the table names base image under prepare, indented two places further
    assert rows["base"].index("base image") == rows["prepare"].index("prepare") + 2
    assert rows["packer"].index("packer build") == rows["prepare"].index("prepare")


def test_plain_verbose_streams_every_line():
    out, clock = io.StringIO(), FakeClock()
    view = progress.PlainProgress(out, verbose=True, summary=False, clock=clock)
    with view:
        run_build(view, clock)
    assert "packer:     django-web.qemu.qemu: installed" in out.getvalue()


def test_failed_step_and_unfinished_build():
    out, clock = io.StringIO(), FakeClock()
    view = progress.PlainProgress(out, clock=clock)
    with view:
        b = view.build("aws")
        with pytest.raises(RuntimeError):
            with b.step("packer build"):
                clock.now += 5
                raise RuntimeError("boom")
    assert "FAILED packer build (5.0s)" in out.getvalue()
    assert "build FAILED after 5.0s: packer build: boom" in out.getvalue()
    assert b.state == "failed" and b.timings["ok"] is False


def test_several_builds_at_once_in_the_live_view():
    from rich.console import Console

    out, clock = io.StringIO(), FakeClock()
    console = Console(file=out, width=120, force_terminal=False)
    view = progress.LiveProgress(out, console=console, clock=clock)
    with view:
        a, d = view.build("qemu"), view.build("docker")
        with a.step("packer build"):
            a.packer_event(parse_line("1,,ui,say,==> q: Waiting for SSH to become available..."))
            clock.now += 3
            d.note("base image cached")
            rendered = io.StringIO()
            Console(file=rendered, width=120).print(view.render())
            assert "packer build" in rendered.getvalue() and "Waiting for SSH" in rendered.getvalue()
            assert "base image cached" in rendered.getvalue()
        a.finish(ok=True)
        d.finish(ok=False, summary="Packer failed")
    text = out.getvalue()
    assert "qemu: ✓ packer build (3.0s)" in text
    assert "qemu: ok in" in text and "docker: failed in" in text


def test_make_picks_plain_off_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert type(progress.make(stream=io.StringIO())) is progress.PlainProgress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "xterm")
    assert type(progress.make(stream=Tty())) is progress.LiveProgress
    assert type(progress.make(plain=True, stream=Tty())) is progress.PlainProgress


def test_timings_text_and_duration():
    assert timings.duration(3.25) == "3.2s" or timings.duration(3.25) == "3.3s"
    assert timings.duration(125) == "2m05s"
    assert timings.duration(3725) == "1h02m05s"
    text = timings.timings_text({"total_seconds": 100, "steps": [{"name": "packer build", "seconds": 50}],
                                  "scripts": [{"name": "base.sh", "seconds": 25}]})
    assert "packer build" in text and "50%" in text and "base.sh" in text and "total" in text
    assert timings.timings_text({}) == "no timings recorded\n"
