"""What the benchmark reads inside a booted image: packages and their size, listening ports, Lynis.

Everything goes through a `Session` (builder/bench/targets.py: `docker
exec` into a container, or SSH with sudo into a VM), so the same probe runs
on both. The parsers are pure functions, tested on real command output.
"""
from __future__ import annotations

import io
import ipaddress
import statistics
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Protocol

from builder.bake import gate
from builder.errors import BuildFailed, UserError

REQUIRED_PORTS = (22, 80, 443)
# The DHCP clients' own sockets (v4, v6): they receive the lease, serve nothing, and the
# firewall admits only replies from a DHCP server's port (as the image suite also counts them).
DHCP_CLIENT_PORTS = (68, 546)
PACKAGES_COMMAND = r"dpkg-query -W -f='${binary:Package}\t${Installed-Size}\t${db:Status-Abbrev}\n'"
LISTEN_COMMAND = "ss -Hlntu"
LYNIS_REPORT = "/tmp/djbake-lynis-report.dat"
LYNIS_COMMAND = (f"lynis audit system --quick --no-colors --report-file {LYNIS_REPORT} "
                 "--logfile /tmp/djbake-lynis.log >/dev/null 2>&1; cat " + LYNIS_REPORT)
# Where Debian's lynis package keeps its files on the host; copied into the
# booted throw-away target so the image itself never carries Lynis.
LYNIS_PATHS = ("/usr/sbin/lynis", "/usr/share/lynis", "/etc/lynis")


class Session(Protocol):
    transport: str

    def run(self, command: str, timeout: float = 600) -> tuple[int, str]: ...

    def gate_target(self) -> gate.Target: ...

    def put_tar(self, data: bytes) -> None: ...


# -- parsers (pure) -----------------------------------------------------------

def parse_packages(text: str) -> dict[str, int]:
    """{package: installed KiB} of installed packages from PACKAGES_COMMAND's output."""
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].startswith("ii"):
            continue
        out[parts[0]] = int(parts[1]) if parts[1].strip().isdigit() else 0
    return out


def _address(local: str) -> tuple[str, int]:
    host, _, port = local.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host in ("*", ""):
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def parse_listening(text: str) -> list[tuple[str, str, int]]:
    """(proto, address, port) of every listening socket in `ss -Hlntu` output."""
    out = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 5 or cols[0] not in ("tcp", "udp"):
            continue
        host, port = _address(cols[4])
        out.append((cols[0], host, port))
    return out


def ports_verdict(sockets: list[tuple[str, str, int]], want: tuple[int, ...] = REQUIRED_PORTS) -> dict:
    public_tcp = sorted({p for proto, h, p in sockets if proto == "tcp" and not is_loopback(h)})
    udp = {p for proto, h, p in sockets if proto == "udp" and not is_loopback(h)}
    public_udp = sorted(udp - set(DHCP_CLIENT_PORTS))
    local = sorted({f"{proto}/{p}" for proto, h, p in sockets if is_loopback(h)})
    return {"want": list(want), "public_tcp": public_tcp, "public_udp": public_udp, "local": local,
            "dhcp_client": sorted(udp & set(DHCP_CLIENT_PORTS)),
            "ok": public_tcp == sorted(want) and not public_udp,
            "none_beyond": set(public_tcp) <= set(want) and not public_udp,
            "missing": sorted(set(want) - set(public_tcp))}


