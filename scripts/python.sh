#!/usr/bin/env bash
# Python for Django: the distribution's python3 with venv (and, only when the
# spec keeps them, the build tools deploys need to compile requirements); the
# `django` system user and the /srv/app layout; a virtualenv with pinned
# Django, gunicorn and psycopg.
# Inputs: DJBAKE_BUILD_TOOLS (1: keep DJBAKE_TOOLCHAIN), DJBAKE_DJANGO_VERSION, DJBAKE_GUNICORN_VERSION,
# DJBAKE_PSYCOPG_VERSION, DJBAKE_REDIS (1: also the redis client, pinned by
# DJBAKE_REDIS_VERSION),
# DJBAKE_PAYLOAD (the pinned wheelhouse is in $DJBAKE_PAYLOAD/wheels).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${DJBAKE_DJANGO_VERSION:?}" "${DJBAKE_GUNICORN_VERSION:?}" "${DJBAKE_PSYCOPG_VERSION:?}"

# No python3-pip: the virtualenv brings its own pip, and the system Python is
# not for installing into (PEP 668). The pinned wheels below need no compiler.
apt_install python3 python3-venv
if [ "${DJBAKE_BUILD_TOOLS:-0}" = 1 ]; then
    # Kept on request (stack.build_tools): a deploy on the VM may have to
    # compile a requirement (psycopg without [binary], for one).
    # shellcheck disable=SC2086  # a list of package names
    apt_install ${DJBAKE_TOOLCHAIN:?}
fi

# A system user without a login shell owns what the app may write; the code
# and the virtualenv belong to root, so a compromised app cannot change them.
if ! getent passwd django >/dev/null; then
    useradd --system --user-group --home-dir /srv/app --no-create-home \
        --shell /usr/sbin/nologin --comment "Django application" django
fi

# Releases (djbake-deploy): /srv/app/releases/ID holds one project's code
# (src/), virtualenv (venv/) and collected static files, root-owned and
# read-only to the app; /srv/app/current points at the live one. The image's
# pinned Django, gunicorn and psycopg are the welcome release's virtualenv,
# never shared with a deployed project's.
install -d -m 0755 -o root -g root /srv/app /etc/djbake
install -d -m 0751 -o root -g root /srv/app/releases
welcome=/srv/app/releases/welcome
install -d -m 0751 -o root -g django "$welcome"
install -d -m 0750 -o root -g django "$welcome/src"
# Uploads outlive releases and are the app's to write; nginx (www-data) reads.
install -d -m 0755 -o django -g django /srv/app/media
# The app user's home for tools that keep state (gunicorn's control socket).
install -d -m 0750 -o django -g django /var/lib/django
install -d -m 0750 -o django -g adm /var/log/django
install -d -m 0700 -o root -g root /var/cache/djbake

if [ ! -e /srv/app/current ]; then ln -sfn releases/welcome /srv/app/current; fi
# The paths admins and older scripts know, through the live release.
for name in src venv static; do
    if [ -d "/srv/app/$name" ] && [ ! -L "/srv/app/$name" ]; then rm -rf "/srv/app/${name:?}"; fi
    ln -sfn "current/$name" "/srv/app/$name"
done

if [ ! -x "$welcome/venv/bin/python" ]; then
    python3 -m venv "$welcome/venv"
fi

reqs=(
    "django==$DJBAKE_DJANGO_VERSION"
    "gunicorn==$DJBAKE_GUNICORN_VERSION"
    "psycopg[binary]==$DJBAKE_PSYCOPG_VERSION"
)
if [ "${DJBAKE_REDIS:-0}" = 1 ]; then
    reqs+=("redis==${DJBAKE_REDIS_VERSION:?DJBAKE_REDIS_VERSION is set with DJBAKE_REDIS=1}")
fi

wheels="$DJBAKE_PAYLOAD/wheels"
pip=("$welcome/venv/bin/pip" --no-cache-dir --disable-pip-version-check -q)
# uv installs every deployed release; its own virtualenv keeps it apart from apps.
uv_venv=/usr/local/lib/djbake/uv
[ -x "$uv_venv/bin/python" ] || python3 -m venv "$uv_venv"
uv_pip=("$uv_venv/bin/pip" --no-cache-dir --disable-pip-version-check -q)
if [ -d "$wheels" ] && compgen -G "$wheels/*.whl" >/dev/null; then
    # The host downloaded exactly these versions: the build needs no PyPI.
    "${pip[@]}" install --no-index --find-links "$wheels" "${reqs[@]}"
    "${uv_pip[@]}" install --no-index --find-links "$wheels" "uv==${DJBAKE_UV_VERSION:?}"
    # Kept for deploys: a project that names no Django/gunicorn/psycopg gets
    # these pins without an index (djbake-deploy's fill-in step).
    install -d -m 0755 /usr/local/share/djbake/wheels
    rm -f /usr/local/share/djbake/wheels/*.whl
    find "$wheels" -maxdepth 1 -name '*.whl' ! -name 'uv-*' -exec cp {} /usr/local/share/djbake/wheels/ \;
else
    log "no wheelhouse at $wheels; installing from PyPI"
    retry 3 "${pip[@]}" install "${reqs[@]}"
    retry 3 "${uv_pip[@]}" install "uv==${DJBAKE_UV_VERSION:?}"
    install -d -m 0755 /usr/local/share/djbake/wheels
    retry 3 "${pip[@]}" download -d /usr/local/share/djbake/wheels "${reqs[@]}"
fi
ln -sfn "$uv_venv/bin/uv" /usr/local/bin/uv

# Fail here, not in the gate, if the venv is not what the spec asked for.
have=$("$welcome/venv/bin/python" -c 'import django; print(django.get_version())')
[ "$have" = "$DJBAKE_DJANGO_VERSION" ] || die "venv has Django $have, spec asks $DJBAKE_DJANGO_VERSION"
find "$welcome/venv" "$uv_venv" -name '__pycache__' -prune -o -name '*.pyc' -print0 | xargs -0r rm -f
