"""Revocation: a build that must not be used any more (a CVE, a bad config), recorded, never undone by an import.

`djbake revoke BUILD` stamps every entry of the build (revoked_at, who,
reason) in one transaction. From then on `latest` and `launch` skip it
(Catalog.query leaves revoked entries out of verified selections), `channel
set` refuses it, a channel already pointing at it resolves to an error that
names the rollback, and `prune` may delete it. The cloud side (AWS: AMI
deprecation, SSM) is builder/clouds/aws_release.py.
"""
from __future__ import annotations

import time

from builder.catalog import channels, who
from builder.catalog.import_check import MAX_TEXT, printable
from builder.catalog.store import Catalog, Entry
from builder.errors import UserError


def revoke(cat: Catalog, image: str | None, ref: str, reason: str | None,
           provider: str | None = None) -> tuple[list[Entry], list[dict]]:
    """Revoke one build; returns its entries newly revoked and the channels that point at it."""
    if image is not None:
        channels.check_names("x", image)
    if reason is not None and (len(reason) > MAX_TEXT or printable(reason) != reason):
        raise UserError(f"--reason must be one line of at most {MAX_TEXT} characters")
    entries = channels.build_entries(cat, image, ref, provider)
    build_id, image = entries[0].build_id, entries[0].image
    actor, now = who.who(), time.time()
    fresh = [e for e in entries if e.revoked_at is None]
    with cat.write() as db:
        for e in fresh:
            # `revoked_at IS NULL` again inside the transaction: a concurrent revoke keeps the first stamp.
            db.execute("UPDATE images SET revoked_at = ?, revoked_by = ?, revoke_reason = ? "
                       "WHERE id = ? AND revoked_at IS NULL", (now, actor, reason, e.id))
    pointing = [a for a in channels.assignments(cat, image, provider) if a["build_id"] == build_id]
    done = [cat.get(e.id) for e in fresh]
    return [e for e in done if e is not None], pointing
