#!/usr/bin/env bash
# Stop the apt-cacher-ng that start-apt-cache.sh started (by its PID file);
# the cache stays. Idempotent: nothing to do when it does not run.
set -euo pipefail
# shellcheck source=pid.sh
. "$(dirname "$0")/pid.sh"

stop_by_pidfile "${DJBAKE_RUN_DIR:-/run/djbake}/apt-cacher-ng.pid" apt-cacher-ng
