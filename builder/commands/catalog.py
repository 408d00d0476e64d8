"""`djbake catalog export` / `djbake catalog merge FILE...` (the logic: builder/catalog/sync.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from builder.catalog import store as catalog
from builder.catalog.sync import export_entries, merge, read_export


def _catalog(args):
    return catalog.Catalog(Path(args.catalog) if args.catalog else None)


def cmd_export(args) -> int:
    cat = _catalog(args)
    entries = cat.query(provider=args.provider, image=args.name, state=None)
    text = json.dumps(export_entries(entries), indent=2, sort_keys=True, default=str) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"exported {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} from {cat.where} to {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_merge(args) -> int:
    entries = [e for path in args.files for e in read_export(Path(path))]  # read all before writing any
    cat = _catalog(args)
    counts = merge(cat, entries)
    print(f"merged {len(args.files)} file(s) into {cat.where}: "
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
