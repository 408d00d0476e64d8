"""The docker fast loop, end to end with the real Packer docker builder.

- the default spec baked through `djbake image -p docker`: stack scripts in a
  systemd container, the in-build gate, seal, commit, then the sealed checks
  and two fresh boots of the committed image (builder/providers/docker.py);
- a project deployed on a container of that image with djbake-deploy, as
  examples/user-data/ do on a VM;
- a deliberately broken script (an nginx config error, in a test-only copy
  of scripts/) fails the in-build gate, and the failure names the check.

dockerd is started here (scripts/host/start-dockerd.sh, idempotent); the
tests skip only when docker.io is not installed.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from builder.template import ROOT

pytestmark = pytest.mark.docker

SPEC = ROOT / "images" / "django-web.yaml"


@pytest.fixture(scope="module")
def engine():
    if shutil.which("dockerd") is None:
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    subprocess.run(["bash", str(ROOT / "scripts" / "host" / "start-dockerd.sh")], check=True)
    import docker

    return docker.from_env()


def djbake(*args, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def built_image(engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("docker-build")
    started = time.monotonic()
    proc = djbake("image", "-p", "docker", "--out", str(out), "--plain")
    seconds = time.monotonic() - started
    print(f"djbake image -p docker: exit {proc.returncode} in {seconds:.0f} s")
    return proc, out / "django-web" / "docker"


def test_image_builds_gates_and_verifies(built_image):
    proc, build_dir = built_image
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "(verified," in proc.stdout, proc.stdout[-3000:]
    gate_log = (build_dir / "gate.log").read_text()
    assert " passed" in gate_log and " failed" not in gate_log.splitlines()[-1]
    for name in ("sealed", "fresh-boot-a", "fresh-boot-b"):
        assert (build_dir / "verify" / f"{name}.junit.xml").exists(), name


def test_deploy_sample_project(engine, built_image):
    """What user-data does at VM creation: djbake-deploy a tarball; the project answers through nginx."""
    from builder import docker_base

    proc, _ = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    box = docker_base.start("djbake/django-web:latest", "test-deploy", engine)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(str(ROOT / "tests" / "sample_project"), arcname="sample-1.0",
                    filter=lambda ti: None if "__pycache__" in ti.name else ti)
        outer = io.BytesIO()
        with tarfile.open(fileobj=outer, mode="w") as tar:
            info = tarfile.TarInfo("sample-1.0.tar.gz")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
        assert box.put_archive("/root", outer.getvalue())
        code, out = box.exec_run(["/usr/local/sbin/djbake-deploy", "--source", "/root/sample-1.0.tar.gz",
                                  "--settings", "sample.settings", "--wsgi", "sample.wsgi", "--domain",
                                  "sample.example"])
        text = out.decode(errors="replace")
        assert code == 0, text
        # Each request is a row in PostgreSQL: the count goes up (deploy's own probe was the first).
        counts = []
        for _ in range(2):
            code, out = box.exec_run(["curl", "-fsS", "-H", "Host: sample.example", "http://127.0.0.1/"])
            match = re.match(rb"sample project: (\d+) visits", out)
            assert code == 0 and match, out
            counts.append(int(match.group(1)))
        assert counts[1] == counts[0] + 1, counts
        code, out = box.exec_run(["curl", "-fsS", "-H", "Host: localhost", "http://127.0.0.1/static/sample/sample.css"])
        assert code == 0 and b"sample-project-static" in out, out
        code, out = box.exec_run(["cat", "/var/lib/djbake/deploy.json"])
        assert b'"settings": "sample.settings"' in out
    finally:
        docker_base.stop(box)


BROKEN_SPEC = """\
name: django-broken
os: debian-12
stack:
  django: "5.2.19"
  gunicorn: "23.0.0"
  nginx: true
  database: none
  redis: false
  certbot: false
"""


def test_broken_script_fails_the_gate_naming_the_check(engine, tmp_path, monkeypatch):
    """An nginx config error left by a script (nginx keeps running the old one) must stop the build at the gate."""
    from builder import pipeline, spec as spec_mod, template
    from builder.errors import BuildFailed

    scripts = tmp_path / "scripts"
    shutil.copytree(ROOT / "scripts", scripts)
    # In the last stack script, so no script reloads nginx after it (a reload
    # would fail that script first); nginx keeps serving the old config.
    with open(scripts / "firstboot.sh", "a") as fh:
        fh.write("\n# test-only breakage: a config nginx -t rejects, not reloaded\n"
                 "echo 'this_is_not_a_directive on;' > /etc/nginx/conf.d/broken.conf\n")
    monkeypatch.setattr(template, "SCRIPTS_DIR", scripts)
    spec_file = tmp_path / "django-broken.yaml"
    spec_file.write_text(BROKEN_SPEC)
    spec = spec_mod.load(spec_file)
    with pytest.raises(BuildFailed) as failure:
        pipeline.run(spec, "docker", None, tmp_path / "build", verify=False)
    build_dir = tmp_path / "build" / "django-broken" / "docker"
    packer_log = (build_dir / "packer.log").read_text()
    assert "FAILED test_http::test_nginx_config_valid" in packer_log, packer_log[-3000:]
    assert "in-build gate failed" in packer_log
    assert "packer build failed" in str(failure.value)
    # No image: the gate ran before commit.
    assert not list(engine.images.list(name="djbake/django-broken"))
