#!/usr/bin/env bash
# Start the host's package cache: apt-cacher-ng, through which every local
# build's apt fetches (QEMU guests reach it at 10.0.2.2, docker builds at the
# bridge's gateway), so a rebuild downloads no package it already has.
# Idempotent: does nothing when an apt-cacher-ng already answers on the
# port. Listens on loopback and the docker bridge only, never on the
# host's network (an open proxy there would serve anyone). The cache
# outlives builds; stop-apt-cache.sh stops the daemon this script started.
set -euo pipefail

port=${DJBAKE_APT_CACHE_PORT:-3142}
cache_dir=${DJBAKE_APT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/djbake/apt-cacher-ng}
run_dir=${DJBAKE_RUN_DIR:-/run/djbake}
pidfile="$run_dir/apt-cacher-ng.pid"

answers() {
    curl -fsS --max-time 3 "http://127.0.0.1:$port/acng-report.html" 2>/dev/null | grep -q 'Apt-Cacher NG'
}

if answers; then
    exit 0
fi
if ! command -v apt-cacher-ng >/dev/null 2>&1; then
    echo "start-apt-cache: apt-cacher-ng is not installed (fix: apt-get install apt-cacher-ng)" >&2
    exit 2
fi
mkdir -p "$run_dir" "$cache_dir/log"
bind=127.0.0.1
bridge=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
if [ -n "$bridge" ]; then
    bind="$bind $bridge"
fi
# A configuration of our own, not Debian's /etc/apt-cacher-ng: its mirror
# remaps send deb.debian.org's requests to ftp.debian.org, which a host
# allowed to reach only its configured mirror cannot reach. Without remaps
# every request goes to the host apt asked for, and is cached under it.
mkdir -p "$cache_dir/conf"
cat >"$cache_dir/conf/acng.conf" <<CONF
Port: $port
BindAddress: $bind
CacheDir: $cache_dir
LogDir: $cache_dir/log
SupportDir: /usr/lib/apt-cacher-ng
ReportPage: acng-report.html
SocketPath: $run_dir/apt-cacher-ng.socket
ExThreshold: 30
CONF
# In the foreground under our own `&`, so the PID we record is the daemon's
# (as for dockerd); its own daemonizing and PidFile left one running after
# stop-apt-cache.sh in a CI run here.
# One we started that is only slow to answer is waited for, never doubled.
running=$(cat "$pidfile" 2>/dev/null || true)
if [ -z "$running" ] || ! grep -qs apt-cacher-ng "/proc/$running/cmdline"; then
    nohup apt-cacher-ng -c "$cache_dir/conf" ForeGround=1 >"$cache_dir/log/daemon.out" 2>&1 &
    echo $! >"$pidfile"
fi
for _ in $(seq 1 30); do
    if answers; then
        echo "start-apt-cache: apt-cacher-ng on $bind port $port, cache $cache_dir"
        exit 0
    fi
    sleep 0.5
done
# shellcheck source=pid.sh
. "$(dirname "$0")/pid.sh"
stop_by_pidfile "$pidfile" apt-cacher-ng
echo "start-apt-cache: apt-cacher-ng did not answer on port $port; see $cache_dir/log" >&2
exit 1
