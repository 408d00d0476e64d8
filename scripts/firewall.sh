#!/usr/bin/env bash
# Firewall: nftables allowing 22, 80 and 443 in (plus what IP itself needs),
# loaded at every boot by nftables.service. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install nftables
# systemd-resolved (where the base has it) answers LLMNR and mDNS on every
# address (port 5355, 5353): nothing but 22/80/443 is to listen publicly.
if [ -n "$(systemctl list-unit-files --no-legend systemd-resolved.service 2>/dev/null)" ]; then
    put systemd/resolved-djbake.conf /etc/systemd/resolved.conf.d/djbake.conf 0644
    if systemd_running && systemctl -q is-active systemd-resolved.service; then
        systemctl restart systemd-resolved.service
    fi
fi
put nftables/nftables.conf /etc/nftables.conf 0755
nft -c -f /etc/nftables.conf
# Loading it now keeps the build's own SSH session (port 22, established).
enable_now nftables.service
