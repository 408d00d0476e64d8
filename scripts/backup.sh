#!/usr/bin/env bash
# Daily dumps of the local PostgreSQL database with retention, and
# `djbake-backup now|list|restore FILE|remote|fetch NAME` (docs/backups.md).
# s3cmd (Debian's and Ubuntu's package, about 9 MiB with libmagic) uploads the
# dumps to S3-compatible storage when app.env names a bucket; unused otherwise.
# Inputs: DJBAKE_DATABASE (this script only runs when it is postgresql).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install s3cmd   # postgresql.sh installed it in the stack layer: nothing to do then
put djbake/djbake-backup /usr/local/sbin/djbake-backup 0755
put systemd/djbake-backup.service /etc/systemd/system/djbake-backup.service 0644
put systemd/djbake-backup.timer /etc/systemd/system/djbake-backup.timer 0644
# An admin's edits survive a rebuild on this image (source_image): written once.
if [ ! -e /etc/djbake/backup.conf ]; then
    cat >/etc/djbake/backup.conf <<'CONF'
# djbake-backup: where dumps go and how many are kept (the newest; one a day by the timer).
BACKUP_DIR=/var/backups/djbake
BACKUP_KEEP=14
CONF
fi
enable_now djbake-backup.timer
