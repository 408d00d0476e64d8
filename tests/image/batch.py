"""One round trip for many facts: under software emulation every command the suite runs costs about a
second (an SSH channel, sudo, a process in an emulated VM), so the checks that ask about a list of
things (packages, units, kernel parameters, modules) ask once, in one command, and read the answers
apart here. The answers are the same as testinfra's per-item modules give (same commands, same rules).
"""
from __future__ import annotations

import shlex

# `systemctl is-enabled` states it counts as enabled (exit 0 in systemctl(1)'s table), as testinfra does.
ENABLED_STATES = {"enabled", "enabled-runtime", "static", "indirect", "generated", "transient", "alias"}


def installed_packages(host, names: list[str]) -> set[str]:
    """Which of names dpkg has installed (status "ii", as testinfra's package(x).is_installed)."""
    out = host.run("dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\n' " + " ".join(map(shlex.quote, names)))
    found = set()
    for line in out.stdout.splitlines():
        status, _, name = line.partition("\t")
        if status.startswith("ii"):
            found.add(name.split(":", 1)[0])   # multiarch names come back as name:arch
    return found


def unit_states(host, units: list[str]) -> dict[str, tuple[str, str]]:
    """unit -> (is-enabled state, is-active state), two commands for all units."""
    quoted = " ".join(map(shlex.quote, units))
    enabled = host.run(f"systemctl is-enabled {quoted}").stdout.splitlines()
    active = host.run(f"systemctl is-active {quoted}").stdout.splitlines()
    if len(enabled) != len(units) or len(active) != len(units):
        # a unit systemctl cannot resolve prints to stderr only: ask one by one to name it
        return {u: (host.run(f"systemctl is-enabled {shlex.quote(u)}").stdout.strip() or "not-found",
                    host.run(f"systemctl is-active {shlex.quote(u)}").stdout.strip() or "unknown") for u in units}
    return {u: (e.strip(), a.strip()) for u, e, a in zip(units, enabled, active)}


def proc_sys(host, keys: list[str]) -> dict[str, str]:
    """The running kernel's value of each sysctl key (/proc/sys); a key the kernel lacks is left out."""
    paths = " ".join(shlex.quote("/proc/sys/" + k.replace(".", "/")) for k in keys)
    out = host.run(f"grep -H '' {paths}")
    values = {}
    for line in out.stdout.splitlines():
        path, _, value = line.partition(":")
        values[path[len("/proc/sys/"):].replace("/", ".")] = value.strip()
    return values


def modprobe_dry_runs(host, modules: list[str]) -> dict[str, str]:
    """module -> what `modprobe -n -v` would do (its output and errors on one line)."""
    script = ("for m in " + " ".join(map(shlex.quote, modules)) +
              "; do printf '%s\\t' \"$m\"; modprobe -n -v \"$m\" 2>&1 | tr '\\n' ' '; echo; done")
    out = host.run(f"sh -c {shlex.quote(script)}")
    return {m: rest.strip() for m, _, rest in (line.partition("\t") for line in out.stdout.splitlines())}


def path_stats(host, paths: list[str]) -> dict[str, tuple[str, str, int]]:
    """path -> (owner, group, permission bits) for each path that exists, one `stat` for all; the same
    fields testinfra's file(x).user, .group and .mode read (stat without -L: a path ending in "/"
    follows its link, as it does for testinfra). A missing path is left out."""
    out = host.run("stat -c '%n\t%U\t%G\t%a' -- " + " ".join(map(shlex.quote, paths)))
    stats = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            stats[parts[0]] = (parts[1], parts[2], int(parts[3], 8))
    return stats
