"""`djbake image`: bake, gate, verify and record an image (builder/bake/pipeline.py)."""
from __future__ import annotations

from pathlib import Path

from builder import providers
from builder.bake import multi, pipeline, progress
from builder.commands.args import load_spec
from builder.errors import BuildFailed


def cmd_image(args) -> int:
    spec = load_spec(args)
    if "," in args.provider or args.provider == "all":
        return _many(args, spec)
    name = providers.get(args.provider).name
    with progress.from_args(args) as view:
        build = view.build(name)
        outcome = pipeline.run(spec, name, build, Path(args.out) if args.out else None, verify=not args.no_verify)
    for entry in outcome.entries:
        state = "verified" if entry.verified else "NOT verified"
        print(f"{entry.provider} {entry.region}: {entry.artifact} ({state}, catalog id {entry.id})")
    if not outcome.verified and not args.no_verify:
        raise BuildFailed(f"{name}: fresh-boot verification {outcome.verification.summary}; "
                          "recorded as not verified")
    return 0


def _many(args, spec) -> int:
    """Several providers in parallel (builder/bake/multi.py), then a summary table."""
    names = multi.parse(args.provider, spec)
    with progress.from_args(args) as view:
        results = multi.run(spec, names, view, Path(args.out) if args.out else None, verify=not args.no_verify)
    print(multi.summary(results))
    bad = [r.provider for r in results if not r.ok or (not r.verified and not args.no_verify)]
    if bad:
        raise BuildFailed(f"{len(bad)} of {len(results)} builds failed or were not verified: {', '.join(bad)}")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "image", cmd_image, "bake, gate, verify and record an image for one provider")
    spec_args(p)
    p.add_argument("--provider", "-p", default="qemu", help="provider, several as a,b,c, or all (every cloud with credentials); default: qemu")
    p.add_argument("--out", help="build base directory (default: build/)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the fresh-boot verification (the image is recorded as not verified)")
    progress.add_arguments(p)
