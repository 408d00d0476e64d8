"""`djbake catalog export|merge|migrate` (the logic: builder/catalog/sync.py, transfer.py, migrations.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from builder.catalog import migrations, transfer
from builder.catalog import store as catalog
from builder.catalog.import_check import read_sboms
from builder.catalog.sync import export_entries, merge, read_export, sboms_of
from builder.errors import UserError


def _catalog(args):
    return catalog.Catalog(args.catalog or None)  # a file or a postgresql:// URL, as given


def cmd_export(args) -> int:
    cat = _catalog(args)
    if args.channel:  # for Terraform's `external` data source (a flat map of strings)
        if not args.name:
            raise UserError("--channel needs --name IMAGE")
        data = transfer.channel_export(cat, args.channel, args.name, args.provider)
        entries = [data]
    else:
        entries = cat.query(provider=args.provider, image=args.name, state=None)
        data = export_entries(entries)
        data["sboms"] = sboms_of(cat, entries)
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"exported {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} from {cat.where} to {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_merge(args) -> int:
    entries = [e for path in args.files for e in read_export(Path(path))]  # read all before writing any
    documents = {sha: doc for path in args.files for sha, doc in read_sboms(Path(path)).items()}
    cat = _catalog(args)
    for document in documents.values():   # before the entries that name them
        cat.add_sbom(document)
    counts = merge(cat, entries)
    print(f"merged {len(args.files)} file(s) into {cat.where}: "
          f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged")
    return 0


def cmd_migrate(args) -> int:
    src = _catalog(args)  # opening applies the schema migrations
    if not args.to:
        with src.connect() as db:
            print(f"catalog {src.where}: schema version {migrations.version(db)} (current: {migrations.LATEST})")
        return 0
    dst = catalog.Catalog(args.to)
    if dst.where == src.where:
        raise UserError("--to names the catalog being copied")
    counts = transfer.copy(src, dst)
    print(f"copied {src.where} into {dst.where}: {counts['added']} added, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged; {counts['channels']} channel(s), {counts['history']} history row(s), "
          f"{counts['sboms']} bill(s) of materials")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "catalog", cmd_export, "export the catalog as JSON, or merge exports into it")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    e = verbs.add_parser("export", help="write every entry as JSON (stdout or -o FILE)")
    e.add_argument("-o", "--output", help="write to this file")
    e.add_argument("--provider", "-p", help="only this provider")
    e.add_argument("--name", help="only this image name")
    e.add_argument("--channel", help="with --name: what this channel selects, as a flat JSON map for Terraform")
    e.set_defaults(func=cmd_export)
    m = verbs.add_parser("merge", help="merge exports into the catalog; entries already there are stored once")
    m.add_argument("files", nargs="+", metavar="FILE")
    m.set_defaults(func=cmd_merge)
    g = verbs.add_parser("migrate", help="bring the schema up to date; with --to URL copy the whole catalog there")
    g.add_argument("--to", metavar="CATALOG", help="the catalog to copy into: postgresql://USER@HOST/DB or a file")
    g.set_defaults(func=cmd_migrate)
    for verb in (e, m, g):
        verb.add_argument("--catalog", help="catalog file or postgresql:// URL "
                                            "(default: $DJBAKE_CATALOG or build/catalog.sqlite)")
