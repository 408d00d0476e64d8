"""Release channels: named pointers (dev, production, ...) at one verified build of an image, per provider.

`djbake channel set` points a channel at a build, `latest --channel` and
`launch --channel` resolve it, `channel rollback` restores the assignment
before. Every change is a row of `channel_history` (who, when, which
action, from which build to which), written in the same transaction as the
pointer, so the history and the pointer never disagree and two runners
setting a channel at once leave both changes in the history, in order.
A channel never points at an unverified or revoked build: `set` refuses
one, and a channel whose build was revoked later resolves to an error
that names the rollback.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from builder.catalog import who
from builder.catalog.import_check import printable
from builder.catalog.store import Catalog, Entry
from builder.errors import UserError
from builder.spec.model import NAME_RE

CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_IMAGE_RE = re.compile(NAME_RE)


@dataclass
class Change:
    """One channel of one provider moved: from (None when new) -> to."""
    image: str
    provider: str
    channel: str
    from_build: str | None
    to_build: str


def check_names(channel: str, image: str | None = None) -> None:
    if not CHANNEL_RE.fullmatch(channel):
        raise UserError(f"channel {printable(channel)!r}: use lower-case letters, digits, - and _ "
                        "(starting with a letter, at most 63)")
    if image is not None and not _IMAGE_RE.fullmatch(image):
        raise UserError(f"image name {printable(image)!r} is not a valid image name")


def build_entries(cat: Catalog, image: str | None, ref: str, provider: str | None = None) -> list[Entry]:
    """Every entry of one build of `image` (None: whichever image has it), named by its build id or its
    version (the newest such build)."""
    entries = [e for e in cat.query(image=image, provider=provider, state=None) if ref in (e.build_id, e.version)]
    of = f" of {image}" if image else ""
    if not entries:
        where = f" for {provider}" if provider else ""
        raise UserError(f"no build {printable(ref)!r}{of}{where} in the catalog {cat.where}",
                        hint=f"`djbake images{' --name ' + image if image else ''}` lists the builds")
    images = sorted({e.image for e in entries})
    if len(images) > 1:
        raise UserError(f"{printable(ref)!r} names builds of several images ({', '.join(images)})",
                        hint="name the image with --name")
    build_id = entries[0].build_id  # newest first: a version built twice means its newest build
    return [e for e in entries if e.build_id == build_id]


def _refuse_revoked(entries: list[Entry]) -> None:
    for e in entries:
        if e.revoked_at is not None:
            why = f" ({printable(e.revoke_reason)})" if e.revoke_reason else ""
            raise UserError(f"build {e.build_id} of {e.image} is revoked{why}",
                            hint="pick another build: `djbake images --name " + e.image + "`")


def set_channel(cat: Catalog, channel: str, image: str, ref: str, provider: str | None = None) -> list[Change]:
    """Point `channel` of `image` at a verified build, for `provider` or every provider the build is verified on."""
    check_names(channel, image)
    entries = build_entries(cat, image, ref, provider)
    _refuse_revoked(entries)
    usable = {e.provider for e in entries if e.verified and e.state == "available"}
    unverified = sorted({e.provider for e in entries} - usable)
    if not usable or (provider and unverified):
        raise UserError(f"build {entries[0].build_id} of {image} is not verified"
                        f"{' on ' + ', '.join(unverified) if unverified else ''}; a channel only points at "
                        f"verified builds", hint=f"`djbake verify --provider {unverified[0] if unverified else ''}`"
                                                 " or pick a verified build")
    return _move(cat, channel, image, sorted(usable), entries[0].build_id, "set")


def _move(cat: Catalog, channel: str, image: str, providers: list[str], build_id: str | dict,
          action: str) -> list[Change]:
    """Set the pointer and append the history row, one transaction for all providers."""
    changes = []
    actor, now = who.who(), time.time()
    with cat.write() as db:
        for provider in providers:
            target = build_id[provider] if isinstance(build_id, dict) else build_id
            row = db.execute("SELECT build_id FROM channels WHERE image = ? AND provider = ? AND channel = ?",
                             (image, provider, channel)).fetchone()
            before = row["build_id"] if row else None
            if before == target:
                continue
            db.execute("INSERT INTO channels (image, provider, channel, build_id, set_at, set_by) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (image, provider, channel) DO UPDATE SET "
                       "build_id = excluded.build_id, set_at = excluded.set_at, set_by = excluded.set_by",
                       (image, provider, channel, target, now, actor))
            db.execute("INSERT INTO channel_history (image, provider, channel, action, from_build, to_build, "
                       "changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (image, provider, channel, action, before, target, now, actor))
            changes.append(Change(image, provider, channel, before, target))
    return changes


def assignments(cat: Catalog, image: str | None = None, provider: str | None = None,
                channel: str | None = None) -> list[dict]:
    where, args = [], []
    for col, val in (("image", image), ("provider", provider), ("channel", channel)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    sql = "SELECT * FROM channels" + (" WHERE " + " AND ".join(where) if where else "")
    with cat.connect() as db:
        return db.execute(sql + " ORDER BY image, channel, provider", args).fetchall()


def history(cat: Catalog, channel: str, image: str, provider: str | None = None) -> list[dict]:
    check_names(channel, image)
    sql = "SELECT * FROM channel_history WHERE image = ? AND channel = ?"
    args = [image, channel]
    if provider:
        sql += " AND provider = ?"
        args.append(provider)
    with cat.connect() as db:
        return db.execute(sql + " ORDER BY id DESC", args).fetchall()


def _previous(rows: list[dict], current: str, revoked: set[str]) -> str | None:
    """The assignment before the current one: newest `to` first, skipping builds already rolled back from
    (so rollback twice walks two steps back) and revoked ones."""
    popped = {r["from_build"] for r in rows if r["action"] == "rollback"}
    for r in rows:
        if r["action"] == "set" and r["to_build"] != current and r["to_build"] not in popped | revoked:
            return r["to_build"]
    return None


def rollback(cat: Catalog, channel: str, image: str, provider: str | None = None) -> list[Change]:
    check_names(channel, image)
    current = {a["provider"]: a["build_id"] for a in assignments(cat, image, provider, channel)}
    if not current:
        raise UserError(f"channel {channel} of {image}{' for ' + provider if provider else ''} is not set",
                        hint=f"djbake channel set {channel} {image} BUILD")
    revoked = {e.build_id for e in cat.query(image=image, state=None, revoked=True)}
    targets = {}
    for prov, build in sorted(current.items()):
        rows = [r for r in history(cat, channel, image, prov)]
        previous = _previous(rows, build, revoked)
        if previous is None:
            raise UserError(f"channel {channel} of {image} ({prov}) has no earlier, unrevoked build to roll back to",
                            hint=f"set one: djbake channel set {channel} {image} BUILD --provider {prov}")
        targets[prov] = previous
    return _move(cat, channel, image, sorted(targets), targets, "rollback")


def resolve(cat: Catalog, channel: str, provider: str, image: str | None = None,
            region: str | None = None) -> list[Entry]:
    """The entries (newest first, one per region) a channel selects now; UserError if it cannot select."""
    check_names(channel, image)
    found = assignments(cat, image, provider, channel)
    if not found:
        raise UserError(f"channel {channel} is not set for {provider}{' ' + image if image else ''}",
                        hint=f"djbake channel set {channel} {image or 'IMAGE'} BUILD --provider {provider}")
    if len(found) > 1:
        raise UserError(f"channel {channel} is set for several {provider} images "
                        f"({', '.join(a['image'] for a in found)})", hint="name one with --name / --image-name")
    a = found[0]
    entries = cat.query(provider=provider, image=a["image"], region=region, build_id=a["build_id"],
                        state=None, revoked=None)
    rollback_hint = f"djbake channel rollback {channel} {a['image']} --provider {provider}"
    revoked = [e for e in entries if e.revoked_at is not None]
    if revoked:
        why = f" ({printable(revoked[0].revoke_reason)})" if revoked[0].revoke_reason else ""
        raise UserError(f"channel {channel} of {a['image']} ({provider}) points at build {a['build_id']}, "
                        f"which is revoked{why}", hint=f"roll back: {rollback_hint}")
    usable = [e for e in entries if e.verified and e.state == "available"]
    if not usable:
        where = f" in {region}" if region else ""
        raise UserError(f"channel {channel} of {a['image']} ({provider}) points at build {a['build_id']}, "
                        f"which has no verified, available image{where}", hint=f"roll back: {rollback_hint}")
    return usable
