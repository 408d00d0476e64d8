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

# The docker bridge's address, or nothing when there is no bridge yet: on a
# fresh machine `make image` starts the cache before any dockerd has made
# docker0, and `ip` then fails. That failure once ended this script at this
# line (set -e, pipefail) with nothing said, and every build went without
# the cache.
bridge_address() {
    { ip -4 -o addr show dev "$bridge_dev" 2>/dev/null || true; } | awk '{split($4, a, "/"); print a[1]; exit}'
}

# 0 when apt-cacher-ng answers at the address (loopback by default), curl's
# 7 when nothing listens there, another status when it did not answer now.
answers() {
    local page
    page=$(curl -fsS --max-time 3 "http://${1:-127.0.0.1}:$port/acng-report.html" 2>/dev/null) || return $?
    grep -q 'Apt-Cacher NG' <<<"$page" || return 1
}

# listens ADDRESS [starting]: whether it answers at the address, asked until
# it answers or refuses (up to 20 times). On a loaded machine (a CI run) its
# report page can miss a 3 s probe, and after such a stall the next probe
# can miss too; deciding on one miss once skipped the bridge check below,
# and the script said the cache listened on the bridge when it listened on
# loopback only (seen in CI). A refusal (curl's 7) is a plain no at once,
# except just after a start ("starting": it may not listen yet; up to 30).
listens() {
    local rc tries=20
    if [ "${2:-}" = starting ]; then
        tries=30
    fi
    for _ in $(seq 1 "$tries"); do
        rc=0
        answers "$1" || rc=$?
        if [ "$rc" = 0 ]; then
            return 0
        elif [ "$rc" = 7 ] && [ "${2:-}" != starting ]; then
            return 1
        fi
        sleep 0.5
    done
    return 1
}

ours_running() {
    [ -n "$running" ] && grep -qs apt-cacher-ng "/proc/$running/cmdline"
}

bridge_dev=${DJBAKE_DOCKER_BRIDGE:-docker0}
bridge=$(bridge_address)
running=$(cat "$pidfile" 2>/dev/null || true)
if listens 127.0.0.1; then
    if [ -z "$bridge" ] || listens "$bridge"; then
        exit 0
    fi
    # It answers on loopback only: it was started before the bridge existed,
    # so docker builds could not reach it. Restart ours bound to both; one
    # that is not ours is left alone.
    if ! ours_running; then
        echo "start-apt-cache: an apt-cacher-ng not started here answers on port $port but not on $bridge_dev ($bridge): docker builds fetch directly" >&2
        exit 0
    fi
    # shellcheck source=pid.sh
    . "$(dirname "$0")/pid.sh"
    stop_by_pidfile "$pidfile" apt-cacher-ng
    running=
    echo "start-apt-cache: restarting apt-cacher-ng to listen on $bridge_dev ($bridge) too"
fi
if ! command -v apt-cacher-ng >/dev/null 2>&1; then
    echo "start-apt-cache: apt-cacher-ng is not installed (fix: apt-get install apt-cacher-ng)" >&2
    exit 2
fi
mkdir -p "$run_dir" "$cache_dir/log"
bind=127.0.0.1
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
# One of ours that is running but does not listen yet is waited for, never
# doubled.
if ! ours_running; then
    nohup apt-cacher-ng -c "$cache_dir/conf" ForeGround=1 >"$cache_dir/log/daemon.out" 2>&1 &
    echo $! >"$pidfile"
fi
if listens 127.0.0.1 starting; then
    echo "start-apt-cache: apt-cacher-ng on $bind port $port, cache $cache_dir"
    exit 0
fi
# shellcheck source=pid.sh
. "$(dirname "$0")/pid.sh"
stop_by_pidfile "$pidfile" apt-cacher-ng
echo "start-apt-cache: apt-cacher-ng did not answer on port $port; see $cache_dir/log" >&2
exit 1
