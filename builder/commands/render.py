"""`djbake render` and `djbake validate`: write the Packer templates; then `packer validate` them."""
from __future__ import annotations

from pathlib import Path

from builder.bake import packer, render
from builder.bake.validate_all import validate_all
from builder.commands.args import load_spec, provider_list
from builder.errors import BuildFailed, UserError
from builder.paths import ROOT


def cmd_render(args) -> int:
    s = load_spec(args)
    names = provider_list(args.provider)
    pk = None if args.no_packer else _packer_or_none()
    for r in render.render(s, names, pk, Path(args.out) if args.out else None):
        print(r.template.relative_to(ROOT) if r.template.is_relative_to(ROOT) else r.template)
    return 0


def _packer_or_none():
    try:
        return packer.find()
    except UserError:
        return None


def cmd_validate(args) -> int:
    s = load_spec(args)
    names = provider_list(args.provider)
    pk = packer.find()
    failed = 0
    rendered = render.render(s, names, pk, Path(args.out) if args.out else None)
    for name, timed in zip(names, validate_all(s, names, rendered, pk)):  # side by side, printed in order
        v = timed.validation
        status = "ok" if v.ok else "FAILED"
        print(f"{name:13} {status:7} {v.how}")
        if not v.ok:
            failed += 1
            for line in v.output.splitlines():
                print(f"    {line}")
    if failed:
        raise BuildFailed(f"{failed} template(s) failed validation")
    return 0


def register(sub, add, spec_args) -> None:
    for name, func, help_text in (
        ("render", cmd_render, "write Packer templates to build/<image>/<provider>/"),
        ("validate", cmd_validate, "render, then `packer validate` every template"),
    ):
        p = add(sub, name, func, help_text)
        spec_args(p)
        p.add_argument("--provider", "-p", help="provider(s), comma-separated, or all (default: all)")
        p.add_argument("--out", help="output base directory (default: build/)")
        if name == "render":
            p.add_argument("--no-packer", action="store_true", help="render for Packer 1.6 without looking for Packer")
