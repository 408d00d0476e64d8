"""Provider registry: one module per provider, each exporting `Provider`.

Adding a provider is adding a module here, its facts in builder/tables.py
and builder/data/regions.json, and its tests (docs/adding-a-provider.md).
A few modules single out the two local providers by name, because they run
on this host: LOCAL below (bake/multi.py, doctor.py), bake/apt_cache.py (how
each local guest reaches the host's package cache), and the benchmark
(bench/, commands/bench.py), which measures qemu and docker only.
"""
from __future__ import annotations

import importlib

from builder.errors import UserError
from builder.providers.base import Provider

MODULES = ("aws", "linode", "rackspace", "digitalocean", "hetzner", "gcp", "azure", "qemu", "docker")
# Built on this host: no cloud account, but local tools and disk space.
LOCAL = ("qemu", "docker")

PROVIDERS: dict[str, type[Provider]] = {
    name: importlib.import_module(f"builder.providers.{name}").Provider for name in MODULES
}


def get(name: str) -> type[Provider]:
    try:
        return PROVIDERS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, PROVIDERS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"unknown provider '{name}'{hint} (known: {', '.join(PROVIDERS)})") from None
