"""The host's package cache, as local builds see it.

apt-cacher-ng (started by scripts/host/start-apt-cache.sh, `make apt-cache`;
`make image` starts it) caches every .deb and index a local build fetches,
so a rebuild, a fresh bootstrap or a second image downloads nothing the
host already has. The wheelhouse (builder/bake/wheelhouse.py) does the same for
Python packages.

A build uses the cache only when it answers at the address its guest will
use; otherwise apt fetches directly, as without djbake. The address is
given to the guest scripts as the Packer variable `apt_proxy` (never in the
rendered template, so a cached stack layer does not depend on it);
scripts/lib.sh points apt at it for the build only, through a probe apt runs
before its fetches (Acquire::http::Proxy-Auto-Detect): a cache that stops
answering mid-build sends apt to the mirror directly, and the build log says
so. seal.sh removes the setting and the probe, so no image carries them. Cloud builds fetch from their cloud's own
mirrors and do not use it.
"""
from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from builder import paths
from builder.docker import client

VARIABLE = "apt_proxy"


def port() -> int:
    return int(os.environ.get("DJBAKE_APT_CACHE_PORT", "3142"))


def answers(host: str, timeout: float = 2.0) -> bool:
    """Is an apt-cacher-ng serving at host:port()? (Its report page names it.)"""
    url = f"http://{host}:{port()}/acng-report.html"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:   # noqa: S310 - our own local daemon
            return b"Apt-Cacher NG" in r.read(65536)
    except (OSError, ValueError):
        return False


def docker_gateway() -> str | None:
    """The default bridge's gateway: where a docker build's container reaches the host."""
    try:
        return client.bridge_gateway(client.connect())
    except Exception:   # noqa: BLE001 - no engine, no bridge: no cache for this build
        return None


@dataclass(frozen=True)
class Route:
    """How a local provider's guest reaches the host, and where djbake checks the cache from."""

    check: str     # address djbake (on the host) probes
    guest: str     # address the guest's apt uses


# Tools on the host itself (mmdebstrap) reach the cache on loopback.
HOST = Route("127.0.0.1", "127.0.0.1")


def route(provider: str) -> Route | None:
    # QEMU user networking forwards 10.0.2.2 to the host's loopback.
    if provider == "qemu":
        return Route("127.0.0.1", "10.0.2.2")
    if provider == "docker":
        gw = docker_gateway()
        return Route(gw, gw) if gw else None
    return None


def _proxy(r: Route | None) -> str:
    """The proxy URL along r when the cache answers there (and is not turned off), else ""."""
    if os.environ.get("DJBAKE_APT_CACHE", "1") == "0" or r is None or not answers(r.check):
        return ""
    return f"http://{r.guest}:{port()}"


def proxy_for(provider: str) -> str:
    """The proxy URL for this provider's build guest, or "" (fetch directly)."""
    return _proxy(route(provider))


def host_proxy() -> str:
    """For tools on the host itself (mmdebstrap): the cache on loopback, or ""."""
    return _proxy(HOST)


def host_env(note=lambda s: None) -> dict[str, str]:
    """The environment for mmdebstrap on the host: through the cache when it answers.

    apt reads http_proxy from the environment; unlike --aptopt that leaves
    no trace in the root filesystem it builds.
    """
    proxy = host_proxy()
    if proxy:
        note(f"  packages through the host's cache at {proxy}")
    return {**os.environ, "http_proxy": proxy} if proxy else dict(os.environ)


@dataclass(frozen=True)
class Traffic:
    """What apt-cacher-ng's log says about a span of time: bytes fetched upstream, bytes served."""

    fetched: int
    served: int
    files_fetched: int
    files_served: int
    packages_fetched: int = 0     # .deb files among files_fetched
    packages_served: int = 0


def traffic(log: Path, since: float, until: float | None = None) -> Traffic:
    """From apt-cacher.log lines `time|I|bytes|client|path` (I: from upstream, O: to a client)."""
    fetched = served = nf = ns = pf = ps = 0
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split("|")
        if len(parts) < 5 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        t = int(parts[0])
        if t < int(since) or (until is not None and t > until):
            continue
        deb = parts[4].split()[0].endswith(".deb")
        if parts[1] == "I":
            fetched, nf, pf = fetched + int(parts[2]), nf + 1, pf + deb
        elif parts[1] == "O":
            served, ns, ps = served + int(parts[2]), ns + 1, ps + deb
    return Traffic(fetched, served, nf, ns, pf, ps)


def log_path() -> Path:
    return paths.apt_cache_dir() / "log" / "apt-cacher.log"
