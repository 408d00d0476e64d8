#!/usr/bin/env bash
# Start a Docker engine for the container loop and the AWS stand-in host.
# Idempotent: does nothing when an engine already answers. Debian's
# docker.io does not start its service on our machines, so we run dockerd
# ourselves and record its PID for stop-dockerd.sh.
set -euo pipefail

run_dir=${DJBAKE_RUN_DIR:-/run/djbake}
pidfile="$run_dir/dockerd.pid"
mkdir -p "$run_dir"

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-dockerd: dockerd is not installed (fix: apt-get install docker.io)" >&2
    exit 2
fi
nohup dockerd --pidfile "$pidfile.engine" >"$run_dir/dockerd.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "start-dockerd: dockerd did not answer within 60 s; see $run_dir/dockerd.log" >&2
exit 1
