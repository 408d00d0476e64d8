"""`djbake revoke BUILD`: mark a build revoked (builder/catalog/revocation.py); on AWS also deprecate
its AMIs and update SSM (builder/clouds/aws_release.py)."""
from __future__ import annotations

from builder import providers
from builder.catalog import revocation
from builder.catalog import store as catalog
from builder.clouds import aws_release


def _replacements(cat, image: str, regions: set[str]) -> dict[str, str | None]:
    """Per region, the newest unrevoked verified AMI left (what /djbake/<image>/latest moves to)."""
    out = {}
    for region in regions:
        found = cat.query(provider="aws", image=image, region=region, verified=True)
        out[region] = found[0].artifact if found else None
    return out


def cmd_revoke(args) -> int:
    cat = catalog.Catalog()
    revoked, pointing = revocation.revoke(cat, args.image_name, args.build, args.reason, args.provider)
    if not revoked:
        print(f"build {args.build} was already revoked")
    for e in revoked:
        print(f"revoked {e.build_id} {e.provider} {e.region} {e.artifact}")
    aws = [e for e in revoked if e.provider == "aws"]
    if aws:
        aws_pointing = [a for a in pointing if a["provider"] == "aws"]
        image = aws[0].image
        for note in aws_release.revoke(image, aws, aws_pointing, _replacements(cat, image, {e.region for e in aws}),
                                       args.reason):
            print(f"  {note}")
    for a in pointing:
        print(f"channel {a['channel']} ({a['provider']}) points at this build and now refuses it; roll back: "
              f"djbake channel rollback {a['channel']} {a['image']} --provider {a['provider']}")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "revoke", cmd_revoke, "mark a build revoked: latest, launch and channels refuse it")
    p.add_argument("build", metavar="BUILD", help="build id or version")
    p.add_argument("--name", dest="image_name", help="image name (needed only when BUILD is ambiguous)")
    p.add_argument("--reason", help="why (kept in the catalog, shown by images --show)")
    p.add_argument("--provider", "-p", type=lambda v: providers.get(v).name, help="only this provider")
