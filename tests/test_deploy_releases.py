"""djbake-deploy's releases on the docker image, with a real project from PyPI.

tests/twelve_factor is written the way cookiecutter-style projects are:
settings read DATABASE_URL, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS through
django-environ, STATIC_ROOT = BASE_DIR / "staticfiles", pyproject.toml +
uv.lock and no requirements.txt, plus two variables of its own (an admin URL,
a mail provider's key). It is deployed unmodified, given only those two.
Its packages come from PyPI through the container's network: this host
reaches PyPI through a TLS-inspecting proxy, so the container first gets the
host's CA certificates (as cloud-init's ca_certs would put them) - and the
deploy before that is the real TLS failure the diagnosis must name.

Then: a release whose migration fails leaves the previous release answering;
--rollback returns to the release before; an unsatisfiable pin and an
unreachable index are diagnosed as such (the compile failure is
test_docker_loop.py's build-tools case).

The image: the default spec built here (`djbake image -p docker`), or one
built before (DJBAKE_TEST_DOCKER_BUILD, see tests/docker_build.py).
"""
from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from builder.docker import launch as docker_launch
from builder.paths import ROOT
from tests.docker_build import built_id

pytestmark = pytest.mark.docker

PROJECT = ROOT / "tests" / "twelve_factor"
DEPLOY = "/usr/local/sbin/djbake-deploy"
HOST_CAS = Path("/usr/local/share/ca-certificates")
SECRET = "key-test-5b1c0a9e7d"  # the project's mail key: must never be printed


@pytest.fixture(scope="module")
def image(built_image):
    """The default spec's docker image: the session's build (tests/conftest.py), or one reused."""
    proc, build_dir = built_image
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return built_id(build_dir)


