#!/usr/bin/env bash
# Stop the dockerd that start-dockerd.sh started (by its recorded PID only).
set -euo pipefail

pidfile="${DJBAKE_RUN_DIR:-/run/djbake}/dockerd.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
fi
rm -f "$pidfile"
