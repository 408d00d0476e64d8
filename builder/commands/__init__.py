"""Subcommands beyond render/validate. Each module exports `register(sub, add, spec_args)`.

One module per command keeps the CLI small and lets each pipeline step own
its own arguments.
"""
from __future__ import annotations

import importlib

MODULES: tuple[str, ...] = ("doctor", "catalog", "regions", "docs", "prune", "image", "verify", "launch", "gate", "scan", "bench")

REGISTER = [importlib.import_module(f"builder.commands.{m}").register for m in MODULES]
