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

install -d -m 0755 -o root -g root /srv/app /srv/app/venv /etc/djbake
install -d -m 0750 -o root -g django /srv/app/src
# collectstatic and uploads write here as django; nginx (www-data) reads.
install -d -m 0755 -o django -g django /srv/app/static /srv/app/media
install -d -m 0750 -o django -g adm /var/log/django

if [ ! -x /srv/app/venv/bin/python ]; then
    python3 -m venv /srv/app/venv
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
pip=(/srv/app/venv/bin/pip --no-cache-dir --disable-pip-version-check -q)
if [ -d "$wheels" ] && compgen -G "$wheels/*.whl" >/dev/null; then
    # The host downloaded exactly these versions: the build needs no PyPI.
    "${pip[@]}" install --no-index --find-links "$wheels" "${reqs[@]}"
else
    log "no wheelhouse at $wheels; installing from PyPI"
    retry 3 "${pip[@]}" install "${reqs[@]}"
fi

# Fail here, not in the gate, if the venv is not what the spec asked for.
have=$(/srv/app/venv/bin/python -c 'import django; print(django.get_version())')
[ "$have" = "$DJBAKE_DJANGO_VERSION" ] || die "venv has Django $have, spec asks $DJBAKE_DJANGO_VERSION"
find /srv/app/venv -name '__pycache__' -prune -o -name '*.pyc' -print0 | xargs -0r rm -f
