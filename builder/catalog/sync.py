"""Catalog export and merge (`djbake catalog export|merge`): move catalogs between machines.

A CI matrix builds each provider on its own runner, each with its own
catalog; every runner exports its entries as JSON, and one job merges the
exports into one catalog. An entry is identified by (build_id, provider,
region): merging the same export twice, or two exports that share entries,
stores each entry once. When an entry is already there, it only moves
forward (unverified -> verified, available -> unavailable/deregistered,
timings and extra filled in), so a later export (say, after verification)
updates the earlier one and no export can make an older image `latest`.
Exports are untrusted: builder/catalog/import_check.py checks every field.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from builder.catalog import import_check
from builder.catalog.import_check import FORMAT, VERSION


def key(entry) -> tuple[str, str, str]:
    return (entry.build_id, entry.provider, entry.region)


def export_entries(entries) -> dict:
    rows = []
    for e in sorted(entries, key=lambda e: (e.created_at, *key(e))):
        row = asdict(e)
        row.pop("id")
        rows.append(row)
    return {"format": FORMAT, "version": VERSION, "entries": rows}


def sboms_of(cat, entries) -> dict[str, str]:
    """The bills of materials the entries name (extra["sbom"]["sha256"]), for an export."""
    out = {}
    for e in entries:
        sha = e.sbom_sha256
        if sha and sha not in out:
            document = cat.sbom(sha)
            if document is not None:
                out[sha] = document
    return out


def read_export(path: Path) -> list:
    """Every entry of an export file: exports are untrusted, so every field is type- and range-checked."""
    return import_check.read_export(Path(path))


def merge(cat, entries) -> dict[str, int]:
    """Add new entries and move existing ones forward, in one transaction. Idempotent, also concurrently."""
    return import_check.merge(cat, entries)
