"""Verification must leave the artifact as it was: hashed before the fresh boots and after them.

QEMU verifies with -snapshot and the docker verifier runs containers of a committed image, so
neither should write the artifact; this shows it for each file artifact rather than assuming it.
A changed artifact fails the verification (the catalog then records it as not verified).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from builder.digest import sha256_file
from builder.providers.base import Verification


def hashes(found: list[tuple[str, str]]) -> dict[str, str]:
    """sha256 of every artifact that is a file (cloud image ids and docker image ids are not)."""
    return {artifact: sha256_file(Path(artifact)) for _, artifact in found if Path(artifact).is_file()}


def check(verification: Verification, before: dict[str, str], found: list[tuple[str, str]]) -> Verification:
    """verification plus an artifact_unchanged check (none when no artifact is a file)."""
    if not before or verification.skipped:
        return verification
    after = hashes(found)
    changed = sorted(a for a, digest in before.items() if after.get(a) != digest)
    checks = {**verification.checks, "artifact_unchanged": {
        "ok": not changed, "before": before, "after": after,
        "detail": f"changed by verification: {', '.join(changed)}" if changed else "sha256 the same before and after"}}
    if not changed:
        return replace(verification, checks=checks)
    return replace(verification, passed=False, checks=checks,
                   summary=f"{verification.summary}; artifact changed by verification")
