"""Layout, ownership and modes: the app may write only where it must."""
import pytest

import batch

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot, pytest.mark.sealed]

LAYOUT = [
    # path, user, group, mode
    ("/srv/app", "root", "root", 0o755),
    ("/srv/app/releases", "root", "root", 0o751),
    # The live release (a trailing slash follows the /srv/app/current link).
    ("/srv/app/current/", "root", "django", 0o751),
    ("/srv/app/current/src/", "root", "django", 0o750),
    ("/srv/app/media", "django", "django", 0o755),
    ("/var/lib/django", "django", "django", 0o750),
    ("/etc/djbake", "root", "root", 0o755),
    ("/etc/djbake/app.env", "root", "django", 0o640),
    ("/var/log/django", "django", "adm", 0o750),
    ("/usr/local/sbin/djbake-deploy", "root", "root", 0o755),
    ("/usr/local/sbin/djbake-env", "root", "root", 0o755),
    ("/usr/local/sbin/djbake-firstboot", "root", "root", 0o755),
]


@pytest.fixture(scope="module")
def layout(host):
    """Every LAYOUT path's owner, group and mode, asked once (batch.py: one round trip, not 36)."""
    with host.sudo():
        return batch.path_stats(host, [p for p, *_ in LAYOUT])


@pytest.mark.parametrize("path,user,group,mode", LAYOUT, ids=[p for p, *_ in LAYOUT])
def test_owner_and_mode(layout, path, user, group, mode):
    assert path in layout, f"{path} missing"
    got_user, got_group, got_mode = layout[path]
    assert (got_user, got_group, oct(got_mode)) == (user, group, oct(mode))


def test_code_not_writable_by_the_app(host):
    """What the app's user can write (`find -writable` run as django: owner, group and other bits,
    ACLs), in every release's code, static files and virtualenv, and the directories holding them."""
    with host.sudo():
        owned = host.run("find /srv/app/releases -user django -print -quit").stdout.strip()
        releases = host.check_output("find /srv/app/releases -mindepth 1 -maxdepth 1 -type d").split()
        assert releases, "no release in /srv/app/releases"
        dirs = " ".join(f"{r}/" for r in releases)
        out = host.run(f"runuser -u django -- find /srv/app /srv/app/releases -maxdepth 0 -writable; "
                       f"runuser -u django -- find {dirs} -writable 2>/dev/null")
    writable = out.stdout.split()
    assert not owned, f"the app owns code: {owned}"
    assert not writable, f"the app's user can write code: {writable[:10]}"


def test_release_bytecode_compiled(host):
    """The live release's code is compiled when it is deployed (djbake-deploy's compile_release): the app's
    user cannot write its code, so without the bytecode every gunicorn worker and `manage` command would
    compile Django and the project again at each start, before the site answers."""
    with host.sudo():
        django = host.run("find /srv/app/current/venv/lib/ -path '*/site-packages/django/__pycache__/__init__.*.pyc' "
                          "-print -quit").stdout.strip()
        source = host.run("find /srv/app/current/src/ -name '*.py' -print -quit").stdout.strip()
        compiled = host.run("find /srv/app/current/src/ -path '*/__pycache__/*.pyc' -print -quit").stdout.strip()
        by_app = host.run("find /srv/app/current/venv/ /srv/app/current/src/ -name '*.pyc' ! -user root "
                          "-print -quit").stdout.strip()
    assert django, "Django in the live release's virtualenv has no bytecode"
    assert compiled or not source, f"the project's code ({source}, ...) has no bytecode"
    assert not by_app, f"bytecode not made at deploy (not root's): {by_app}"


def test_env_file_names_the_app(host, app_env):
    for key in ("DJANGO_SETTINGS_MODULE", "DJBAKE_WSGI_APP", "PYTHONPATH", "DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT",
                "DJANGO_DEBUG"):
        assert app_env.get(key), f"{key} missing from /etc/djbake/app.env"


def test_units_installed(host):
    for unit in ("gunicorn.socket", "gunicorn.service", "djbake-firstboot.service",
                 "djbake-ssh-hostkeys.service", "djbake-remove-build-user.service", "djbake-snakeoil.service"):
        assert host.file(f"/etc/systemd/system/{unit}").exists, unit


def test_welcome_or_deployed_project_present(host):
    with host.sudo():
        if host.file("/var/lib/djbake/deploy.json").exists:
            return  # a deployed wheel lives in the venv; src may be empty
        assert host.file("/srv/app/current/src/").listdir(), "the live release's src is empty: nothing to serve"


def test_build_env_recorded(facts):
    """/etc/djbake/build.env says what the image was built with (the facts fixture fails without it)."""
    missing = [k for k in ("IMAGE", "OS", "PROVIDER", "DATABASE") if not facts.get(k)]
    assert not missing, f"/etc/djbake/build.env lacks DJBAKE_{', DJBAKE_'.join(missing)}"
