#!/usr/bin/env bash
# The application layer: the env file every app process reads, the tools
# that change it and deploy projects (djbake-env, djbake-deploy), and the
# welcome project a fresh VM answers with until a project is deployed.
# Inputs: DJBAKE_DATABASE, DJBAKE_REDIS, DJBAKE_APP_MODULE, DJBAKE_APP_SETTINGS,
# DJBAKE_APP_SOURCE, DJBAKE_APP_REQUIREMENTS (a project baked in by the spec),
# DJBAKE_BUILD_TOOLS and DJBAKE_TOOLCHAIN (compiling its requirements).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

put djbake/djbake-env /usr/local/sbin/djbake-env 0755
put djbake/djbake-deploy /usr/local/sbin/djbake-deploy 0755
# The settings overlay djbake-deploy uses for projects that leave gaps to the server.
put djbake/djbake_settings.py /usr/local/share/djbake/djbake_settings.py 0644
# nginx's static and media locations, filled in per release by djbake-deploy.
put nginx/app-files.conf.in /etc/djbake/nginx-app-files.conf.in 0644

# The env file: only non-secret, non-unique values at build time. Secrets,
# the database password and ALLOWED_HOSTS are added per VM at first boot.
if [ ! -f /etc/djbake/app.env ]; then
    printf '# The app'"'"'s environment (gunicorn, djbake-deploy, djbake-env manage).\n' >/etc/djbake/app.env
    chown root:django /etc/djbake/app.env
    chmod 0640 /etc/djbake/app.env
fi
# The names 12-factor projects and the widely used templates read (the table
# in docs/deploying.md). The database URL and password are per VM (first boot).
djbake-env set PYTHONPATH /srv/app/current/src
djbake-env set DJANGO_STATIC_ROOT /srv/app/current/static
djbake-env set DJANGO_MEDIA_ROOT /srv/app/media
djbake-env set DJANGO_DEBUG False
if [ "${DJBAKE_DATABASE:-postgresql}" = postgresql ]; then
    djbake-env set DJANGO_DB_NAME django
    djbake-env set DJANGO_DB_USER django
    djbake-env set DJANGO_DB_HOST localhost
    djbake-env set DJANGO_DB_PORT 5432
    djbake-env set POSTGRES_DB django
    djbake-env set POSTGRES_USER django
    djbake-env set POSTGRES_HOST localhost
    djbake-env set POSTGRES_PORT 5432
fi
if [ "${DJBAKE_REDIS:-0}" = 1 ]; then
    djbake-env set REDIS_URL redis://127.0.0.1:6379/0
    djbake-env set CELERY_BROKER_URL redis://127.0.0.1:6379/0
fi
djbake-env hosts

if [ -n "${DJBAKE_APP_SOURCE:-}" ]; then
    # A project baked into the image: deployed now; its migrate runs at first
    # boot (the database does not exist before). Source paths are relative
    # to the payload.
    src=$DJBAKE_APP_SOURCE
    if [ -e "$DJBAKE_PAYLOAD/$src" ]; then src="$DJBAKE_PAYLOAD/$src"; fi
    : "${DJBAKE_APP_MODULE:?DJBAKE_APP_MODULE is required with DJBAKE_APP_SOURCE}"
    # Requirements without a wheel are compiled; the tools go again after.
    with_toolchain djbake-deploy --install-only --source "$src" --wsgi "$DJBAKE_APP_MODULE" \
        --settings "${DJBAKE_APP_SETTINGS:-${DJBAKE_APP_MODULE%.*}.settings}" \
        ${DJBAKE_APP_REQUIREMENTS:+--requirements "$DJBAKE_APP_REQUIREMENTS"}
else
    welcome=/srv/app/releases/welcome
    rm -rf "$welcome/src/welcome"
    cp -a "$FILES/welcome/." "$welcome/src/"
    # Its bytecode, as djbake-deploy compiles a deployed release's (the venv's
    # came with pip's install): the app's user cannot write it at runtime.
    "$welcome/venv/bin/python" -m compileall -qq "$welcome/src"
    printf 'DJANGO_SETTINGS_MODULE=welcome.settings\nDJBAKE_WSGI_APP=welcome.wsgi:application\n' >"$welcome/release.env"
    chown -R root:django "$welcome/src" "$welcome/release.env"
    chmod -R u=rwX,g=rX,o= "$welcome/src" "$welcome/release.env"
    ln -sfn releases/welcome /srv/app/current
    djbake-env set DJANGO_SETTINGS_MODULE welcome.settings
    djbake-env set DJBAKE_WSGI_APP welcome.wsgi:application
fi
