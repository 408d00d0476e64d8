#!/usr/bin/env bash
# Firewall: nftables allowing 22, 80 and 443 in (plus what IP itself needs),
# loaded at every boot by nftables.service. Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install nftables
put nftables/nftables.conf /etc/nftables.conf 0755
nft -c -f /etc/nftables.conf
# Loading it now keeps the build's own SSH session (port 22, established).
enable_now nftables.service
