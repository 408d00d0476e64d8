"""`djbake catalog export` / `djbake catalog merge FILE...`: move catalogs between machines.

A CI matrix builds each provider on its own runner, each with its own
catalog; every runner exports its entries as JSON, and one job merges the
exports into one catalog. An entry is identified by (build_id, provider,
region): merging the same export twice, or two exports that share entries,
stores each entry once. When an entry is already there, it only moves
forward (unverified -> verified, available -> unavailable/deregistered,
timings and extra filled in), so a later export (say, after verification)
updates the earlier one and no export can make an older image `latest`.
Exports are untrusted: builder/catalog_import.py checks every field.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path


FORMAT = "djbake-catalog"
VERSION = 1


def _catalog(args):
    from builder import catalog

    return catalog.Catalog(Path(args.catalog) if args.catalog else None)


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
    from builder import catalog_import

    return catalog_import.read_export(Path(path))  # every field type- and range-checked


def merge(cat, entries) -> dict[str, int]:
    """Add entries not yet in `cat`; update the mutable fields of those that are. Idempotent."""
    from builder import catalog_import

    return catalog_import.merge(cat, entries)  # one transaction, forward-only updates


def cmd_export(args) -> int:
    cat = _catalog(args)
    entries = cat.query(provider=args.provider, image=args.name, state=None)
    text = json.dumps(export_entries(entries), indent=2, sort_keys=True, default=str) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"exported {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} from {cat.path} to {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_merge(args) -> int:
    entries = [e for path in args.files for e in read_export(Path(path))]  # read all before writing any
    cat = _catalog(args)
    counts = merge(cat, entries)
    print(f"merged {len(args.files)} file(s) into {cat.path}: "
          f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "catalog", cmd_export, "export the catalog as JSON, or merge exports into it")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    e = verbs.add_parser("export", help="write every entry as JSON (stdout or -o FILE)")
    e.add_argument("-o", "--output", help="write to this file")
    e.add_argument("--provider", "-p", help="only this provider")
    e.add_argument("--name", help="only this image name")
    e.set_defaults(func=cmd_export)
    m = verbs.add_parser("merge", help="merge exports into the catalog; entries already there are stored once")
    m.add_argument("files", nargs="+", metavar="FILE")
    m.set_defaults(func=cmd_merge)
    for verb in (e, m):
        verb.add_argument("--catalog", help="catalog file (default: $DJBAKE_CATALOG or build/catalog.sqlite)")
