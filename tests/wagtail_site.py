"""A site made by `wagtail start`, as a new Wagtail user makes one, for the deploy test.

Wagtail (current on PyPI, not pinned) and every wheel it needs are downloaded
on the host for the image's Python; the project is generated inside a
container of the image (Wagtail 8 needs Django 6.1, so Python >= 3.12, which
this host's Python is not), and djbake-deploy installs its requirements from
the same wheels. The wheel directory stands in for PyPI inside the
container only: containers here cannot reach PyPI (its TLS goes through this
host's intercepting proxy), a VM of the image would install from PyPI itself.

The one change a user makes to the generated project is LOCAL_SETTINGS:
Wagtail's settings/production.py ends with `from .local import *`, and
local.py reads the variables the image provides (examples/user-data/) and
adds django.contrib.postgres, which Wagtail's search index needs on
PostgreSQL (a fresh `wagtail start` project fails `check` without it).
"""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

LOCAL_SETTINGS = '''\
"""djbake image: what /etc/djbake/app.env provides (production.py imports this)."""
import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["DJANGO_DB_NAME"],
        "USER": os.environ["DJANGO_DB_USER"],
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),
        "HOST": os.environ.get("DJANGO_DB_HOST", "localhost"),
        "PORT": os.environ.get("DJANGO_DB_PORT", "5432"),
    }
}
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", "/srv/app/static")
MEDIA_ROOT = os.environ.get("DJANGO_MEDIA_ROOT", "/srv/app/media")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Wagtail's search index on PostgreSQL (SearchVectorField, GinIndex) needs it; the
# generated project lists it for no database (Wagtail's docs ask for it on PostgreSQL).
from .base import INSTALLED_APPS as _APPS  # noqa: E402

INSTALLED_APPS = [*_APPS, "django.contrib.postgres"]
'''

WHEELS = "/root/wagtail-wheels"
SITE = "/root/mysite"


def download_wheels(dest: Path, python: str, glibc: tuple[int, int]) -> subprocess.CompletedProcess:
    """The current Wagtail and its requirements as wheels for the image's CPython and glibc."""
    tag = python.replace(".", "")
    platforms = [f"manylinux_{glibc[0]}_{m}_x86_64" for m in range(glibc[1], 16, -1)] + ["manylinux2014_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
           *[a for p in platforms for a in ("--platform", p)], "-d", str(dest), "wagtail"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def put_wheels(box, wheels: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(wheels), arcname=Path(WHEELS).name)
    assert box.put_archive(str(Path(WHEELS).parent), buf.getvalue())


def generate(box) -> str:
    """`wagtail start mysite` in a throwaway venv of the image's python3; the output of the commands."""
    script = (f"set -e; python3 -m venv /root/wagtail-cli; "
              f"/root/wagtail-cli/bin/pip install -q --no-index --find-links {WHEELS} wagtail; "
              f"mkdir -p {SITE}; /root/wagtail-cli/bin/wagtail start mysite {SITE}; "
              f"/root/wagtail-cli/bin/pip list 2>/dev/null | grep -Ei '^(wagtail|django) '")
    code, out = box.exec_run(["bash", "-c", script])
    text = out.decode(errors="replace")
    assert code == 0, text
    return text


def add_local_settings(box) -> None:
    buf = io.BytesIO()
    data = LOCAL_SETTINGS.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("local.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert box.put_archive(f"{SITE}/mysite/settings", buf.getvalue())
