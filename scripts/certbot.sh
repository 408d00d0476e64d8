#!/usr/bin/env bash
# certbot with its nginx plugin, so `certbot --nginx -d example.com` works on
# the VM. No certificate is requested here: names and addresses are per VM.
# Inputs: none (runs when the spec has certbot and nginx).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install certbot python3-certbot-nginx
# The renewal timer does nothing until there is a certificate.
systemctl enable certbot.timer
if [ -d /etc/letsencrypt/live ] && [ -n "$(ls -A /etc/letsencrypt/live 2>/dev/null)" ]; then
    die "a certificate exists in the image: /etc/letsencrypt/live"
fi
