"""`djbake catalog migrate --to URL`: copy a whole catalog (a laptop's SQLite file) into another one
(the team's PostgreSQL database), entries, channels, channel history and bills of materials.

The source is read whole and checked before anything is written: entries go
through the export checks (builder/catalog/import_check.py: types, ranges,
control characters) and the same forward-only merge, channel rows through
the same name and text checks. Copying again, or into a catalog that has
some of it already, stores each entry, channel and history row once.
"""
from __future__ import annotations

import re

from builder import providers
from builder.catalog import channels, import_check
from builder.catalog.store import Catalog
from builder.catalog.sync import export_entries
from builder.errors import UserError

_BUILD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
HISTORY_COLUMNS = ("image", "provider", "channel", "action", "from_build", "to_build", "changed_at", "changed_by")


def _check_channel_row(row: dict, kind: str, i: int, where: str) -> None:
    try:
        channels.check_names(row["channel"], row["image"])
        if row["provider"] not in providers.PROVIDERS:
            raise import_check.BadEntry(f"unknown provider {import_check.printable(row['provider'])!r}")
        for key in ("build_id", "to_build", "from_build"):
            if row.get(key) is not None and not _BUILD.fullmatch(str(row[key])):
                raise import_check.BadEntry(f"{key} is not a build id")
        for key in ("set_by", "changed_by"):
            if key in row and import_check.printable(row[key]) != row[key]:
                raise import_check.BadEntry(f"{key} holds control characters")
        for key in ("set_at", "changed_at"):
            if key in row:
                import_check.timestamp(row[key], key)
        if kind == "history" and row["action"] not in ("set", "rollback"):
            raise import_check.BadEntry("action must be set or rollback")
    except (import_check.BadEntry, UserError) as e:
        raise UserError(f"catalog {where}: {kind} row {i}: {e}", hint="fix or remove that row, then migrate again") \
            from None


def copy(src: Catalog, dst: Catalog) -> dict[str, int]:
    rows = export_entries(src.query(state=None))["entries"]
    entries = []
    for i, row in enumerate(rows):
        try:
            entries.append(import_check.parse_entry(row))
        except import_check.BadEntry as e:
            raise UserError(f"catalog {src.where}: entry {i} (build {import_check.printable(row['build_id'])}): {e}",
                            hint="fix or remove that entry, then migrate again") from None
    with src.connect() as db:
        chans = db.execute("SELECT * FROM channels ORDER BY image, provider, channel").fetchall()
        hist = db.execute("SELECT * FROM channel_history ORDER BY id").fetchall()
        documents = db.execute("SELECT sha256, document FROM sboms ORDER BY sha256").fetchall()
    for row in documents:
        try:
            import_check.check_sbom(row["sha256"], row["document"])
        except import_check.BadEntry as e:
            raise UserError(f"catalog {src.where}: {e}", hint="remove that row, then migrate again") from None
    for i, row in enumerate(chans):
        _check_channel_row(row, "channel", i, src.where)
    for i, row in enumerate(hist):
        _check_channel_row(row, "history", i, src.where)
    for row in documents:   # before the entries that name them
        dst.add_sbom(row["document"])
    counts = import_check.merge(dst, entries)
    counts.update(channels=0, history=0, sboms=len(documents))
    with dst.write() as db:
        for c in chans:
            cur = db.execute("INSERT INTO channels (image, provider, channel, build_id, set_at, set_by) "
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (image, provider, channel) DO NOTHING "
                             "RETURNING image", [c[k] for k in ("image", "provider", "channel", "build_id",
                                                                 "set_at", "set_by")])
            counts["channels"] += cur.fetchone() is not None
        for h in hist:
            values = [h[k] for k in HISTORY_COLUMNS]
            same = " AND ".join(f"{k} IS NOT DISTINCT FROM ?" for k in HISTORY_COLUMNS)
            if db.execute(f"SELECT 1 AS x FROM channel_history WHERE {same}", values).fetchone() is None:
                db.execute(f"INSERT INTO channel_history ({', '.join(HISTORY_COLUMNS)}) "
                           f"VALUES ({', '.join('?' for _ in values)})", values)
                counts["history"] += 1
    return counts


def channel_export(cat: Catalog, channel: str, image: str, provider: str | None = None) -> dict[str, str]:
    """What a channel selects, as the flat string map Terraform's `external` data source reads:
    "<provider>/<region>" -> artifact, "<provider>/build_id" -> build."""
    out: dict[str, str] = {}
    found = channels.assignments(cat, image, provider, channel)
    if not found:
        raise UserError(f"channel {channel} of {image} is not set", hint=f"djbake channel set {channel} {image} BUILD")
    for a in found:
        for e in channels.resolve(cat, channel, a["provider"], image):
            out.setdefault(f"{e.provider}/{e.region}", e.artifact)
        out[f"{a['provider']}/build_id"] = a["build_id"]
    return out
