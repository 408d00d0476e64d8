"""`djbake docs`: regenerate (or --check) the generated docs (the generator: builder/spec/reference.py)."""
from __future__ import annotations

import sys

from builder.errors import UserError
from builder.paths import ROOT
from builder.spec.reference import generated, stale


def cmd_docs(args) -> int:
    if args.check:
        old = stale()
        if old:
            raise UserError(f"generated docs are out of date: {', '.join(map(str, old))}", hint="djbake docs")
        print("generated docs are up to date")
        return 0
    for rel, text in generated().items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}", file=sys.stderr)
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "docs", cmd_docs, "regenerate docs/spec-reference.md from the spec's JSON Schema")
    p.add_argument("--check", action="store_true", help="exit 2 if the committed files differ from a fresh generation")
