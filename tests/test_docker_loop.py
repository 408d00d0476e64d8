"""The docker fast loop, end to end with the real Packer docker builder.

- the default spec baked through `djbake image -p docker`: stack scripts in a
  systemd container, the in-build gate, seal, commit, then the sealed checks
  and two fresh boots of the committed image (builder/providers/docker.py);
- a project deployed on a container of that image with djbake-deploy, as
  examples/user-data/ do on a VM;
- a spec whose `app:` points at tests/sample_project (a path relative to the
  spec): the project is copied into the payload, baked in, verified like any
  image, and a fresh container answers from it through nginx; its
  requirement (vendor/djbake_cext) must be compiled against libpq, which the
  lean image's build does with build tools it removes again;
- on the lean image, a deploy that needs a compiler fails saying so, and
  changes nothing;
- examples/user-data/deploy-git.yaml and deploy-wheel.yaml run as written
  except for the source URL, which points at servers on this host reached
  through the docker bridge (git daemon; a plain HTTP server for the wheel);
- a deliberately broken script (an nginx config error, in a test-only copy
  of scripts/) fails the in-build gate, and the failure names the check.
- a site made by `wagtail start` (current Wagtail from PyPI, its own Django
  requirement; tests/wagtail_site.py) deployed with djbake-deploy as the
  user-data examples do: `/` and the admin login answer 200 through nginx.

Builds are the slow part (~3 min each on 2 cores): the default image is
built once per session (tests/conftest.py `built_image`, shared with the
other docker modules), and the app image is built on top of it (docker
`source_image`): the same idempotent scripts run again, now with the app.

dockerd is started by the `engine` fixture (scripts/host/start-dockerd.sh,
idempotent); the tests skip only when docker.io is not installed.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from builder import tables
from builder.bake import gate
from builder.docker import base_image as docker_base
from builder.docker import client as docker_client
from builder.paths import ROOT
from tests import wagtail_site
from tests.docker_build import built_id

pytestmark = pytest.mark.docker

SPEC = ROOT / "images" / "django-web.yaml"
SAMPLE = ROOT / "tests" / "sample_project"
EXAMPLES = ROOT / "examples" / "user-data"


def djbake(*args, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def app_image(engine, built_image, tmp_path_factory):
    """The default spec plus `app:` -> tests/sample_project, built on the first image."""
    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the default image did not build")
    work = tmp_path_factory.mktemp("docker-app")
    data = yaml.safe_load(SPEC.read_text())
    data["name"] = "django-app"
    # Its requirement has no wheel: the lean image's build compiles it with build
    # tools it installs for that alone, and removes them again.
    data["app"] = {"source": os.path.relpath(SAMPLE, work), "module": "sample.wsgi", "settings": "sample.settings",
                   "requirements": "requirements-cext.txt"}
    data["providers"] = {"docker": {"source_image": built_id(build_dir)}}
    spec = work / "django-app.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    started = time.monotonic()
    proc = djbake("image", "-p", "docker", "--spec", str(spec), "--out", str(work / "build"), "--plain")
    print(f"djbake image -p docker (app baked in, on the default image): exit {proc.returncode} "
          f"in {time.monotonic() - started:.0f} s")
    return proc, work / "build" / "django-app" / "docker"


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

    proc, _ = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    box = docker_base.start(built_id(_), "test-deploy", engine)
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
        # A requirement without a wheel, on an image without build tools.
        code, out = box.exec_run(["/usr/local/sbin/djbake-deploy", "--source", "/root/sample-1.0.tar.gz",
                                  "--settings", "sample.settings", "--requirements", "requirements-cext.txt"])
        text = out.decode(errors="replace")
        assert code != 0, text
        last = text.strip().splitlines()[-1]
        assert "without build tools" in last and "build-essential python3-dev libpq-dev" in last, text[-3000:]
        assert "stack.build_tools: true" in last, last
        code, out = box.exec_run(["readlink", "-f", "/srv/app/current"])
        assert out.decode().strip() == "/srv/app/releases/welcome", "the failed deploy replaced the welcome project"
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


def test_app_baked_from_a_local_path_answers_on_a_fresh_container(engine, app_image):

    proc, build_dir = app_image
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "(verified," in proc.stdout, proc.stdout[-3000:]
    payload_copy = build_dir / "payload" / "app" / "sample_project" / "sample" / "settings.py"
    assert payload_copy.read_text() == (SAMPLE / "sample" / "settings.py").read_text()
    box = docker_base.start(built_id(build_dir), "test-app-baked", engine)
    try:
        body = curl(box, "/")
        assert re.match(r"sample project: \d+ visits", body), body
        assert "djbake-welcome" not in curl(box, "/static/sample/sample.css")
        code, out = box.exec_run(["grep", "-c", "sample_project", "/etc/djbake/build.env"])
        assert out.strip() == b"1", out  # recorded as app/sample_project, the payload copy
        # The compiled requirement works (it loads libpq, kept as a runtime library) ...
        code, out = box.exec_run(["/srv/app/current/venv/bin/python", "-c",
                                  "import djbake_cext; print(djbake_cext.libpq_version())"])
        assert code == 0 and int(out) >= 150000, out
        # ... and what compiled it is gone.
        code, out = box.exec_run(["sh", "-c", "command -v cc || command -v gcc"])
        assert code != 0, f"a compiler is left in the image: {out}"
        code, out = box.exec_run(["sh", "-c", "dpkg -l build-essential python3-dev libpq-dev 2>&1"])
        assert not re.search(rb"^ii", out, re.M), out
    finally:
        docker_base.stop(box)


def curl(box, path: str, host: str = "localhost") -> str:
    """GET through nginx inside the container; the body, or the failure with its output."""
    code, out = box.exec_run(["curl", "-fsS", "-m", "20", "-H", f"Host: {host}", f"http://127.0.0.1{path}"])
    text = out.decode(errors="replace")
    assert code == 0, f"GET {path} (Host: {host}): curl exit {code}: {text}"
    return text


# -- deploying from a git URL and a wheel URL, as the example user-data do -----

def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def sample_wheel(directory: Path) -> Path:
    """tests/sample_project as a wheel (the package `sample` with its static files and migrations).

    Written directly in the wheel format (PEP 427): the test is about deploying
    a wheel, and building one needs nothing from outside this way.
    """
    name = "sample_project-1.0"
    files = {p.relative_to(SAMPLE).as_posix(): p.read_bytes() for p in sorted((SAMPLE / "sample").rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    files[f"{name}.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: sample-project\nVersion: 1.0\n"
    files[f"{name}.dist-info/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: djbake-tests\nRoot-Is-Purelib: true\n"
                                        b"Tag: py3-none-any\n")
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in files.items()]
    files[f"{name}.dist-info/RECORD"] = ("\n".join(record + [f"{name}.dist-info/RECORD,,"]) + "\n").encode()
    wheel = directory / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def sample_git_repo(directory: Path) -> Path:
    """A bare repository with tests/sample_project on branch main."""
    work = directory / "sample-work"
    shutil.copytree(SAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=djbake tests", "-c", "user.email=tests@djbake.invalid", "-C"]
    subprocess.run([*git, str(work), "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, str(work), "add", "-A"], check=True)
    subprocess.run([*git, str(work), "commit", "-q", "-m", "sample project"], check=True)
    bare = directory / "git" / "sample.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


@pytest.fixture(scope="module")
def sources(engine, tmp_path_factory):
    """A git daemon and an HTTP server on the docker bridge address, serving the sample project."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    served = tmp_path_factory.mktemp("served")
    gateway = docker_client.bridge_gateway(engine)
    bare = sample_git_repo(served)
    wheel = sample_wheel(served)
    git_port = free_port(gateway)
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--listen={gateway}",
                               f"--port={git_port}", f"--base-path={bare.parent}", str(bare.parent)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    handler = functools.partial(_QuietHandler, directory=str(served))
    web = http.server.ThreadingHTTPServer((gateway, 0), handler)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(50):  # git daemon listens a moment after it starts
            with contextlib.suppress(OSError), socket.create_connection((gateway, git_port), timeout=1):
                break
            time.sleep(0.1)
        yield {"git": f"git://{gateway}:{git_port}/{bare.name}",
               "wheel": f"http://{gateway}:{web.server_address[1]}/{wheel.name}"}
    finally:
        web.shutdown()
        web.server_close()
        daemon.terminate()
        daemon.wait(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def example_deploy(name: str, source: str) -> list[str]:
    """The deploy command of an example user-data file, filled in as a user would: their
    project's source, settings and WSGI module instead of the example's mysite."""
    data = yaml.safe_load((EXAMPLES / name).read_text())
    (cmd,) = [c for c in data["runcmd"] if c[0] == "/usr/local/sbin/djbake-deploy"]
    cmd = list(cmd)
    for option, value in (("--source", source), ("--settings", "sample.settings"), ("--wsgi", "sample.wsgi")):
        assert option in cmd, (name, cmd)
        cmd[cmd.index(option) + 1] = value
    return cmd


@pytest.fixture(scope="module")
def deploy_box(engine, built_image):

    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    box = docker_base.start(built_id(build_dir), "test-deploy-urls", engine)
    yield box
    docker_base.stop(box)


def test_example_git_deploy(deploy_box, sources):
    cmd = example_deploy("deploy-git.yaml", sources["git"])
    code, out = deploy_box.exec_run(cmd)
    assert code == 0, out.decode(errors="replace")
    host = cmd[cmd.index("--domain") + 1]
    assert re.match(r"sample project: \d+ visits", curl(deploy_box, "/", host)), "not the sample project"
    assert "sample-project-static" in curl(deploy_box, "/static/sample/sample.css", host)
    code, out = deploy_box.exec_run(["test", "-f", "/srv/app/src/sample/settings.py"])
    assert code == 0, "the clone is not in /srv/app/src"


def test_example_wheel_deploy(deploy_box, sources):
    cmd = example_deploy("deploy-wheel.yaml", sources["wheel"])
    code, out = deploy_box.exec_run(cmd)
    assert code == 0, out.decode(errors="replace")
    assert re.match(r"sample project: \d+ visits", curl(deploy_box, "/")), "not the sample project"
    assert "sample-project-static" in curl(deploy_box, "/static/sample/sample.css")
    # Served from the installed wheel, not from a source tree.
    code, out = deploy_box.exec_run(["/srv/app/current/venv/bin/python", "-c", "import sample; print(sample.__file__)"],
                                    workdir="/")
    assert code == 0 and b"/site-packages/sample/" in out, out
    code, out = deploy_box.exec_run(["cat", "/var/lib/djbake/deploy.json"])
    assert sources["wheel"].encode() in out, out


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
    from builder import spec as spec_mod
    from builder.bake import pipeline, template
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


# -- `database: none`: an image for an external database, verified like any other --------

def test_image_without_a_database_bakes_gates_and_verifies(engine, tmp_path):
    """`database: none` (client only): the in-build gate passes, both fresh boots pass, and the two-boot
    comparison (builder/bake/gate.py compare_boots) accepts that neither boot has a database password
    while still requiring host keys, machine-id and SECRET_KEY to differ. One full bake plus the verifier's
    three suite runs, like the default image's (1589 s measured on a host at load ~30)."""
    data = yaml.safe_load(SPEC.read_text())
    data["name"] = "django-nodb"
    data["stack"]["database"] = "none"
    data["providers"] = {"docker": {}}
    spec = tmp_path / "django-nodb.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "builder", "image", "-p", "docker", "--spec", str(spec),
                           "--out", str(tmp_path / "build"), "--plain"], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "DJBAKE_CATALOG": str(tmp_path / "catalog.sqlite")})
    print(f"djbake image -p docker (database: none): exit {proc.returncode} in {time.monotonic() - started:.0f} s")
    build_dir = tmp_path / "build" / "django-nodb" / "docker"
    image = built_id(build_dir) if (build_dir / "manifest.json").exists() else None
    try:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert re.search(r"\(verified, catalog id \d+\)", proc.stdout), proc.stdout[-3000:]
        gate_last = (build_dir / "gate.log").read_text().strip().splitlines()[-1]
        assert " passed" in gate_last and "failed" not in gate_last, gate_last
        boots = [json.loads((build_dir / "verify" / f"boot-{x}.json").read_text()) for x in "ab"]
        for boot in boots:
            assert "db_password_sha256" not in boot, boot   # no secret recorded as the hash of ""
            assert boot.get("secret_key_sha256") and boot.get("machine_id"), boot
        assert boots[0]["secret_key_sha256"] != boots[1]["secret_key_sha256"]
        # What makes the image one for an external database: no server package, no local role skipped silently.
        out = engine.containers.run(image, ["dpkg-query", "-W", "-f", "${Package}\\n"], entrypoint=[],
                                    remove=True).decode()
        assert "postgresql-client" in out.split() or any(p.startswith("postgresql-client-") for p in out.split()), out
        assert not [p for p in out.split() if re.fullmatch(r"postgresql(-\d+)?", p)], "a PostgreSQL server is installed"
        skipped = {c for c, _ in gate.skipped_checks(build_dir / "verify" / "fresh-boot-a.junit.xml")}
        assert "test_firstboot::test_database_role_uses_the_generated_password" in skipped, skipped
    finally:
        if image:
            with contextlib.suppress(Exception):
                engine.images.remove(image, force=True)


