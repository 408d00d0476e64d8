"""Layout, ownership and modes: the app may write only where it must."""
import pytest

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


@pytest.mark.parametrize("path,user,group,mode", LAYOUT, ids=[p for p, *_ in LAYOUT])
def test_owner_and_mode(host, path, user, group, mode):
    with host.sudo():
        f = host.file(path)
        assert f.exists, f"{path} missing"
        assert (f.user, f.group, oct(f.mode)) == (user, group, oct(mode))


def test_code_not_writable_by_the_app(host):
    with host.sudo():
        writable = host.run("find /srv/app/releases -user django -print -quit").stdout.strip()
    assert not writable, f"the app owns code: {writable}"


def test_env_file_names_the_app(host, app_env):
    for key in ("DJANGO_SETTINGS_MODULE", "DJBAKE_WSGI_APP", "PYTHONPATH", "DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT",
                "DJANGO_DEBUG"):
        assert app_env.get(key), f"{key} missing from /etc/djbake/app.env"


def test_units_installed(host):
    for unit in ("gunicorn.socket", "gunicorn.service", "djbake-firstboot.service",
                 "djbake-ssh-hostkeys.service", "djbake-remove-build-user.service"):
        assert host.file(f"/etc/systemd/system/{unit}").exists, unit


def test_welcome_or_deployed_project_present(host):
    with host.sudo():
        if host.file("/var/lib/djbake/deploy.json").exists:
            return  # a deployed wheel lives in the venv; src may be empty
        assert host.file("/srv/app/current/src/").listdir(), "the live release's src is empty: nothing to serve"
