#!/usr/bin/env bash
# nginx in front of gunicorn: 444 for unknown hosts, static and media served
# directly, the rest proxied to the gunicorn socket. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install nginx
put nginx/django.conf /etc/nginx/sites-available/django.conf 0644
ln -sfn /etc/nginx/sites-available/django.conf /etc/nginx/sites-enabled/django.conf
# Debian's "Welcome to nginx" default server would take the default_server slot.
rm -f /etc/nginx/sites-enabled/default
rm -rf /var/www/html
# app.sh wrote the names list; make sure it exists even when it did not run.
if [ ! -f /etc/nginx/djbake/server_names.conf ]; then
    install -d -m 0755 /etc/nginx/djbake
    echo 'server_name localhost 127.0.0.1;' >/etc/nginx/djbake/server_names.conf
fi
# Don't advertise the version on error pages.
sed -i 's/^\s*#\?\s*server_tokens .*/\tserver_tokens off;/' /etc/nginx/nginx.conf
nginx -t
enable_now nginx.service
