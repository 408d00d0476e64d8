"""The record of every build, so djbake can say which image to select.

SQLite under build/ by default (no set-up); DJBAKE_CATALOG or djbake.toml's
`catalog` (builder/config_file.py) points elsewhere, a file or a
postgresql:// URL (builder/catalog/backend.py). The schema is
versioned (builder/catalog/migrations.py). Each write is one transaction, so
two builds at once both land whole.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder import config_file
from builder.catalog import backend, migrations
from builder.catalog import guard as catalog_guard

JSON_FIELDS = ("tools", "timings", "verification", "extra")


@dataclass
class Entry:
    build_id: str
    image: str
    version: str
    provider: str
    region: str
    artifact: str
    sha256: str | None = None
    git_commit: str | None = None
    spec_hash: str | None = None
    os: str | None = None
    tools: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    verified: bool = False
    verification: dict = field(default_factory=dict)
    state: str = "available"
    extra: dict = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    built_by: str | None = None
    id: int | None = None

    @property
    def sbom_sha256(self) -> str | None:
        """The sha256 naming this build's bill of materials in the catalog (extra["sbom"]), if it has one."""
        found = (self.extra.get("sbom") or {}).get("sha256") if isinstance(self.extra, dict) else None
        return found if isinstance(found, str) else None


class Catalog:
    def __init__(self, path: Path | str | None = None):
        self.location = backend.locate(path if path is not None else config_file.catalog_location())
        self.where = str(self.location)  # for messages: a URL's password is never in it
        self.path = self.location.path   # the SQLite file; None for PostgreSQL
        if self.path is not None:
            catalog_guard.check_path(self.path)  # a directory, /dev/null, a FIFO: one line, not a hang
            with catalog_guard.guard(self.location):
                self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            if db.kind == "sqlite":
                _use_wal(db.conn)
            migrations.apply(db, self.where)

    @contextmanager
    def connect(self):
        wait = catalog_guard.wait_seconds()  # bounded: a locked catalog is one line after it
        with catalog_guard.guard(self.location):
            if self.path is not None:
                db = backend.open_sqlite(self.path, wait)
            else:
                db = backend.open_postgresql(self.location.target, wait)
            try:
                yield db
            finally:
                db.conn.close()

    @contextmanager
    def write(self):
        """One write transaction, writers serialised (builder/catalog/backend.py)."""
        with self.connect() as db, db.write():
            yield db

    def add(self, entries: list[Entry]) -> list[int]:
        """Record all entries of one build in one transaction: all or none."""
        with self.write() as db:
            return [insert(db, e) for e in entries]

    def add_sbom(self, document: str) -> str:
        """Store a bill of materials (builder/bake/sbom.py) once; returns the sha256 that names it."""
        sha = hashlib.sha256(document.encode()).hexdigest()
        with self.write() as db:
            db.execute("INSERT INTO sboms (sha256, document, created_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (sha256) DO NOTHING", (sha, document, time.time()))
        return sha

    def sbom(self, sha: str) -> str | None:
        with self.connect() as db:
            row = db.execute("SELECT document FROM sboms WHERE sha256 = ?", (sha,)).fetchone()
        return row["document"] if row else None

    def update(self, entry_id: int, **changes) -> None:
        for key in JSON_FIELDS:
            if key in changes:
                changes[key] = json.dumps(changes[key], sort_keys=True)
        if "verified" in changes:
            changes["verified"] = int(changes["verified"])
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.write() as db:
            db.execute(f"UPDATE images SET {sets} WHERE id = ?", [*changes.values(), entry_id])

    def query(self, provider: str | None = None, image: str | None = None, region: str | None = None,
              verified: bool | None = None, state: str | None = "available", build_id: str | None = None,
              revoked: bool | None = None) -> list[Entry]:
        """Entries, newest first. verified=True asks for images to select: revoked ones are left out
        unless revoked= says otherwise."""
        where, args = [], []
        if revoked is None and verified:
            revoked = False
        if revoked is not None:
            where.append("revoked_at IS NOT NULL" if revoked else "revoked_at IS NULL")
        for col, val in (("provider", provider), ("image", image), ("region", region), ("state", state),
                         ("build_id", build_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if verified is not None:
            where.append("verified = ?")
            args.append(int(verified))
        sql = "SELECT * FROM images" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, id DESC"
        with self.connect() as db:
            return [_entry(r) for r in db.execute(sql, args).fetchall()]

    def get(self, entry_id: int) -> Entry | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM images WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def latest(self, provider: str, image: str | None = None, region: str | None = None) -> Entry | None:
        found = self.query(provider=provider, image=image, region=region, verified=True)
        return found[0] if found else None


def _use_wal(db: sqlite3.Connection) -> None:
    """Write-ahead log: readers (`djbake latest`) never wait for a build being recorded, and
    a writer killed mid-transaction leaves only uncommitted frames, ignored on the next open.

    The mode is stored in the file, so this matters once per catalog. Switching needs a moment
    alone with the file, which another process opening it at the same time may hold: retry.
    Where WAL is unsupported (some network filesystems) SQLite keeps its rollback journal,
    which is just as atomic.
    """
    deadline = time.monotonic() + catalog_guard.wait_seconds()  # the stated bound, not 100 busy waits
    for attempt in range(100):
        if attempt and time.monotonic() > deadline:
            break
        try:
            db.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            time.sleep(0.01 * (1 + attempt % 10))
    raise sqlite3.OperationalError("cannot switch the catalog to WAL mode: it stays locked")


def row_of(e: Entry) -> dict:
    """An entry as the columns it is stored in (JSON fields as text, verified as 0/1)."""
    row = asdict(e)
    row.pop("id")
    for key in JSON_FIELDS:
        row[key] = json.dumps(row[key], sort_keys=True)
    row["verified"] = int(row["verified"])
    return row


def insert(db: backend.Db, e: Entry) -> int:
    row = row_of(e)
    marks = ", ".join("?" for _ in row)
    return db.execute(f"INSERT INTO images ({', '.join(row)}) VALUES ({marks}) RETURNING id",
                      list(row.values())).fetchone()["id"]


def _entry(row: dict) -> Entry:
    data = dict(row)
    for key in JSON_FIELDS:
        data[key] = json.loads(data[key] or "{}")
    data["verified"] = bool(data["verified"])
    return Entry(**data)
