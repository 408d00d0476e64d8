"""`djbake channel set|list|history|rollback` (the logic: builder/catalog/channels.py; AWS SSM:
builder/clouds/aws_release.py)."""
from __future__ import annotations

import datetime as dt

from builder import providers
from builder.catalog import channels
from builder.catalog import store as catalog
from builder.catalog.import_check import printable
from builder.clouds import aws_release


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _report(cat, changes, verb: str) -> None:
    if not changes:
        print("no change: the channel already points there")
    for c in changes:
        print(f"{verb} {c.channel} of {c.image} ({c.provider}): {c.from_build or '(unset)'} -> {c.to_build}")
        if c.provider == "aws":  # Terraform's aws_ssm_parameter reads the channel in each region
            for note in aws_release.publish_channel(c.image, c.channel,
                                                    channels.resolve(cat, c.channel, "aws", c.image)):
                print(f"  {note}")


def cmd_set(args) -> int:
    cat = catalog.Catalog()
    _report(cat, channels.set_channel(cat, args.channel, args.image_name, args.build, args.provider), "set")
    return 0


def cmd_rollback(args) -> int:
    cat = catalog.Catalog()
    _report(cat, channels.rollback(cat, args.channel, args.image_name, args.provider), "rolled back")
    return 0


def _table(rows: list, empty: str, header: str, line) -> int:
    print(header if rows else empty)
    for row in rows:
        print(line({k: printable(v) if isinstance(v, str) else v for k, v in row.items()}))
    return 0


def cmd_list(args) -> int:
    cat = catalog.Catalog()
    rows = channels.assignments(cat, args.name, args.provider, args.channel)
    revoked = {e.build_id for e in cat.query(image=args.name, provider=args.provider, state=None, revoked=True)}

    def line(a: dict) -> str:
        status = (f"  REVOKED: djbake channel rollback {a['channel']} {a['image']} --provider {a['provider']}"
                  if a["build_id"] in revoked else "")
        return (f"{a['channel']:12} {a['image']:14} {a['provider']:12} {a['build_id']:24} {_when(a['set_at']):24} "
                f"{a['set_by']}{status}")

    return _table(rows, f"no channels set in {cat.where}; set one with `djbake channel set CHANNEL IMAGE BUILD`",
                  f"{'channel':12} {'image':14} {'provider':12} {'build':24} {'set at':24} set by", line)


def cmd_history(args) -> int:
    rows = channels.history(catalog.Catalog(), args.channel, args.image_name, args.provider)
    return _table(rows, f"channel {args.channel} of {args.image_name} has no history",
                  f"{'when':24} {'provider':12} {'action':9} {'from':24} {'to':24} who",
                  lambda r: f"{_when(r['changed_at']):24} {r['provider']:12} {r['action']:9} "
                            f"{r['from_build'] or '(unset)':24} {r['to_build']:24} {r['changed_by']}")


def _provider(value: str) -> str:
    return providers.get(value).name


def register(sub, add, spec_args) -> None:
    p = add(sub, "channel", cmd_list, "release channels: named pointers at verified builds (set, list, history, "
                                      "rollback)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser("set", help="point CHANNEL of IMAGE at BUILD (a build id or version); verified builds only")
    s.add_argument("channel")
    s.add_argument("image_name", metavar="IMAGE")
    s.add_argument("build", metavar="BUILD")
    s.set_defaults(func=cmd_set)
    ls = verbs.add_parser("list", help="every channel and the build it points at")
    ls.add_argument("--name", help="only this image")
    ls.add_argument("--channel", help="only this channel")
    ls.set_defaults(func=cmd_list)
    h = verbs.add_parser("history", help="who moved CHANNEL of IMAGE when, from which build to which")
    h.add_argument("channel")
    h.add_argument("image_name", metavar="IMAGE")
    h.set_defaults(func=cmd_history)
    r = verbs.add_parser("rollback", help="restore the assignment before the current one")
    r.add_argument("channel")
    r.add_argument("image_name", metavar="IMAGE")
    r.set_defaults(func=cmd_rollback)
    for verb in (s, ls, h, r):
        verb.add_argument("--provider", "-p", type=_provider, help="only this provider (default: all)")
