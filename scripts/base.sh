#!/usr/bin/env bash
# Base system: apt that survives flaky mirrors, no docs, current security
# fixes, time sync, log rotation and the spec's extra packages.
# Inputs: DJBAKE_PACKAGES (space-separated extra packages, may be empty).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Before anything is installed, so nothing we install brings its docs.
put dpkg/01-djbake-nodoc /etc/dpkg/dpkg.cfg.d/01-djbake-nodoc 0644
# Named to sort last: apt reads apt.conf.d in order and the last value wins
# (mmdebstrap-made bases carry 99mmdebstrap with their own Retries).
rm -f /etc/apt/apt.conf.d/80-djbake-retries
put apt/99zz-djbake-retries /etc/apt/apt.conf.d/99zz-djbake-retries 0644
# Docs and translations of packages already in a cloud base image go too
# (licences and English stay; the bases built here never had them).
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/*
find /usr/share/locale -mindepth 1 -maxdepth 1 -type d -not -name 'en' -not -name 'en_*' \
    -exec rm -rf {} + 2>/dev/null || true

# Always refresh here: the image must carry today's security fixes.
apt_use_cache
retry 5 apt-get -q update
retry 5 apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade

# git and curl: djbake-deploy fetches projects with them. logrotate: app logs.
apt_install ca-certificates curl git gnupg logrotate systemd-timesyncd \
    openssh-server sudo tzdata

# unattended-upgrades is installed here, with the slow stack (qemu caches it as
# a layer); switching it on is upgrades.sh's, in the image layer. The
# package's postinst writes 20auto-upgrades (debconf's default): without
# it apt's timers do nothing when a later image layer boots the cached
# disk, instead of catching up and racing that build's own dpkg.
apt_install unattended-upgrades
rm -f /etc/apt/apt.conf.d/20auto-upgrades

# The spec's own extras (word splitting intended: a space-separated list).
if [ -n "${DJBAKE_PACKAGES:-}" ]; then
    # Each must be an exact package name: apt-get reads a name it does not know as an operator
    # (trailing - removes, + installs) or, with . + * ?, as a regular expression. The spec model
    # refuses those shapes already (builder/validate_values.py); this is the archive's word.
    apt_lists
    for pkg in $DJBAKE_PACKAGES; do
        # grep reads it all (no -q): under pipefail an early exit would fail apt-cache with SIGPIPE.
        apt-cache pkgnames -- "$pkg" | grep -xF -- "$pkg" >/dev/null || die "package $pkg: no such package in the archive"
    done
    # shellcheck disable=SC2086
    apt_install $DJBAKE_PACKAGES
fi

# Time sync: timesyncd is enough for a server and is Debian's default. It
# refuses to run in containers (ConditionVirtualization=!container), which is
# right: a container shares the host's clock.
enable_now systemd-timesyncd.service
enable_now logrotate.timer
