"""`djbake schema` and `djbake check`: the spec's JSON Schema, and one spec validated."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from builder import spec
from builder.commands.args import load_spec, spec_path


def cmd_schema(args) -> int:
    text = json.dumps(spec.json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_check(args) -> int:
    s = load_spec(args)
    print(f"{spec_path(args)}: ok ({s.name}, {s.os}/{s.arch}, spec hash {s.spec_hash()})")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "schema", cmd_schema, "print the spec's JSON Schema")
    p.add_argument("-o", "--output", help="write to this file")
    p = add(sub, "check", cmd_check, "validate a spec and print its summary")
    spec_args(p)