USER_DATA = f"""#cloud-config
write_files:
  - path: /root/secrets.env
    permissions: "0600"
    content: |
      # the project's own secrets
      MAILGUN_API_KEY="{SECRET}"
runcmd:
  - [touch, /root/user-data-ran]
"""


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    """A container as `djbake launch --provider docker --user-data FILE` starts it."""
    user_data = tmp_path_factory.mktemp("ud") / "user-data.yaml"
    user_data.write_text(USER_DATA)
    name = f"test-releases-{os.getpid()}"
    proc = subprocess.run([sys.executable, "-m", "builder", "launch", "--provider", "docker", "--docker-image", image,
                           "--name", name, "--user-data", str(user_data)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    container = docker_launch.find(name)
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(r"http://\d+\.\d+\.\d+\.\d+/", proc.stdout), proc.stdout
        yield container
    finally:
        subprocess.run([sys.executable, "-m", "builder", "launch", "--provider", "docker", "--name", name, "--stop"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_launch_applied_the_user_data(box):
    assert sh(box, "test", "-f", "/root/user-data-ran")[0] == 0
    code, mode = sh(box, "stat", "-c", "%a", "/root/secrets.env")
    assert mode.strip() == "600", mode
    proc = subprocess.run([sys.executable, "-m", "builder", "launch", "--provider", "docker", "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert box.id[:12] in proc.stdout, proc.stdout


def test_launch_trusts_ca_certs(image):
    """ca_certs from user-data: the host's CAs make PyPI (behind this host's TLS proxy) trusted."""
    cas = [p.read_text() for p in HOST_CAS.glob("*.crt")]
    if not cas:
        pytest.skip("no host CA to hand over")
    text = "#cloud-config\n" + yaml.safe_dump(
        {"ca_certs": {"trusted": cas}, "runcmd": [["curl", "-sSf", "-o", "/dev/null", "https://pypi.org/simple/"]]})
    launched = docker_launch.start(image, f"test-ca-{os.getpid()}", text, log=lambda _: None)
    try:
        assert launched.address
    finally:
        assert docker_launch.stop(launched.name)


def sh(box, *cmd, env=None) -> tuple[int, str]:
    code, out = box.exec_run(list(cmd), environment=env or {})
    return code, out.decode(errors="replace")


def put(box, directory: str, files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    sh(box, "mkdir", "-p", directory)
    assert box.put_archive(directory, buf.getvalue())


def project_tarball(release: str, failing_migration: bool = False, extra: dict[str, str] | None = None) -> bytes:
    """tests/twelve_factor as a release tarball; RELEASE in its view says which one it is."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(PROJECT.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(PROJECT).as_posix()
            data = path.read_bytes()
            if rel == "pages/views.py":
                data = data.replace(b'RELEASE = "v1"', f'RELEASE = "{release}"'.encode())
            info = tarfile.TarInfo(f"twelve-{release}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        files = dict(extra or {})
        if failing_migration:
            files["pages/migrations/0002_broken.py"] = (
                "from django.db import migrations\n\n\n"
                "def fail(apps, schema_editor):\n"
                "    raise RuntimeError('djbake-test: this migration fails on purpose')\n\n\n"
                "class Migration(migrations.Migration):\n"
                "    dependencies = [('pages', '0001_initial')]\n"
                "    operations = [migrations.RunPython(fail)]\n")
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"twelve-{release}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def deploy(box, release: str, *extra: str, env=None, **kwargs) -> tuple[int, str]:
    put(box, "/root/src", {f"twelve-{release}.tar.gz": project_tarball(release, **kwargs)})
    return sh(box, DEPLOY, "--source", f"/root/src/twelve-{release}.tar.gz", "--env", "DJANGO_ADMIN_URL=manage/",
              "--env-file", "/root/secrets.env", "--env", "DJANGO_SECURE_SSL_REDIRECT=False", *extra, env=env)


def get(box, path: str) -> tuple[int, str]:
    """GET through nginx in the container: (status, body)."""
    code, out = sh(box, "curl", "-sS", "-m", "30", "-o", "/tmp/body", "-w", "%{http_code}", "-H", "Host: localhost",
                   f"http://127.0.0.1{path}")
    assert code == 0, out
    return int(out), sh(box, "cat", "/tmp/body")[1]


@pytest.fixture(scope="module")
def first(box):
    """v1 deployed: first a TLS failure (no CA yet), then with the host's CAs."""
    tls = deploy(box, "v1")
    cas = {p.name: p.read_bytes() for p in HOST_CAS.glob("*.crt")}
    if cas:
        put(box, "/usr/local/share/ca-certificates", cas)
        sh(box, "update-ca-certificates")
    return tls, deploy(box, "v1")


def test_no_ca_is_a_tls_failure_naming_the_index(first):
    (code, out), _ = first
    if not list(HOST_CAS.glob("*.crt")):
        pytest.skip("this host reaches PyPI without a CA of its own: no TLS failure to provoke")
    assert code != 0, out
    last = out.strip().splitlines()[-1]
    assert "step 'install'" in last and "network/TLS failure" in last, out[-3000:]
    assert "https://pypi.org/simple" in last, last


def test_twelve_factor_project_deploys_unmodified(box, first):
    _, (code, out) = first
    assert code == 0, out[-5000:]
    assert "uv.lock" in out, out  # the locked set, and it says so
    assert SECRET not in out, "the project's secret was printed"
    status, body = get(box, "/")
    assert status == 200 and body.startswith("twelve-factor v1:") and "mail key set: True" in body, (status, body)
    status, body = get(box, "/manage/login/")
    assert status == 200 and "csrfmiddlewaretoken" in body, (status, body[:500])
    status, body = get(box, "/static/pages/site.css")
    assert status == 200 and "twelve-factor-static" in body, (status, body)
    status, body = get(box, "/static/admin/css/base.css")
    assert status == 200, status
    # The environment first boot wrote, under the names the project reads.
    code, env = sh(box, "cat", "/etc/djbake/app.env")
    for key in ("DATABASE_URL=postgres://django:", "DJANGO_SECRET_KEY=", "DJANGO_ALLOWED_HOSTS=localhost",
                "DJANGO_SETTINGS_MODULE=config.settings", "DJANGO_ADMIN_URL=manage/", f"MAILGUN_API_KEY={SECRET}"):
        assert key in env, key
    # Code and virtualenv are root's, the project's Django its own (not the image's pins' venv).
    code, live = sh(box, "readlink", "-f", "/srv/app/current")
    assert live.strip().startswith("/srv/app/releases/") and "welcome" not in live
    code, out = sh(box, "find", live.strip(), "-user", "django", "-print", "-quit")
    assert code == 0 and not out.strip(), f"the app owns code: {out}"
    code, out = sh(box, "runuser", "-u", "django", "--", "touch", f"{live.strip()}/src/config/x")
    assert code != 0, "the app can write its code"
    code, out = sh(box, f"{live.strip()}/venv/bin/python", "-c", "import environ, django; print(django.__file__)")
    assert code == 0 and live.strip() in out, out


def test_failed_migration_keeps_the_previous_release(box, first):
    _, (code, _) = first
    assert code == 0
    code, before = sh(box, "readlink", "-f", "/srv/app/current")
    code, out = deploy(box, "v2", failing_migration=True)
    assert code != 0, out[-3000:]
    assert "step 'migrate' failed" in out and "this migration fails on purpose" in out, out[-3000:]
    assert sh(box, "readlink", "-f", "/srv/app/current")[1] == before
    status, body = get(box, "/")
    assert status == 200 and body.startswith("twelve-factor v1:"), (status, body)
    # The failed release is gone; the live one and the welcome one are there.
    code, listing = sh(box, DEPLOY, "--list")
    assert len(listing.strip().splitlines()) == 2, listing


def test_rollback_returns_to_the_release_before(box, first):
    _, (code, _) = first
    assert code == 0
    code, out = deploy(box, "v3")
    assert code == 0, out[-3000:]
    assert get(box, "/")[1].startswith("twelve-factor v3:")
    code, out = sh(box, DEPLOY, "--rollback")
    assert code == 0, out
    status, body = get(box, "/")
    assert status == 200 and body.startswith("twelve-factor v1:"), (status, body)
    assert get(box, "/static/pages/site.css")[0] == 200


def test_https_redirect_without_a_certificate_says_what_to_set(box, first):
    _, (code, _) = first
    assert code == 0
    code, before = sh(box, "readlink", "-f", "/srv/app/current")
    put(box, "/root/src", {"twelve-v4.tar.gz": project_tarball("v4")})
    # The project's default: every page redirects to https, which nothing answers yet.
    sh(box, "djbake-env", "unset", "DJANGO_SECURE_SSL_REDIRECT")
    code, out = sh(box, DEPLOY, "--source", "/root/src/twelve-v4.tar.gz")
    assert code != 0, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert "step 'nginx'" in last and "SECURE_SSL_REDIRECT" in last and "--domain" in last, out[-3000:]
    assert sh(box, "readlink", "-f", "/srv/app/current")[1] == before
    sh(box, "djbake-env", "set", "DJANGO_SECURE_SSL_REDIRECT", "False")
    sh(box, "systemctl", "restart", "gunicorn.service")
    assert get(box, "/")[0] == 200


def test_domain_with_unreachable_acme_keeps_the_live_release(box, first):
    """--domain on a project that redirects to https: certbot (the image's, really run) must issue the
    certificate before the switch; here no ACME server answers, so the deploy fails at that step."""
    _, (code, _) = first
    assert code == 0
    code, before = sh(box, "readlink", "-f", "/srv/app/current")
    put(box, "/root/src", {"twelve-v5.tar.gz": project_tarball("v5")})
    sh(box, "djbake-env", "unset", "DJANGO_SECURE_SSL_REDIRECT")
    try:
        code, out = sh(box, DEPLOY, "--source", "/root/src/twelve-v5.tar.gz", "--domain", "shop.example.test",
                       env={"DJBAKE_ACME_SERVER": "https://127.0.0.1:9/directory"})
    finally:
        sh(box, "djbake-env", "set", "DJANGO_SECURE_SSL_REDIRECT", "False")
    assert code != 0, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert "step 'certificate'" in last and "live release is unchanged" in last, out[-3000:]
    assert re.search(r"(?i)certbot|letsencrypt", out), out[-3000:]  # certbot's own lines: it really ran
    assert sh(box, "readlink", "-f", "/srv/app/current")[1] == before
    assert get(box, "/")[0] == 200


def test_domain_without_https_redirect_goes_live_with_a_warning(box, first):
    """A project that does not redirect goes live on http when certbot cannot issue, and says so."""
    _, (code, _) = first
    assert code == 0
    code, out = deploy(box, "v6", "--domain", "blog.example.test",
                       env={"DJBAKE_ACME_SERVER": "https://127.0.0.1:9/directory"})
    assert code == 0, out[-3000:]
    assert re.search(r"warning: no certificate for blog\.example\.test", out), out[-3000:]
    assert get(box, "/")[1].startswith("twelve-factor v6:")


def test_startproject_site_deploys_with_only_a_requirements_file(box, first):
    """`django-admin startproject` as generated, plus the requirements.txt every deploy needs: its settings leave
    ALLOWED_HOSTS, the database (SQLite beside the code) and STATIC_ROOT to the server and carry Django's
    development key and DEBUG, and djbake's overlay fills exactly those; the admin and its CSS answer through nginx, its database is the server's PostgreSQL."""
    _, (code, _) = first
    assert code == 0
    welcome = "/srv/app/releases/welcome/venv/bin"
    code, version = sh(box, f"{welcome}/python", "-c", "import django; print(django.__version__)")
    assert code == 0, version
    sh(box, "rm", "-rf", "/root/src/startsite")
    code, out = sh(box, "sh", "-c", "mkdir -p /root/src/startsite && "
                   f"{welcome}/django-admin startproject startsite /root/src/startsite")
    assert code == 0, out
    put(box, "/root/src/startsite", {"requirements.txt": f"django=={version.strip()}\n".encode()})
    code, out = sh(box, DEPLOY, "--source", "/root/src/startsite")
    assert code == 0, out[-4000:]
    assert "settings: startsite.settings (from manage.py" in out, out[-3000:]
    fills = re.search(r"djbake_settings fills what startsite.settings leaves to the server: (.*)", out)
    assert fills, out[-3000:]
    filled = fills.group(1)
    assert "ALLOWED_HOSTS" in filled and "DATABASES" in filled and "STATIC_ROOT" in filled, filled
    assert "SECRET_KEY" in filled and "DEBUG (off)" in filled, filled  # startproject's django-insecure- key, DEBUG
    status, body = get(box, "/admin/login/")
    assert status == 200 and "csrfmiddlewaretoken" in body, (status, body[:500])
    css = re.search(r'href="(/static/admin/css/[^"]+\.css)"', body)
    assert css and get(box, css.group(1))[0] == 200, body[:1500]
    code, out = sh(box, "djbake-env", "manage", "shell", "-c",
                   "from django.db import connection; print(connection.vendor, connection.settings_dict['NAME'])")
    assert code == 0 and out.strip().splitlines()[-1] == "postgresql django", out
    code, out = sh(box, "sh", "-c", "ls /srv/app/current/src/db.sqlite3 2>&1 || true")
    assert "No such file" in out, out


def test_psycopg_c_on_an_image_without_a_compiler_is_psycopg_binary(box, first):
    """psycopg[c] (cookiecutter-django's production pin) has no wheel and this image no compiler: the deploy
    installs psycopg-binary of the psycopg version uv resolved in its place, says so, and goes live."""
    _, (code, _) = first
    assert code == 0
    welcome = "/srv/app/releases/welcome/venv/bin"
    version = sh(box, f"{welcome}/python", "-c", "import django; print(django.__version__)")[1].strip()
    sh(box, "rm", "-rf", "/root/src/pgc")
    code, out = sh(box, "sh", "-c", f"mkdir -p /root/src/pgc && {welcome}/django-admin startproject pgc /root/src/pgc")
    assert code == 0, out
    put(box, "/root/src/pgc", {"requirements.txt": f"django=={version}\npsycopg[c]\n".encode()})
    code, out = sh(box, DEPLOY, "--source", "/root/src/pgc")
    assert code == 0, out[-4000:]
    assert "requirements.txt; psycopg[c] needs a compiler this image lacks: psycopg-binary" in out, out[-3000:]
    code, out = sh(box, "/srv/app/current/venv/bin/python", "-c", "import psycopg, importlib.metadata as m; "
                   "print(psycopg.pq.__impl__, psycopg.__version__ == m.version('psycopg-binary'))")
    assert code == 0 and out.split() == ["binary", "True"], out
    code, out = sh(box, "djbake-env", "manage", "shell", "-c",
                   "from django.db import connection; connection.ensure_connection(); print(connection.vendor)")
    assert code == 0 and out.strip().splitlines()[-1] == "postgresql", out


def test_unsatisfiable_pin_is_no_matching_distribution(box, first):
    _, (code, _) = first
    assert code == 0
    put(box, "/root/src/pinned", {"requirements.txt": b"django==99.0\n", "manage.py": b""})
    code, out = sh(box, DEPLOY, "--source", "/root/src/pinned", "--settings", "config.settings")
    assert code != 0
    last = out.strip().splitlines()[-1]
    pyver = sh(box, "python3", "-c", "import platform; print(platform.python_version())")[1].strip()
    assert "no matching distribution" in last and f"Python {pyver}" in last and "django==99.0" in last, out[-3000:]


def test_unreachable_index_is_a_network_failure(box, first):
    _, (code, _) = first
    assert code == 0
    put(box, "/root/src/netfail", {"requirements.txt": b"django-environ==0.12.0\n", "manage.py": b""})
    index = "https://127.0.0.1:9/simple"
    code, out = sh(box, DEPLOY, "--source", "/root/src/netfail", "--settings", "config.settings",
                   env={"UV_DEFAULT_INDEX": index, "UV_NO_CACHE": "1"})
    assert code != 0
    last = out.strip().splitlines()[-1]
    assert "network/TLS failure" in last and index in last, out[-3000:]


def test_project_with_nothing_to_install_is_an_error(box, first):
    put(box, "/root/src/bare", {"manage.py": b"", "config/settings.py": b""})
    code, out = sh(box, DEPLOY, "--source", "/root/src/bare", "--settings", "config.settings")
    assert code != 0 and re.search(r"no requirements.txt, pyproject.toml", out), out[-2000:]


def test_user_data_deploys_the_project_at_launch(image, tmp_path):
    """The whole deploy from user-data, as a user creates a VM: `djbake launch --provider docker --user-data`
    with the project's tarball and secrets in write_files and djbake-deploy in runcmd."""
    cas = [p.read_text() for p in HOST_CAS.glob("*.crt")]
    data = {"write_files": [
                {"path": "/root/secrets.env", "permissions": "0600", "content": f"MAILGUN_API_KEY={SECRET}\n"},
                {"path": "/root/src/twelve-ud.tar.gz", "encoding": "b64",
                 "content": base64.b64encode(project_tarball("ud")).decode()}],
            "runcmd": [[DEPLOY, "--source", "/root/src/twelve-ud.tar.gz", "--env-file", "/root/secrets.env",
                        "--env", "DJANGO_ADMIN_URL=manage/", "--env", "DJANGO_SECURE_SSL_REDIRECT=False"]]}
    if cas:
        data["ca_certs"] = {"trusted": cas}
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text("#cloud-config\n" + yaml.safe_dump(data))
    name = f"test-ud-{os.getpid()}"
    try:
        proc = subprocess.run([sys.executable, "-m", "builder", "launch", "--provider", "docker", "--docker-image",
                               image, "--name", name, "--user-data", str(user_data)], cwd=ROOT, capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert SECRET not in proc.stdout + proc.stderr, "the project's secret was printed"
        assert re.search(r"deployed config\.settings as ", proc.stdout), proc.stdout[-3000:]
        box = docker_launch.find(name)
        status, body = get(box, "/")
        assert status == 200 and body.startswith("twelve-factor ud:") and "mail key set: True" in body, (status, body)
        assert get(box, "/manage/login/")[0] == 200
        assert get(box, "/static/pages/site.css")[0] == 200
    finally:
        subprocess.run([sys.executable, "-m", "builder", "launch", "--provider", "docker", "--name", name, "--stop"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
