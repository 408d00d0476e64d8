#!/usr/bin/env bash
# PostgreSQL: a local server (database and role are created per VM at first
# boot, with a password generated there) or only the client when the spec
# uses an external database.
# Inputs: DJBAKE_DATABASE (postgresql | none).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

case "${DJBAKE_DATABASE:-postgresql}" in
postgresql)
    # s3cmd is backup.sh's (djbake-backup's uploads). Installed here, in the
    # cached stack layer, so that an app-only rebuild's image layer runs no apt
    # (backup.sh's own apt_install then finds it installed): 39 s of the image
    # layer under TCG in the bench of 37802ad.
    apt_install postgresql postgresql-client s3cmd
    # Debian's default listens on localhost only and authenticates local
    # TCP users by scram-sha-256: that is what the app uses. Nothing to change.
    grep -Eq "^#?listen_addresses = 'localhost'" /etc/postgresql/*/main/postgresql.conf \
        || die "postgresql.conf no longer listens on localhost only by default"
    # No TLS for a server that only listens on localhost: Debian's default
    # ssl = on uses the snakeoil key, which would then be the same private
    # key in every VM of the image (seal.sh removes it; first boot makes one).
    for conf_d in /etc/postgresql/*/main/conf.d; do
        printf '# djbake: localhost only, no TLS needed (see postgresql.sh)\nssl = off\n' >"$conf_d/50-djbake.conf"
    done
    enable_now postgresql.service
    ;;
none)
    apt_install postgresql-client
    ;;
*)
    die "DJBAKE_DATABASE must be postgresql or none, not ${DJBAKE_DATABASE}"
    ;;
esac
