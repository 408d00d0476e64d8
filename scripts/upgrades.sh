#!/usr/bin/env bash
# Unattended security upgrades (Debian's default origins: the security
# suite), run daily by apt's systemd timers: the switch. The package comes
# with the stack (base.sh); installing it again here is a no-op there and
# keeps this script whole on its own. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install unattended-upgrades
put apt/20auto-upgrades /etc/apt/apt.conf.d/20auto-upgrades 0644
[ "$(apt-config shell X APT::Periodic::Unattended-Upgrade | cut -d"'" -f2)" = 1 ] \
    || die "APT::Periodic::Unattended-Upgrade is not 1 after writing 20auto-upgrades"
systemctl enable apt-daily.timer apt-daily-upgrade.timer
enable_now unattended-upgrades.service
