#!/usr/bin/env bash
# Stop the dockerd that start-dockerd.sh started (by its recorded PID only).
set -euo pipefail
# shellcheck source=pid.sh
. "$(dirname "$0")/pid.sh"

stop_by_pidfile "${DJBAKE_RUN_DIR:-/run/djbake}/dockerd.pid" dockerd
