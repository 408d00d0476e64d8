"""The record of every build, so djbake can say which image to select.

SQLite under build/ by default (no set-up); DJBAKE_CATALOG points elsewhere.
Each write is one transaction, so two builds at once both land whole.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder import paths
from builder.catalog import guard as catalog_guard

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    tools TEXT NOT NULL DEFAULT '{}',
    timings TEXT NOT NULL DEFAULT '{}',
    verified INTEGER NOT NULL DEFAULT 0,
    verification TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'available',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_select ON images (provider, image, region, verified, created_at);
"""

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
    id: int | None = None


class Catalog:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else paths.catalog_path()
        catalog_guard.check_path(self.path)  # a directory, /dev/null, a FIFO: one line, not a hang
        with catalog_guard.guard(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            _use_wal(db)
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self):
        wait = catalog_guard.wait_seconds()  # bounded: a locked catalog is one line after it
        with catalog_guard.guard(self.path):
            db = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
            db.row_factory = sqlite3.Row
            try:
                db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                yield db
            finally:
                db.close()

    def add(self, entries: list[Entry]) -> list[int]:
        """Record all entries of one build in one transaction: all or none."""
        ids = []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for e in entries:
                    row = asdict(e)
                    row.pop("id")
                    for key in JSON_FIELDS:
                        row[key] = json.dumps(row[key], sort_keys=True)
                    row["verified"] = int(row["verified"])
                    cols = ", ".join(row)
                    marks = ", ".join("?" for _ in row)
                    cur = db.execute(f"INSERT INTO images ({cols}) VALUES ({marks})", list(row.values()))
                    ids.append(cur.lastrowid)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return ids

    def update(self, entry_id: int, **changes) -> None:
        for key in JSON_FIELDS:
            if key in changes:
                changes[key] = json.dumps(changes[key], sort_keys=True)
        if "verified" in changes:
            changes["verified"] = int(changes["verified"])
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._connect() as db:
            db.execute(f"UPDATE images SET {sets} WHERE id = ?", [*changes.values(), entry_id])

    def query(self, provider: str | None = None, image: str | None = None, region: str | None = None,
              verified: bool | None = None, state: str | None = "available") -> list[Entry]:
        where, args = [], []
        for col, val in (("provider", provider), ("image", image), ("region", region), ("state", state)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if verified is not None:
            where.append("verified = ?")
            args.append(int(verified))
        sql = "SELECT * FROM images" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, id DESC"
        with self._connect() as db:
            return [_entry(r) for r in db.execute(sql, args)]

    def get(self, entry_id: int) -> Entry | None:
        with self._connect() as db:
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


def _entry(row: sqlite3.Row) -> Entry:
    data = dict(row)
    for key in JSON_FIELDS:
        data[key] = json.loads(data[key] or "{}")
    data["verified"] = bool(data["verified"])
    return Entry(**data)
