#!/usr/bin/env bash
# gunicorn as a systemd socket + service (never runserver), and rotation of
# the app's logs. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# nginx's user must exist for SocketUser= even when nginx is not in the spec.
getent passwd www-data >/dev/null || die "user www-data missing"

put djbake/gunicorn.conf.py /etc/djbake/gunicorn.conf.py 0644
put systemd/gunicorn.socket /etc/systemd/system/gunicorn.socket 0644
put systemd/gunicorn.service /etc/systemd/system/gunicorn.service 0644
put logrotate/django /etc/logrotate.d/django 0644
daemon_reload
systemctl enable gunicorn.socket gunicorn.service
# Not started here: the app needs the secrets of first boot (firstboot.sh
# starts both after running it once for the in-build gate).
