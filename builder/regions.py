"""Where each provider has data centers, so an image can sit near its users.

The seed's advice: users get better response times from a server on their
own continent. A spec names regions per provider explicitly, or names the
continents its users are on (`near: [europe, north-america]`); this module
turns either into the provider's region list, the first being where the
image is built, the rest where it is copied.

The facts are one table per provider in builder/data/regions.json: region
id, continent, country, city. Within a provider the first row of a
continent is the one `near:` picks for that continent (a well-connected,
long-standing region); a continent the provider does not serve falls back
to its nearest neighbour that it does, and `djbake regions` says so.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache

from builder import paths

DATA = paths.DATA / "regions.json"

CONTINENTS = ("north-america", "south-america", "europe", "asia", "oceania", "africa")

# Where users on a continent are best served when their provider has no
# region there: the continents in order of network distance.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "north-america": ("europe", "south-america", "asia", "oceania", "africa"),
    "south-america": ("north-america", "europe", "africa", "oceania", "asia"),
    "europe": ("north-america", "africa", "asia", "south-america", "oceania"),
    "asia": ("oceania", "europe", "north-america", "africa", "south-america"),
    "oceania": ("asia", "north-america", "south-america", "europe", "africa"),
    "africa": ("europe", "asia", "south-america", "north-america", "oceania"),
}


@dataclass(frozen=True)
class Region:
    id: str
    continent: str
    country: str
    city: str


@lru_cache(maxsize=None)
def _data() -> dict[str, tuple[Region, ...]]:
    raw = json.loads(DATA.read_text())
    return {name: tuple(Region(*row) for row in rows) for name, rows in raw.items() if not name.startswith("_")}


def table(provider: str) -> tuple[Region, ...]:
    """Every region of one provider, in preference order."""
    return _data().get(provider, ())


def unknown_region_message(region: str, known: list[str], provider: str) -> str:
    close = difflib.get_close_matches(region, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{provider} has no region '{region}'{hint} (`djbake regions --provider {provider}` lists them)"


def unknown_continent_message(name: str) -> str:
    close = difflib.get_close_matches(name, CONTINENTS, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"'{name}' is not a continent{hint} (known: {', '.join(CONTINENTS)})"


@dataclass(frozen=True)
class Pick:
    continent: str       # where the users are
    region: Region       # what serves them
    fallback: bool       # the provider has no region on that continent


def near(rows: tuple[Region, ...], continents: list[str]) -> list[Pick]:
    """One region per continent of users, from `rows` (a provider's table)."""
    picks: list[Pick] = []
    for continent in continents:
        for candidate in (continent, *NEIGHBOURS.get(continent, ())):
            found = next((r for r in rows if r.continent == candidate), None)
            if found:
                picks.append(Pick(continent, found, candidate != continent))
                break
    return picks


def resolve(rows: tuple[Region, ...], explicit: list[str], continents: list[str],
            default: tuple[str, ...]) -> list[str]:
    """The regions a provider builds in (first) and copies to (the rest)."""
    if explicit:
        return list(explicit)
    if continents:
        out: list[str] = []
        for pick in near(rows, continents):
            if pick.region.id not in out:
                out.append(pick.region.id)
        return out
    return list(default)
