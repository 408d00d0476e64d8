"""djbake's settings overlay: the project's own settings, with the gaps a
server cannot run with filled from /etc/djbake/app.env.

djbake-deploy copies this file into a release (src/djbake_settings.py) only
when the project's settings (DJBAKE_PROJECT_SETTINGS) have such a gap, and
says which it filled; `djbake-deploy --no-overlay` deploys them as they are.
Everything the project sets itself stays as it is. The gaps, each a setting
a project made by `django-admin startproject` or `wagtail start` leaves to
its developer:
- SECRET_KEY empty, unset or startproject's `django-insecure-` one:
  DJANGO_SECRET_KEY (per VM, from first boot);
- DEBUG on: off, unless DJANGO_DEBUG=True in app.env;
- ALLOWED_HOSTS empty: DJANGO_ALLOWED_HOSTS (the VM's names and --domains);
- the default database a SQLite file inside the code tree (read-only to the
  app): the server's PostgreSQL (DJANGO_DB_*), with django.contrib.postgres
  added to INSTALLED_APPS as PostgreSQL projects list it;
- STATIC_ROOT unset: DJANGO_STATIC_ROOT (collected per release, served by nginx);
- SECURE_SSL_REDIRECT on without SECURE_PROXY_SSL_HEADER: nginx's
  X-Forwarded-Proto (it sets the header on every request), else every page
  would redirect to itself.

`python3 djbake_settings.py` prints the gaps, one per line (djbake-deploy's
probe; DJBAKE_OVERLAY_CODE names the release's code directory then).
"""
import importlib
import os
from pathlib import Path

_env = os.environ
_project = importlib.import_module(_env["DJBAKE_PROJECT_SETTINGS"])
globals().update({k: v for k, v in vars(_project).items() if k.isupper()})
_code = Path(_env.get("DJBAKE_OVERLAY_CODE") or Path(__file__).parent).resolve()

DJBAKE_FILLED = []


def _inside_code(path) -> bool:
    try:
        return Path(str(path)).resolve().is_relative_to(_code)
    except (TypeError, ValueError, OSError):
        return False


if not globals().get("SECRET_KEY") or str(globals()["SECRET_KEY"]).startswith("django-insecure-"):
    # startproject's key is public in the project's code; Django marks it as such.
    SECRET_KEY = _env.get("DJANGO_SECRET_KEY", "")
    DJBAKE_FILLED.append("SECRET_KEY")
if globals().get("DEBUG"):
    # Django's development default (tracebacks and settings shown to anyone);
    # DJANGO_DEBUG=True in app.env turns it on deliberately.
    DEBUG = _env.get("DJANGO_DEBUG", "False") == "True"
    if not DEBUG:
        DJBAKE_FILLED.append("DEBUG (off)")
if not [h for h in globals().get("ALLOWED_HOSTS") or [] if h]:  # unset, empty, or [""] from an unset variable
    ALLOWED_HOSTS = [h for h in _env.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
    DJBAKE_FILLED.append("ALLOWED_HOSTS")
_default = (globals().get("DATABASES") or {}).get("default") or {}
if (str(_default.get("ENGINE", "")).endswith("sqlite3") and _inside_code(_default.get("NAME", ""))
        and _env.get("DJANGO_DB_NAME")):
    DATABASES = {**globals()["DATABASES"], "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _env.get("DJANGO_DB_NAME", ""),
        "USER": _env.get("DJANGO_DB_USER", ""),
        "PASSWORD": _env.get("DJANGO_DB_PASSWORD", ""),
        "HOST": _env.get("DJANGO_DB_HOST", "localhost"),
        "PORT": _env.get("DJANGO_DB_PORT", "5432"),
    }}
    if "django.contrib.postgres" not in globals().get("INSTALLED_APPS", []):
        INSTALLED_APPS = [*globals().get("INSTALLED_APPS", []), "django.contrib.postgres"]
    DJBAKE_FILLED.append("DATABASES (SQLite in the code tree -> the server's PostgreSQL)")
if not globals().get("STATIC_ROOT"):
    STATIC_ROOT = _env.get("DJANGO_STATIC_ROOT", "")
    DJBAKE_FILLED.append("STATIC_ROOT")
if globals().get("SECURE_SSL_REDIRECT") and not globals().get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    DJBAKE_FILLED.append("SECURE_PROXY_SSL_HEADER (nginx's X-Forwarded-Proto)")

if __name__ == "__main__":
    print("\n".join(DJBAKE_FILLED))
