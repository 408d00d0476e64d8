"""Catalog export and merge (`djbake catalog export|merge`): move catalogs between machines.

A CI matrix builds each provider on its own runner, each with its own
catalog; every runner exports its entries as JSON, and one job merges the
exports into one catalog. An entry is identified by (build_id, provider,
region): merging the same export twice, or two exports that share entries,
stores each entry once. When an entry is already there, its mutable fields
(verified, verification, state, timings, extra) take the incoming values,
so a later export (say, after verification) updates the earlier one.
"""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from builder.catalog.store import Entry
from builder.errors import UserError

FORMAT = "djbake-catalog"
VERSION = 1
MUTABLE = ("verified", "verification", "state", "timings", "extra")


def key(entry) -> tuple[str, str, str]:
    return (entry.build_id, entry.provider, entry.region)


def export_entries(entries) -> dict:
    rows = []
    for e in sorted(entries, key=lambda e: (e.created_at, *key(e))):
        row = asdict(e)
        row.pop("id")
        rows.append(row)
    return {"format": FORMAT, "version": VERSION, "entries": rows}


def read_export(path: Path) -> list:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a catalog export ({e})", hint="make one with `djbake catalog export -o FILE`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
        raise UserError(f"{path}: not a catalog export (no \"format\": \"{FORMAT}\")",
                        hint="make one with `djbake catalog export -o FILE`")
    if data.get("version", 0) > VERSION:
        raise UserError(f"{path}: catalog export version {data['version']} is newer than this djbake reads ({VERSION})",
                        hint="upgrade djbake on the merging machine")
    known = {f.name for f in fields(Entry)} - {"id"}
    out = []
    for i, row in enumerate(data["entries"]):
        missing = {"build_id", "image", "version", "provider", "region", "artifact"} - set(row)
        if missing:
            raise UserError(f"{path}: entry {i} lacks {', '.join(sorted(missing))}")
        out.append(Entry(**{k: v for k, v in row.items() if k in known}))
    return out


def merge(cat, entries) -> dict[str, int]:
    """Add entries not yet in `cat`; update the mutable fields of those that are. Idempotent."""
    existing = {key(e): e for e in cat.query(state=None)}
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    new = []
    for e in entries:
        k = key(e)
        have = existing.get(k)
        if have is None:
            new.append(e)
            existing[k] = e
            counts["added"] += 1
            continue
        changes = {f: getattr(e, f) for f in MUTABLE if getattr(e, f) != getattr(have, f)}
        if changes and have.id is not None:
            cat.update(have.id, **changes)
            for f, v in changes.items():
                setattr(have, f, v)
            counts["updated"] += 1
        elif changes:  # twice in this merge, not written yet: the later one wins
            for f, v in changes.items():
                setattr(have, f, v)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    if new:
        cat.add(new)  # one transaction
    return counts
