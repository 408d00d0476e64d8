#!/usr/bin/env bash
# nginx in front of gunicorn: 444 for unknown hosts, static and media served
# directly, the rest proxied to the gunicorn socket; 443 refuses TLS until
# certbot adds a certificate. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install nginx
put nginx/django.conf /etc/nginx/sites-available/django.conf 0644
ln -sfn /etc/nginx/sites-available/django.conf /etc/nginx/sites-enabled/django.conf
# 443 refuses handshakes until certbot adds a certificate; ssl_reject_handshake
# is nginx >= 1.19.4 (Debian 12, Ubuntu 24.04; not Ubuntu 22.04's 1.18).
if dpkg --compare-versions "$(dpkg-query -W -f='${Version}' nginx)" ge 1.19.4; then
    put nginx/tls-default.conf /etc/nginx/sites-available/djbake-tls-default.conf 0644
    ln -sfn /etc/nginx/sites-available/djbake-tls-default.conf /etc/nginx/sites-enabled/djbake-tls-default.conf
else
    rm -f /etc/nginx/sites-enabled/djbake-tls-default.conf
fi
# Debian's "Welcome to nginx" default server would take the default_server slot.
rm -f /etc/nginx/sites-enabled/default
rm -rf /var/www/html
# app.sh wrote the names list; make sure it exists even when it did not run.
if [ ! -f /etc/nginx/djbake/server_names.conf ]; then
    install -d -m 0755 /etc/nginx/djbake
    echo 'server_name localhost 127.0.0.1;' >/etc/nginx/djbake/server_names.conf
fi
# The welcome release's static and media locations until a deploy writes its own.
if [ ! -f /etc/nginx/djbake/app-files.conf ]; then
    install -d -m 0755 /etc/nginx/djbake
    sed -e 's|@STATIC_URL@|/static/|; s|@STATIC_ROOT@|/srv/app/current/static|' \
        -e 's|@MEDIA_URL@|/media/|; s|@MEDIA_ROOT@|/srv/app/media|' \
        "$FILES/nginx/app-files.conf.in" >/etc/nginx/djbake/app-files.conf
fi
# Don't advertise the version on error pages.
sed -i 's/^\s*#\?\s*server_tokens .*/\tserver_tokens off;/' /etc/nginx/nginx.conf
nginx -t
enable_now nginx.service
