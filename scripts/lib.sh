#!/usr/bin/env bash
# Shared helpers for the guest scripts. Sourced, never run: every script
# starts with `. "$(dirname "$0")/lib.sh"`. Everything here is idempotent.
# shellcheck disable=SC2034  # FILES is used by the scripts that source this

set -euo pipefail

# Where the config files of scripts/files/ were uploaded (next to the scripts).
FILES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/files"
SCRIPT_NAME="$(basename "$0" .sh)"

export DEBIAN_FRONTEND=noninteractive
# Keep service restarts from needrestart-like prompts and locales warnings quiet.
export LC_ALL=C.UTF-8

log() { printf '[djbake %s] %s\n' "$SCRIPT_NAME" "$*"; }
die() { printf '[djbake %s] ERROR: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

# A command that fails stops the script (set -e). Say where, in one line that djbake's
# runner turns into the build's failure message: the script's own line and command (for a
# failure inside a helper here, the script's line that called it) and the exit status.
set -o errtrace
_djbake_failed() {
    local rc=$? cmd=$BASH_COMMAND n=$((${#BASH_SOURCE[@]} - 1))
    # Only the script's own shell: a failure inside $(...) may be masked (local x=$(...)),
    # and if it is not, the assignment fails here too.
    [ "$BASHPID" = "$$" ] || return "$rc"
    trap - ERR  # once: not again for each enclosing function
    local line=${BASH_LINENO[$((n - 1))]:-0} src=${BASH_SOURCE[$n]:-$0}
    # In a helper (or a helper's `return 1`), the script's line says more than the inner command.
    if { [ "$n" -gt 1 ] || [[ $cmd == return* ]]; } && [ -r "$src" ]; then
        cmd=$(sed -n "${line}{s/^[[:space:]]*//;p;}" "$src" 2>/dev/null || true)
    fi
    printf 'djbake: scripts/%s line %s failed: %s (exit %s)\n' "$(basename "$src")" "$line" "${cmd:-$BASH_COMMAND}" "$rc" >&2
}
trap _djbake_failed ERR

# retry N CMD...: run CMD up to N times, waiting 5, 10, 15 ... s between tries.
# Mirrors and PyPI drop connections now and then; a build should not die of it,
# but it must die eventually, so the number of tries is bounded.
retry() {
    local tries=$1 n=1
    shift
    until "$@"; do
        if (( n >= tries )); then
            log "giving up after $n tries: $*"
            return 1
        fi
        log "try $n of $tries failed, retrying in $((n * 5)) s: $*"
        sleep $((n * 5))
        n=$((n + 1))
    done
}

# Point this build's apt at the host's package cache (DJBAKE_APT_PROXY, set by
# djbake when its apt-cacher-ng answers: builder/apt_cache.py), or at nothing.
# Rewritten by every script that uses apt, as a cached stack layer may carry
# another build's address; seal.sh removes it, so no image keeps it.
APT_PROXY_CONF=/etc/apt/apt.conf.d/00djbake-build-proxy
apt_use_cache() {
    if [ -n "${DJBAKE_APT_PROXY:-}" ]; then
        printf 'Acquire::http::Proxy "%s";\n' "$DJBAKE_APT_PROXY" >"$APT_PROXY_CONF"
    else
        rm -f "$APT_PROXY_CONF"
    fi
}

# apt-get update when the package lists are missing (fresh image or after a
# seal removed them); otherwise the lists of this build are reused.
apt_lists() {
    apt_use_cache
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        retry 5 apt-get -q update
    fi
}

# apt_install PKG...: install without recommends (we name what we need) and
# keep config files we already wrote (confold) on reinstall.
apt_install() {
    apt_lists
    retry 5 apt-get -q -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        install "$@"
}

# put SRC DEST MODE [OWNER:GROUP]: install a file from scripts/files/.
put() {
    local src=$1 dest=$2 mode=$3 owner=${4:-root:root}
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$FILES/$src" "$dest"
}

# True when systemd is PID 1 (VMs, and our docker builds); scripts then also
# start what they enable, so the in-build gate sees a running system.
systemd_running() { [ -d /run/systemd/system ]; }

in_container() { systemd-detect-virt --container --quiet 2>/dev/null; }

# enable_now UNIT...: enable for every boot and (re)start now when possible.
enable_now() {
    systemctl enable "$@"
    if systemd_running; then
        systemctl daemon-reload
        systemctl restart "$@"
    fi
}

daemon_reload() {
    if systemd_running; then systemctl daemon-reload; fi
}

# Input every script may read; the others are checked where they are used.
: "${DJBAKE_PAYLOAD:=/tmp/djbake}"
