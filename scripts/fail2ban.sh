#!/usr/bin/env bash
# fail2ban reading the journal (backend = systemd) and banning via nftables.
# Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# python3-systemd is only a Recommends, but backend = systemd needs it.
apt_install fail2ban python3-systemd
put fail2ban/djbake.local /etc/fail2ban/jail.d/djbake.local 0644
fail2ban-client -t >/dev/null
enable_now fail2ban.service