# -- a third-party project: a site made by `wagtail start` ---------------------

def test_wagtail_start_site_deploys_through_nginx(engine, built_image, tmp_path):
    """`wagtail start` (current Wagtail, its own Django requirement) deployed unmodified from PyPI: djbake-deploy finds its
    production settings beside manage.py's dev ones, installs requirements.txt, and fills what the generated
    settings leave to the server (secret key, hosts, the SQLite file -> PostgreSQL) through its overlay; the
    home page, the admin login and the admin's CSS answer through nginx."""
    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    os_ = tables.OPERATING_SYSTEMS[yaml.safe_load(SPEC.read_text())["os"]]
    got = wagtail_site.download_wheels(tmp_path / "wheels", os_.python, os_.glibc)
    if got.returncode != 0:
        pytest.skip(f"Wagtail's wheels could not be downloaded from PyPI: {got.stderr.strip()[-300:]}")
    box = docker_base.start(built_id(build_dir), "test-wagtail", engine, boot_timeout=300)
    try:
        wagtail_site.put_wheels(box, tmp_path / "wheels")
        versions = wagtail_site.generate(box)
        code, out = box.exec_run(["cat", f"{wagtail_site.SITE}/requirements.txt"])
        assert b"wagtail" in out.lower() and b"django" in out.lower(), out
        host = "www.example.com"
        cmd = ["/usr/local/sbin/djbake-deploy", "--source", wagtail_site.SITE, "--domain", host]
        wagtail_site.trust_host_cas(box)
        code, out = box.exec_run(cmd)
        text = out.decode(errors="replace")
        assert code == 0, f"{versions}\n{text[-4000:]}"
        assert "settings: mysite.settings.production (from manage.py" in text, text[-4000:]
        fills = re.search(r"djbake_settings fills what mysite.settings.production leaves to the server: (.*)", text)
        assert fills and "SECRET_KEY" in fills.group(1) and "DATABASES" in fills.group(1), text[-4000:]
        home = curl(box, "/", host)
        assert "wagtail" in home.lower(), home[:2000]
        login = curl(box, "/admin/login/", host)
        assert 'name="password"' in login and "csrfmiddlewaretoken" in login, login[:2000]
        # The admin's own static files were collected and nginx serves them.
        css = re.search(r'href="(/static/wagtailadmin/css/[^"]+\.css)"', login)
        assert css, login[:2000]
        curl(box, css.group(1), host)
        # Its data is in the server's PostgreSQL, not in a SQLite file in the code tree.
        code, out = box.exec_run(["runuser", "-u", "postgres", "--", "psql", "-tAc",
                                  "select count(*) from wagtailcore_page", "django"])
        assert code == 0 and int(out.decode().strip()) >= 2, out
    finally:
        docker_base.stop(box)
