#!/usr/bin/env bash
# Redis for Django's cache and task queues, on localhost only.
# Inputs: DJBAKE_REDIS (this script only runs when it is 1).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install redis-server
# Debian binds 127.0.0.1 and ::1 already; assert it so a changed default
# cannot silently expose Redis (the firewall is the second line).
grep -Eq '^bind 127\.0\.0\.1' /etc/redis/redis.conf || die "redis.conf does not bind to localhost"
sed -i 's/^supervised .*/supervised systemd/' /etc/redis/redis.conf
enable_now redis-server.service
