"""Provider registry: one module per provider, each exporting `Provider`.

Adding a provider is adding a module here (and its tests); nothing else
in djbake names providers.
"""
from __future__ import annotations

import importlib

from builder.providers.base import Provider

MODULES = ("aws", "linode", "rackspace", "digitalocean", "hetzner", "gcp", "azure", "qemu", "docker")

PROVIDERS: dict[str, type[Provider]] = {
    name: importlib.import_module(f"builder.providers.{name}").Provider for name in MODULES
}


def get(name: str) -> type[Provider]:
    from builder.errors import UserError

    try:
        return PROVIDERS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, PROVIDERS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"unknown provider '{name}'{hint} (known: {', '.join(PROVIDERS)})") from None
