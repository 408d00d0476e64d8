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

# No python3-pip: uv makes and fills every virtualenv here (below, and
# djbake-deploy's releases), and the system Python is not for installing into
# (PEP 668). python3-venv stays for an admin's own virtualenvs. The pinned
# wheels below need no compiler.
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

reqs=(
    "django==$DJBAKE_DJANGO_VERSION"
    "gunicorn==$DJBAKE_GUNICORN_VERSION"
    "psycopg[binary]==$DJBAKE_PSYCOPG_VERSION"
)
if [ "${DJBAKE_REDIS:-0}" = 1 ]; then
    reqs+=("redis==${DJBAKE_REDIS_VERSION:?DJBAKE_REDIS_VERSION is set with DJBAKE_REDIS=1}")
fi

wheels="$DJBAKE_PAYLOAD/wheels"
fetch=
if ! { [ -d "$wheels" ] && compgen -G "$wheels/*.whl" >/dev/null; }; then
    # The pipeline always ships the wheelhouse; run alone, this script fetches
    # the same pins from PyPI once, with a throw-away pip, and goes on as if
    # the host had.
    log "no wheelhouse at $wheels; downloading the pins from PyPI"
    fetch=$(mktemp -d)
    trap 'rm -rf "$fetch"' EXIT
    python3 -m venv "$fetch/pip"
    retry 3 "$fetch/pip/bin/pip" --no-cache-dir --disable-pip-version-check -q download --only-binary=:all: \
        -d "$fetch/wheels" "${reqs[@]}" "uv==${DJBAKE_UV_VERSION:?}"
    wheels="$fetch/wheels"
fi

# uv installs every release (djbake-deploy) and this one. Its wheel carries
# one static binary, taken out as it is: no virtualenv and no pip around it.
# `python3 -m venv` (ensurepip puts pip into each new venv) and pip cost
# minutes under emulation; uv's venv and install are native code.
uv_wheel=$(compgen -G "$wheels/uv-${DJBAKE_UV_VERSION:?}-*.whl" | head -n 1) \
    || die "the wheelhouse has no uv ${DJBAKE_UV_VERSION} wheel"
python3 "$FILES/python/uv-from-wheel.py" "$uv_wheel" /usr/local/bin/uv.new
mv -f /usr/local/bin/uv.new /usr/local/bin/uv
# Where uv lived, in a virtualenv of its own with pip, until 2026-12-02.
rm -rf /usr/local/lib/djbake/uv
export UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 UV_NO_PROGRESS=1

if [ ! -x "$welcome/venv/bin/python" ]; then
    uv venv -q --python /usr/bin/python3 "$welcome/venv"
fi
# Exactly the versions the host downloaded: the build needs no PyPI. With
# their bytecode, as pip wrote it and djbake-deploy writes a release's: the
# app's user cannot write it, so without it every gunicorn start would compile
# Django again (test_files::test_release_bytecode_compiled).
env -u SOURCE_DATE_EPOCH uv pip install -q --no-index --find-links "$wheels" --compile-bytecode \
    --python "$welcome/venv/bin/python" "${reqs[@]}"
# uv leaves its lock file mode 0666 in the venv: the app's user must write
# nothing of its code (test_files::test_code_not_writable_by_the_app).
rm -f "$welcome/venv/.lock"
chmod -R go-w "$welcome/venv"
# Kept for deploys: a project that names no Django/gunicorn/psycopg gets
# these pins without an index (djbake-deploy's fill-in step).
install -d -m 0755 /usr/local/share/djbake/wheels
rm -f /usr/local/share/djbake/wheels/*.whl
find "$wheels" -maxdepth 1 -name '*.whl' ! -name 'uv-*' -exec cp {} /usr/local/share/djbake/wheels/ \;

# Fail here, not in the gate, if the venv is not what the spec asked for.
have=$("$welcome/venv/bin/python" -c 'import django; print(django.get_version())')
[ "$have" = "$DJBAKE_DJANGO_VERSION" ] || die "venv has Django $have, spec asks $DJBAKE_DJANGO_VERSION"
find "$welcome/venv" -name '__pycache__' -prune -o -name '*.pyc' -print0 | xargs -0r rm -f