def parse_lynis_report(text: str) -> dict:
    """hardening_index, lynis_version, the number of tests, and every warning and suggestion
    (`warning[]=ID|text|detail|...`) as [ID, "text (detail)"], from a Lynis report file."""
    found: dict[str, str] = {}
    findings: dict[str, list[list[str]]] = {"warnings": [], "suggestions": []}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("hardening_index", "lynis_version", "tests_executed"):
            found[key] = value.strip()
        elif sep and key in ("warning[]", "suggestion[]"):
            test, what, detail, *_ = value.strip().split("|") + ["", "", ""]
            if detail and detail != "-":
                what = f"{what} ({detail})"
            findings["warnings" if key == "warning[]" else "suggestions"].append([test, what])
    if "hardening_index" not in found:
        raise BuildFailed("the Lynis report has no hardening_index (did the audit run?)")
    return {"hardening_index": int(found["hardening_index"]), "version": found.get("lynis_version", "?"),
            "tests": len([t for t in found.get("tests_executed", "").split("|") if t]), **findings}


# -- probes -------------------------------------------------------------------

def packages(session: Session) -> dict[str, int]:
    code, out = session.run(PACKAGES_COMMAND)
    found = parse_packages(out)
    if code != 0 or not found:
        raise BuildFailed(f"dpkg-query over {session.transport} failed ({code}): {out[-300:]}")
    return found


def listening(session: Session) -> dict:
    code, out = session.run(LISTEN_COMMAND)
    if code != 0:
        raise BuildFailed(f"`{LISTEN_COMMAND}` over {session.transport} failed ({code}): {out[-300:]}")
    return ports_verdict(parse_listening(out))


def lynis_tar(paths: tuple[str, ...] = LYNIS_PATHS) -> bytes:
    """The host's Lynis (Debian package) as a tar to unpack at / in the target."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UserError(f"Lynis is not installed on this host ({', '.join(missing)} missing)",
                        hint="make deps (apt-get install lynis)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in paths:
            tar.add(p, arcname=p.lstrip("/"))
    return buf.getvalue()


# One Lynis run took 1729 s in a TCG VM with another QEMU beside it (2026-11-30); an hour leaves room.
LYNIS_TIMEOUT = 3600


def lynis(session: Session, timeout: float = LYNIS_TIMEOUT) -> dict:
    session.put_tar(lynis_tar())
    started = time.monotonic()
    code, out = session.run(LYNIS_COMMAND, timeout=timeout)
    result = parse_lynis_report(out)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _median_seconds(call, times: int) -> float:
    samples = []
    for _ in range(times):
        t = time.monotonic()
        call()
        samples.append(time.monotonic() - t)
    return statistics.median(samples)


def gate_round_trip(target: gate.Target, times: int = 10, plain: bool = True) -> float:
    """Median seconds of `true` through testinfra on one open connection. plain (the gate figure's
    baseline): one SSH exec as the login user, no sudo (testinfra's paramiko backend), or docker exec;
    not plain: the gate's own transport, made as gate.run_suite makes it (as a user other than root,
    every command through one root process: builder/bake/root_shell.py). The first command, which
    opens the connection (and starts that process), is not counted: the gate does that once."""
    import testinfra  # the gate's dependency; imported here, as builder.bake.gate does

    from builder.bake import root_shell  # noqa: F401  (registers the backend hosts_arg names)
    host = testinfra.get_host(target.hosts_arg("paramiko" if plain and target.backend == "ssh" else None))
    if host.run("true").rc != 0:
        raise BuildFailed(f"`true` failed through testinfra on {target.describe()}")
    return _median_seconds(lambda: host.run("true"), times)


def round_trip(session: Session, times: int = 10) -> float:
    """Median seconds of `true` through the session's own transport (qemu: a new SSH login each)."""
    return _median_seconds(lambda: session.run("true", timeout=60), times)


def run_checked(session: Session, command: str, what: str, timeout: float = 3600) -> float:
    """Seconds command took; a failure is a BuildFailed naming what failed."""
    t = time.monotonic()
    code, out = session.run(command, timeout=timeout)
    if code != 0:
        raise BuildFailed(f"{what} failed over {session.transport} ({code}): {out[-500:]}")
    return time.monotonic() - t


def ssh_run(command: list[str], stdin: bytes | None, timeout: float) -> tuple[int, str]:
    try:
        proc = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")
