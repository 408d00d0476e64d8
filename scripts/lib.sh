#!/usr/bin/env bash
# Shared helpers for the guest scripts. Sourced, never run: every script
# starts with `. "$(dirname "$0")/lib.sh"`. Everything here is idempotent.
# shellcheck disable=SC2034  # FILES is used by the scripts that source this

set -euo pipefail

# Where the config files of scripts/files/ were uploaded (next to the scripts).
FILES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/files"
SCRIPT_NAME="$(basename "$0" .sh)"

export DEBIAN_FRONTEND=noninteractive
# Ubuntu's needrestart (in its cloud images) would ask, or restart services
# mid-build, after each apt run: the image's services are (re)started by the
# scripts themselves. No effect where needrestart is not installed (Debian).
export NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
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
# djbake when its apt-cacher-ng answered at the start of the build:
# builder/bake/apt_cache.py), or at nothing. Not a fixed Acquire::http::Proxy:
# apt asks APT_PROXY_DETECT (Acquire::http::Proxy-Auto-Detect) once per host in
# each apt run, and it names the cache only while the cache answers, so a
# cache that went away mid-build costs one failed apt run (retried by the
# callers) and the rest fetch from the mirror directly, saying so in the log.
# Rewritten by every script that uses apt, as a cached stack layer may carry
# another build's address; seal.sh removes both files, so no image keeps them.
APT_PROXY_CONF=/etc/apt/apt.conf.d/00djbake-build-proxy
APT_PROXY_DETECT=/etc/apt/djbake-build-proxy-detect
# Seconds the probe waits for the cache's HTTP answer (a local daemon answers in milliseconds).
APT_PROXY_PROBE_TIMEOUT=${APT_PROXY_PROBE_TIMEOUT:-4}
apt_use_cache() {
    if [ -z "${DJBAKE_APT_PROXY:-}" ]; then
        rm -f "$APT_PROXY_CONF" "$APT_PROXY_DETECT"
        return
    fi
    # apt's http method runs it as _apt, with the URL it is about to fetch as $1;
    # stdout: the proxy or DIRECT; stderr reaches apt's own output (the build log).
    {
        printf '#!/bin/bash\n'
        printf '# djbake build only (scripts/lib.sh; seal.sh removes it): apt'"'"'s Acquire::http::Proxy-Auto-Detect.\n'
        printf 'proxy=%q timeout=%q\n' "$DJBAKE_APT_PROXY" "$APT_PROXY_PROBE_TIMEOUT"
        cat <<'PROBE'
hostport=${proxy#*://}
hostport=${hostport%%/*}
# Any HTTP status line from it means it serves; no answer in time (stopped, or
# hanging) means it does not.
reply=$(timeout "$timeout" bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "HEAD / HTTP/1.0\r\n\r\n" >&3 && head -c 5 <&3' \
    "${hostport%:*}" "${hostport##*:}" 2>/dev/null) || true
if [ "$reply" = "HTTP/" ]; then
    echo "$proxy"
else
    echo "[djbake apt] the host's package cache at $proxy does not answer: fetching ${1:-packages} from the mirror directly" >&2
    echo DIRECT
fi
PROBE
    } >"$APT_PROXY_DETECT"
    chmod 0755 "$APT_PROXY_DETECT"
    printf 'Acquire::http::Proxy-Auto-Detect "%s";\n' "$APT_PROXY_DETECT" >"$APT_PROXY_CONF"
    # Said once per step in the build log too, before apt runs.
    if [ "$("$APT_PROXY_DETECT" 2>/dev/null)" = DIRECT ]; then
        log "the host's package cache at $DJBAKE_APT_PROXY does not answer: apt fetches from the mirror directly"
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
# keep config files we already wrote (confold) on reinstall. Packages that
# are already installed are not asked for again: base.sh's dist-upgrade
# left every installed package at this build's candidate, so apt would do
# nothing for them, and an apt-get run that does nothing still costs seconds
# under emulation (the image layer's ssh.sh and upgrades.sh name packages the
# cached stack layer installed).
apt_install() {
    local missing
    missing=$(not_installed "$@")
    if [ -z "$missing" ]; then
        log "already installed: $*"
        return 0
    fi
    apt_lists
    # shellcheck disable=SC2086  # a list of package names
    retry 5 apt-get -q -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        install $missing
}

# not_installed PKG...: those of PKG that dpkg does not hold fully installed
# ("ii"), one per line, in the given order; a name dpkg does not know (a
# version or release suffix, an architecture, a virtual package) counts as
# not installed, so apt gets it as given. One dpkg-query and no other
# process: each costs tens of milliseconds under emulation.
not_installed() {
    local installed p
    installed=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "$@" 2>/dev/null || true)
    installed=$'\n'"$installed"$'\n'
    for p in "$@"; do
        case $installed in
        *$'\n'"ii |$p"$'\n'*) ;;
        *) echo "$p" ;;
        esac
    done
}

# with_toolchain CMD...: run CMD (which installs into the live release's venv) so
# that a requirement without a wheel can still be compiled, and leave no
# build tool behind unless the spec keeps them (DJBAKE_BUILD_TOOLS=1). CMD
# runs first as it is (wheels, and sdists that need no compiler, install);
# only if that fails are the tools (DJBAKE_TOOLCHAIN) installed, CMD run
# again, and then every package that added purged, except the shared
# libraries the venv now links against.
with_toolchain() {
    if [ "${DJBAKE_BUILD_TOOLS:-0}" = 1 ]; then
        "$@"
        return
    fi
    if "$@"; then
        return
    fi
    log "failed without build tools: installing them (${DJBAKE_TOOLCHAIN:-}) and trying again"
    local before added keep
    before=$(installed_packages)
    # shellcheck disable=SC2086  # a list of package names
    apt_install ${DJBAKE_TOOLCHAIN:?}
    "$@"
    added=$(comm -13 <(printf '%s\n' "$before") <(installed_packages))
    keep=$(comm -12 <(printf '%s\n' "$added") <(linked_packages /srv/app/venv/))
    # What the tools added becomes removable, but for what the compiled code
    # needs (and what that depends on). Suggests and Recommends keep nothing:
    # with them apt keeps gcc because some package of the base suggests it.
    # shellcheck disable=SC2086
    apt-mark auto $added >/dev/null
    # shellcheck disable=SC2086
    [ -z "$keep" ] || apt-mark manual $keep >/dev/null
    local removable purge
    removable=$(apt-get -s -o APT::AutoRemove::RecommendsImportant=false \
        -o APT::AutoRemove::SuggestsImportant=false autoremove | awk '$1 == "Remv" {sub(/:.*/, "", $2); print $2}' | sort -u)
    # Only what the tools brought: whatever else apt might call unneeded stays.
    purge=$(comm -12 <(printf '%s\n' "$added") <(printf '%s\n' "$removable"))
    # shellcheck disable=SC2086
    [ -z "$purge" ] || apt-get -q -y purge $purge
    log "build tools removed ($(wc -w <<<"$purge") packages)${keep:+; kept for the compiled code: ${keep//$'\n'/ }}"
    unlinked /srv/app/venv/  # the slash: find follows the link to the live release
}

installed_packages() { dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort -u; }

# ldd of every shared object under DIR (a file ldd cannot read is no failure).
shared_libs() { find "$1" -type f -name '*.so*' -exec ldd {} + 2>/dev/null || true; }

# The packages that own the shared libraries the ELF files under DIR load.
linked_packages() {
    local lib
    shared_libs "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
        while read -r lib; do
            lib=$(readlink -f "$lib")
            # merged /usr: dpkg may know the file under either name.
            dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "${lib#/usr}" 2>/dev/null || true
        done | cut -d: -f1 | sort -u
}

# Fail, naming them, if ELF files under DIR load a library that is not there.
# Wheels bundle libraries next to their modules (auditwheel's *.libs/, found
# through the module's RPATH): ldd of such a library alone misses its
# siblings, so a name that exists under DIR is there.
unlinked() {
    local missing
    missing=$(shared_libs "$1" | awk '/not found/ {print $1}' | sort -u | while read -r lib; do
        [ -n "$(find "$1" -name "$lib" -print -quit)" ] || echo "$lib"
    done)
    [ -z "$missing" ] || die "the virtualenv's compiled code needs ${missing//$'\n'/ }, which no installed package provides: add its runtime package to the spec's packages"
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
