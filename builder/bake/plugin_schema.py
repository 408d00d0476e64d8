"""Configuration keys of Packer builders that this Packer lacks (linode on Debian's 1.6.6).

The key lists are copied from the plugins' documentation (data in
builder/data/plugin-keys.json); a template that uses a key the plugin does
not document, or misses a required one, is reported.
"""
from __future__ import annotations

import json
from functools import lru_cache

from builder import paths

DATA = paths.DATA / "plugin-keys.json"


@lru_cache(maxsize=None)
def _keys() -> dict:
    return json.loads(DATA.read_text())


def check(builder_type: str, source: dict) -> list[str]:
    spec = _keys().get(builder_type)
    if spec is None:
        return [f"no documented keys for builder {builder_type}"]
    known = set(spec["required"]) | set(spec["optional"])
    problems = [f"unknown key {k!r}" for k in source if k not in known]
    problems += [f"missing required key {k!r}" for k in spec["required"] if k not in source]
    problems += [f"needs one of {', '.join(group)}" for group in spec.get("one_of", [])
                 if not any(k in source for k in group)]
    return problems
