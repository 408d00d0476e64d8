"""`djbake images` and `djbake latest`: what the catalog holds, and the image to select."""
from __future__ import annotations

import datetime as dt
import json
import sys

from builder import providers, regions
from builder.bake import timings
from builder.catalog import channels
from builder.catalog import import_check as catalog_import
from builder.catalog import store as catalog
from builder.commands import guard as cli_guard
from builder.errors import UserError


def _write_sbom(cat, entry_id: int) -> int:
    """The entry's bill of materials (CycloneDX JSON, builder/bake/sbom.py) on stdout, for auditors' tools."""
    e = cat.get(entry_id)
    if e is None:
        raise UserError(f"no image with id {entry_id} in {cat.where}")
    document = cat.sbom(e.sbom_sha256) if e.sbom_sha256 else None
    if document is None:
        raise UserError(f"image {entry_id} has no bill of materials in {cat.where}",
                        hint="images built before djbake recorded them have none; rebuild to get one")
    sys.stdout.write(document if document.endswith("\n") else document + "\n")
    return 0


def cmd_images(args) -> int:
    cat = catalog.Catalog()
    if args.sbom:
        return _write_sbom(cat, args.sbom)
    if args.show:
        e = cat.get(args.show)
        if e is None:
            raise UserError(f"no image with id {args.show} in {cat.where}")
        if args.json:
            print(json.dumps(e.__dict__, indent=2, default=str))
            return 0
        _print_entry(e)
        return 0
    rows = cat.query(provider=args.provider, image=args.name, state=None)
    if not rows:
        print(f"no images recorded in {cat.where}; bake one with `make image`")
        return 0
    print(f"{'id':>4}  {'provider':12} {'region':14} {'image':14} {'version':16} {'verified':8}  artifact")
    for e in rows:
        ver = "yes" if e.verified else "no"
        if e.state != "available":
            ver += f" ({e.state})"
        if e.revoked_at is not None:
            ver += " (revoked)"
        p = catalog_import.printable  # an imported value never moves the cursor or starts a line
        print(f"{e.id:>4}  {p(e.provider):12} {p(e.region):14} {p(e.image):14} {p(e.version):16} {ver:8}  "
              f"{p(e.artifact)}")
    return 0


def _print_entry(e) -> None:
    """Everything recorded about one image, for people; the timings as a table."""
    fields = dict(e.__dict__)
    record = fields.pop("timings") or {}
    fields["created_at"] = dt.datetime.fromtimestamp(fields["created_at"], dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")
    width = max(map(len, fields))
    for key, value in fields.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, default=str) if value else "-"
        print(f"{key:<{width}}  {'-' if value is None else catalog_import.printable(value)}")
    print()
    print(timings.timings_text(record, "timings:"), end="")


def cmd_latest(args) -> int:
    cls = providers.get(args.provider)
    known = [r.id for r in cls.region_table(cls.Settings())]
    if args.region and known and args.region not in known:
        raise UserError(regions.unknown_region_message(args.region, known, cls.name))
    cat = catalog.Catalog()
    if args.channel:  # the channel's build only (refused if revoked or unverified), never a newer one
        found = channels.resolve(cat, args.channel, args.provider, args.name, args.region)
    else:
        found = cat.query(provider=args.provider, image=args.name, region=args.region, verified=True)
    for e in found:
        # The cloud has the last word: an image deleted outside djbake is skipped (and noted).
        if cls.available(e.region, e.artifact):
            print(catalog_import.printable(e.artifact))
            return 0
        cat.update(e.id, state="unavailable")
    where = f" in {args.region}" if args.region else ""
    if args.channel:
        raise UserError(f"channel {args.channel} of {args.provider}: its image{where} is gone from the cloud",
                        hint=f"djbake channel rollback {args.channel} IMAGE --provider {args.provider}")
    raise UserError(f"no verified {args.provider} image{where} in the catalog",
                    hint=f"make image PROVIDER={args.provider}")


def register(sub, add, spec_args) -> None:
    p = add(sub, "images", cmd_images, "list the images in the catalog")
    p.add_argument("--provider", "-p")
    p.add_argument("--name", help="image name")
    p.add_argument("--show", type=cli_guard.entry_id, metavar="ID", help="everything recorded about one image, with its timings")
    p.add_argument("--json", action="store_true", help="with --show: the entry as JSON")
    p.add_argument("--sbom", type=cli_guard.entry_id, metavar="ID",
                   help="write one image's software bill of materials (CycloneDX JSON) to stdout")
    p = add(sub, "latest", cmd_latest, "print the newest verified image to select")
    p.add_argument("--provider", "-p", required=True, type=lambda v: providers.get(v).name)
    p.add_argument("--region", "-r")
    p.add_argument("--name", help="image name")
    p.add_argument("--channel", help="the build this release channel points at (djbake channel)")
