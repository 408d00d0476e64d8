"""`djbake verify`: run the fresh-boot verification again on a catalogued image."""
from __future__ import annotations

import json

from builder import providers
from builder import spec as spec_mod
from builder.bake import render
from builder.catalog import store as catalog
from builder.commands.args import spec_path
from builder.errors import BuildFailed, UserError
from builder.providers.base import BuildContext


def cmd_verify(args) -> int:
    cat = catalog.Catalog()
    provider_name = providers.get(args.provider).name
    if args.id:
        entry = cat.get(args.id)
        if entry is None:
            raise UserError(f"no image with id {args.id} in {cat.where}")
    else:
        found = cat.query(provider=provider_name)
        entry = found[0] if found else None
        if entry is None:
            raise UserError(f"no {provider_name} image in the catalog", hint=f"make image PROVIDER={provider_name}")
    spec = spec_mod.load(spec_path(args))
    if spec.name != entry.image:
        raise UserError(f"catalog entry {entry.id} is image {entry.image}, the spec is {spec.name}",
                        hint=f"--image {entry.image}")
    provider = providers.get(entry.provider)(spec)
    provenance = {"build_id": entry.build_id, "image_version": entry.version,
                  "git_commit": entry.git_commit or "", "spec_hash": entry.spec_hash or ""}
    ctx = BuildContext(render.out_dir(spec, entry.provider), provenance)
    result = provider.verify([(entry.region, entry.artifact)], ctx)
    gate_passed = entry.extra.get("gate") == "passed"
    cat.update(entry.id, verified=result.passed and gate_passed, verification=result.as_dict())
    print(json.dumps(result.as_dict(), indent=2))
    if not result.passed:
        raise BuildFailed(f"image {entry.id}: {result.summary}")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "verify", cmd_verify, "boot a catalogued image fresh and test it again; updates the catalog")
    spec_args(p)
    p.add_argument("--provider", "-p", default="qemu", help="provider (default: qemu)")
    p.add_argument("--id", type=int, help="catalog id (default: the provider's newest image)")
