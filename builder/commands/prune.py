"""`djbake prune`: delete a provider's old images (and their snapshots), keep the ones that matter.

The provider decides what "old" means from the cloud's own records (an
image built elsewhere counts too); every provider keeps the newest `--keep`
builds, the newest verified image and any image that running VMs use.
The catalog follows: pruned images get state `deregistered`.
"""
from __future__ import annotations

from builder import providers
from builder.catalog import store as catalog
from builder.commands.args import load_spec
from builder.errors import UserError


def cmd_prune(args) -> int:
    if args.keep < 1:
        raise UserError("--keep must be 1 or more")
    spec = load_spec(args)
    provider = providers.get(args.provider)(spec)
    if not hasattr(provider, "prune"):
        done = ", ".join(n for n, c in providers.PROVIDERS.items() if hasattr(c, "prune"))
        raise UserError(f"djbake prune does not support {provider.name}", hint=f"prune works for: {done}")
    decisions = provider.prune(args.keep, args.dry_run, catalog.Catalog())
    verb = "would delete" if args.dry_run else "deleted"
    for d in decisions:
        action = verb if d.delete else "keep"
        print(f"{action:12} {d.region:16} {d.image:24} build {d.build_id or '?':22} "
              f"{'verified' if d.verified else 'unverified':10} {d.why}")
    gone = sum(d.delete for d in decisions)
    print(f"{verb} {gone} image(s), kept {len(decisions) - gone}")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "prune", cmd_prune, "delete old images and their snapshots in every region")
    p.add_argument("--provider", "-p", required=True, type=lambda v: providers.get(v).name)
    p.add_argument("--keep", type=int, default=3, help="how many of the newest builds to keep (default 3)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    spec_args(p)
