#!/usr/bin/env bash
# Seal: runs after the in-build gate, right before capture. Leaves nothing
# secret and nothing unique to this build VM: per-VM state of first boot,
# SSH host keys, machine-id, random seed, cloud-init state, the build user's
# access, root's password, shell history, apt lists, logs and the uploaded
# payload; and the freed blocks of the disk are discarded.
#
# The build user (Packer's SSH user, from DJBAKE_BUILD_USER or sudo's
# SUDO_USER; never root) cannot be deleted here: Packer runs its
# shutdown_command over SSH as that user after this script. So it is locked
# (password and key removed now; the open SSH connection survives) and
# named in /etc/djbake/remove-build-user; djbake-remove-build-user.service
# deletes it at the image's first boot, before cloud-init creates users.
# Inputs: DJBAKE_BUILD_USER (optional), DJBAKE_PAYLOAD.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# 1. Per-VM state made by the build's own first-boot run.
if [ -x /usr/local/sbin/djbake-firstboot ]; then
    djbake-firstboot reset
fi
if in_container && systemd_running; then
    # docker commits a running container: stop writers for a clean copy.
    systemctl stop gunicorn.service gunicorn.socket 2>/dev/null || true
    systemctl stop postgresql.service 2>/dev/null || true
fi

# 2. The build user.
build_user=${DJBAKE_BUILD_USER:-${SUDO_USER:-}}
if [ -n "$build_user" ] && [ "$build_user" != root ] && getent passwd "$build_user" >/dev/null; then
    home=$(getent passwd "$build_user" | cut -d: -f6)
    # Locked with no hash left ('!'): `passwd --lock` would keep the hash behind a '!'.
    usermod -p '!' "$build_user"
    rm -f "$home/.ssh/authorized_keys" "$home/.bash_history" "$home/.python_history" "$home/.lesshst"
    echo "$build_user" >/etc/djbake/remove-build-user
    log "build user $build_user locked; deleted at first boot"
fi
# Root's password hash: some builds set a password (Linode's root_pass,
# random per build) and its hash must not ship. '*' matches none, so root
# logs in by key (cloud-init) or through sudo, as in the clouds' own images.
usermod -p '*' root
# Keys root may have received for the build (providers that build as root).
rm -f /root/.ssh/authorized_keys /root/.bash_history /root/.python_history /root/.lesshst /root/.wget-hsts
rm -rf /root/.cache /root/.config/pip

# 3. Identity: each VM must get its own.
rm -f /etc/ssh/ssh_host_*
# ssl-cert's snakeoil pair is made at install: per VM instead (first boot).
rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
if command -v cloud-init >/dev/null 2>&1; then
    cloud-init clean --logs --seed
fi
# Empty, not absent: systemd then makes a new id at first boot. Without the
# file (what `cloud-init clean --machine-id` leaves on Debian 12) networkd
# has no DUID for DHCP, and the VM boots without an IPv4 address.
truncate -s 0 /etc/machine-id

# 4. Leftovers of the build (the host's package cache was this build's only).
apt-get -q clean
rm -f "$APT_PROXY_CONF" "$APT_PROXY_DETECT"
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# Dumps of the build's database (djbake-backup), if any were made: per-VM data.
rm -rf /var/backups/djbake
rm -rf /var/tmp/djbake-* /srv/app/src.previous /srv/app/src.new /var/cache/djbake/uv
# Root's bytecode only: the releases' is compiled at deploy for the app (djbake-deploy).
find /root -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
if systemd_running; then
    # Services that write their log when they stop would write it again after
    # the truncation below, at the build VM's shutdown (fail2ban's "Exiting",
    # unattended-upgrades-shutdown): stopped now, they log before it.
    systemctl stop fail2ban.service unattended-upgrades.service 2>/dev/null || true
    # auditd refuses a manual stop (RefuseManualStop) and writes its DAEMON_END
    # record when it exits: signalled now, so that record is truncated too.
    systemctl kill --signal=TERM auditd.service 2>/dev/null || true
    journalctl --rotate >/dev/null 2>&1 || true
    journalctl --vacuum-time=1s >/dev/null 2>&1 || true
fi
# fail2ban's database, now that it is stopped: it restores the bans it holds
# at start, and the gate bans the runner's address on purpose (its ban can
# land again after the check lifts it), so every VM would start out refusing
# the build host's SSH. Each VM starts its own.
rm -f /var/lib/fail2ban/fail2ban.sqlite3
rm -rf /var/log/journal/* /var/log/installer /var/log/cloud-init*.log
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate --no-create -s 0 {} +
# The payload, including this script (bash goes on reading it from the open file).
rm -rf "${DJBAKE_PAYLOAD:?}"
sync

# 5. Free space: blocks the build freed (the build tools, apt's archives,
# logs) still hold their old bytes, and an image would carry them. Discarded
# (QEMU's disk has discard=unmap; cloud volumes mostly accept it too) they
# become holes that Packer's compaction and the clouds' snapshots leave out.
# Cheaper than writing zeros over the free space, which under emulation takes
# minutes. A disk without discard support is skipped, not an error.
if ! in_container; then
    if trimmed=$(fstrim --all --verbose 2>&1); then
        log "free space discarded: ${trimmed:-no file system here supports discard}"
    else
        log "free space not discarded: $trimmed"
    fi
fi
log "sealed"
