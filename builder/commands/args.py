"""What several subcommands share: which spec (--image/--spec) and which providers (-p a,b or all)."""
from __future__ import annotations

from pathlib import Path

from builder import providers, spec
from builder.errors import UserError
from builder.paths import ROOT

DEFAULT_SPEC = ROOT / "images" / "django-web.yaml"


def add_spec_args(p) -> None:
    p.add_argument("--image", help="image spec name in images/ (default: django-web)")
    p.add_argument("--spec", help="path to a spec file (instead of --image)")


def spec_path(args) -> Path:
    if getattr(args, "spec", None):
        return Path(args.spec)
    name = getattr(args, "image", None)
    if name:
        path = ROOT / "images" / f"{name}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in (ROOT / "images").glob("*.yaml")))
            raise UserError(f"no image spec images/{name}.yaml (known: {known})")
        return path
    return DEFAULT_SPEC


def load_spec(args) -> spec.Spec:
    return spec.load(spec_path(args))


def provider_list(value: str | None) -> list[str]:
    if not value or value == "all":
        return list(providers.PROVIDERS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise UserError(f"--provider {value!r} names no provider", hint="e.g. --provider qemu, or all")
    for n in names:
        providers.get(n)
    return names
