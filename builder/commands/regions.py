"""`djbake regions`: a provider's data centers, and which ones serve users on given continents."""
from __future__ import annotations

from builder import providers, regions
from builder.commands.args import load_spec
from builder.errors import UserError


def cmd_regions(args) -> int:
    cls = providers.get(args.provider)
    settings = _settings(args, cls)
    rows = cls.region_table(settings)
    continents = [c.strip() for c in (args.near or "").split(",") if c.strip()]
    for c in continents:
        if c not in regions.CONTINENTS:
            raise UserError(regions.unknown_continent_message(c))
    if continents:
        print(f"{cls.title}: regions for users in {', '.join(continents)} (the first builds, the rest get copies)")
        print(f"{'users in':15} {'region':26} {'country':7} city")
        for pick in regions.near(rows, continents):
            note = f"  (no {cls.name} region in {pick.continent}; nearest: {pick.region.continent})" \
                if pick.fallback else ""
            r = pick.region
            print(f"{pick.continent:15} {r.id:26} {r.country:7} {r.city}{note}")
        return 0
    print(f"{cls.title}: {len(rows)} regions (`near:` picks the first of each continent)")
    print(f"{'region':26} {'continent':15} {'country':7} city")
    for r in rows:
        print(f"{r.id:26} {r.continent:15} {r.country:7} {r.city}")
    return 0


def _settings(args, cls):
    """The spec's settings for the provider when a spec is given (Rackspace: flex or classic)."""
    if getattr(args, "spec", None) or getattr(args, "image", None):
        return load_spec(args).providers_settings(cls.name)
    return cls.Settings()


def register(sub, add, spec_args) -> None:
    p = add(sub, "regions", cmd_regions, "list a provider's regions, or the ones near your users' continents")
    p.add_argument("--provider", "-p", required=True, help="provider name")
    p.add_argument("--near", help=f"continents, comma-separated ({', '.join(regions.CONTINENTS)})")
    spec_args(p)
