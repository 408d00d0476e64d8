#!/usr/bin/env bash
# Sourced by the stop-*.sh scripts: stop a daemon we started, by the PID we
# recorded, never by name (another one of the same kind may be the user's).

# stop_by_pidfile PIDFILE NAME: SIGTERM the PID if it is still NAME, wait up
# to 30 s, and remove the file. Nothing to do when the file is absent.
stop_by_pidfile() {
    local pidfile=$1 name=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && grep -q "$name" "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
    fi
    rm -f "$pidfile"
}
