"""Versioned schema of the catalog: numbered migrations, the same list for SQLite and PostgreSQL.

`schema_migrations` records which numbers a catalog has. Opening a catalog
applies the missing ones in order, inside one write transaction (so two
runners opening a new database at once migrate it once), and refuses a
catalog whose schema is newer than this djbake. A SQLite catalog made
before migrations existed already has the `images` table of migration 1:
`IF NOT EXISTS` adopts it. Add a migration by appending to MIGRATIONS;
never edit one that has shipped.
"""
from __future__ import annotations

import sqlite3
import time

from builder.catalog.backend import Db
from builder.errors import UserError


def _types(db: Db) -> dict[str, str]:
    if db.kind == "postgresql":
        return {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION"}
    return {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"}


def _images(db: Db) -> None:
    t = _types(db)
    db.execute(f"""
CREATE TABLE IF NOT EXISTS images (
    id {t['id']},
    build_id TEXT NOT NULL,
    image TEXT NOT NULL,
    version TEXT NOT NULL,
    provider TEXT NOT NULL,
    region TEXT NOT NULL,
    artifact TEXT NOT NULL,
    sha256 TEXT,
    git_commit TEXT,
    spec_hash TEXT,
    os TEXT,
    tools TEXT NOT NULL DEFAULT '{{}}',
    timings TEXT NOT NULL DEFAULT '{{}}',
    verified INTEGER NOT NULL DEFAULT 0,
    verification TEXT NOT NULL DEFAULT '{{}}',
    state TEXT NOT NULL DEFAULT 'available',
    extra TEXT NOT NULL DEFAULT '{{}}',
    created_at {t['real']} NOT NULL
)""")
    db.execute("CREATE INDEX IF NOT EXISTS images_select ON images (provider, image, region, verified, created_at)")


def _unique_key(db: Db) -> None:
    """One entry per (build, provider, region): concurrent merges and migrations store it once."""
    try:
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS images_key ON images (build_id, provider, region)")
    except sqlite3.IntegrityError:
        # A SQLite catalog with duplicates from an older djbake: they stay (djbake never deletes
        # records), and merges still store each key once because writers are serialised.
        pass


def _revocation_and_provenance(db: Db) -> None:
    for column in ("revoked_at", "revoked_by", "revoke_reason", "built_by"):
        kind = _types(db)["real"] if column == "revoked_at" else "TEXT"
        db.execute(f"ALTER TABLE images ADD COLUMN {column} {kind}")


def _channels(db: Db) -> None:
    t = _types(db)
    db.execute(f"""
CREATE TABLE channels (
    image TEXT NOT NULL,
    provider TEXT NOT NULL,
    channel TEXT NOT NULL,
    build_id TEXT NOT NULL,
    set_at {t['real']} NOT NULL,
    set_by TEXT NOT NULL,
    PRIMARY KEY (image, provider, channel)
)""")
    db.execute(f"""
CREATE TABLE channel_history (
    id {t['id']},
    image TEXT NOT NULL,
    provider TEXT NOT NULL,
    channel TEXT NOT NULL,
    action TEXT NOT NULL,
    from_build TEXT,
    to_build TEXT NOT NULL,
    changed_at {t['real']} NOT NULL,
    changed_by TEXT NOT NULL
)""")
    db.execute("CREATE INDEX channel_history_key ON channel_history (image, provider, channel, id)")


def _sboms(db: Db) -> None:
    """Bills of materials, content-addressed: an entry's extra["sbom"]["sha256"] names its document, and
    the regions of one build (or identical documents) share one row."""
    db.execute(f"CREATE TABLE sboms (sha256 TEXT PRIMARY KEY, document TEXT NOT NULL, "
               f"created_at {_types(db)['real']} NOT NULL)")


MIGRATIONS = [
    (1, "images table", _images),
    (2, "unique (build_id, provider, region)", _unique_key),
    (3, "revocation and provenance columns", _revocation_and_provenance),
    (4, "channels and their history", _channels),
    (5, "software bills of materials", _sboms),
]
LATEST = MIGRATIONS[-1][0]


def version(db: Db) -> int:
    if not db.has_table("schema_migrations"):
        return 0
    row = db.execute("SELECT MAX(version) AS v FROM schema_migrations").fetchone()
    return row["v"] or 0


def _check_not_newer(have: int, where: str) -> None:
    if have > LATEST:
        raise UserError(f"catalog {where} has schema version {have}, newer than this djbake knows ({LATEST})",
                        hint="upgrade djbake on this machine")


def apply(db: Db, where: str) -> list[int]:
    """Bring the schema up to LATEST; returns the numbers applied now (none when already current)."""
    have = version(db)  # the common case, without the write lock: readers never wait for it
    _check_not_newer(have, where)
    if have == LATEST:
        return []
    applied = []
    with db.write():
        db.execute(f"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                   f"name TEXT NOT NULL, applied_at {_types(db)['real']} NOT NULL)")
        done = {r["version"] for r in db.execute("SELECT version FROM schema_migrations").fetchall()}
        _check_not_newer(max(done, default=0), where)
        for number, name, step in MIGRATIONS:
            if number in done:
                continue
            step(db)
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                       (number, name, time.time()))
            applied.append(number)
    return applied
