#!/usr/bin/env bash
# First boot: install djbake-firstboot and its units, then run it once now
# so the in-build gate tests a working app (seal.sh resets it afterwards).
# Inputs: DJBAKE_DATABASE.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

put djbake/djbake-firstboot /usr/local/sbin/djbake-firstboot 0755
put systemd/djbake-firstboot.service /etc/systemd/system/djbake-firstboot.service 0644
put systemd/djbake-remove-build-user.service /etc/systemd/system/djbake-remove-build-user.service 0644
put systemd/djbake-snakeoil.service /etc/systemd/system/djbake-snakeoil.service 0644
cat >/etc/djbake/firstboot.conf <<CONF
# Fixed when the image was built (djbake firstboot.sh); read by djbake-firstboot.
DATABASE=${DJBAKE_DATABASE:-postgresql}
SWAP_MB=auto
CONF
daemon_reload
systemctl enable djbake-firstboot.service djbake-remove-build-user.service djbake-snakeoil.service

if systemd_running; then
    # A first boot that already ran here (the scripts run again, or the build
    # started from an earlier djbake image, whose container booted it) would
    # be skipped by the unit's condition: start again from no per-VM state,
    # so the project installed by this build is migrated and tested.
    if [ -e /var/lib/djbake/firstboot.done ]; then
        djbake-firstboot reset
    fi
    # No swap file in the build VM: seal.sh would only delete it again, and
    # writing gigabytes of zeros under emulation costs minutes.
    systemctl set-environment DJBAKE_NO_SWAP=1
    systemctl restart djbake-firstboot.service
    systemctl unset-environment DJBAKE_NO_SWAP
    systemctl restart gunicorn.socket
    systemctl restart gunicorn.service
    if systemctl -q is-enabled nginx.service 2>/dev/null; then systemctl reload-or-restart nginx.service; fi
fi
