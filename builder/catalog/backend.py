"""Where the catalog lives and how djbake talks to it: a SQLite file or a PostgreSQL database.

SQLite is the embedded default (build/catalog.sqlite, or the file DJBAKE_CATALOG
names). DJBAKE_CATALOG=postgresql://user@host:port/db selects PostgreSQL
(psycopg 3), shared by every runner of a team. Both are driven through `Db`,
the same small surface: `?` placeholders, rows as dicts, `write()` as one
transaction that serialises writers (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
transaction-scoped advisory lock, released by the server however the client
ends, even on SIGKILL). Readers never take that lock.

A connection string can hold a password: only `Location.__str__` (redacted)
is ever printed; the raw URL goes to libpq and nowhere else.
"""
from __future__ import annotations

import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

SCHEMES = ("postgresql", "postgres")
WRITE_LOCK = 0x646A6261  # "djba": the advisory lock every writer of a PostgreSQL catalog takes
_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def is_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.split(":", 1)[0].lower() in SCHEMES and "://" in value


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, _PASSWORD_PARAM.sub(r"\1***", parts.query), ""))


def scrub(text: str, url: str) -> str:
    """An error text with the URL's password (if any) removed, wherever a driver might echo it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return _PASSWORD_PARAM.sub(r"\1***", text)


def secrets() -> list[str]:
    """The catalog's password(s) in this environment, for the build log's secret filter."""
    values = [os.environ.get("PGPASSWORD", "")]
    url = os.environ.get("DJBAKE_CATALOG", "")
    if is_url(url):
        try:
            values.append(urlsplit(url).password or "")
        except ValueError:
            pass
    return [v for v in values if v]


@dataclass(frozen=True)
class Location:
    kind: str            # "sqlite" | "postgresql"
    target: str          # the file path, or the URL (secret-bearing: never print it)

    @property
    def path(self) -> Path | None:
        return Path(self.target) if self.kind == "sqlite" else None

    def __str__(self) -> str:
        return self.target if self.kind == "sqlite" else redact(self.target)


def locate(value: str | Path) -> Location:
    if is_url(value):
        return Location("postgresql", str(value))
    return Location("sqlite", str(value))


def _dict_factory(cursor, row) -> dict:
    return {d[0]: v for d, v in zip(cursor.description, row)}


class Db:
    """One open connection; SQL is written once with `?` placeholders and portable types."""

    def __init__(self, kind: str, conn):
        self.kind, self.conn = kind, conn

    def execute(self, sql: str, args=()):
        if self.kind == "postgresql":
            if not args:  # no parameters: psycopg leaves the text alone
                return self.conn.execute(sql)
            return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), list(args))
        return self.conn.execute(sql, list(args))

    def has_table(self, name: str) -> bool:
        if self.kind == "postgresql":
            return self.execute("SELECT to_regclass(?) AS t", (name,)).fetchone()["t"] is not None
        return self.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (name,)).fetchone() is not None

    @contextmanager
    def write(self):
        """One transaction, writers one at a time: all of it lands or none of it."""
        if self.kind == "postgresql":
            self.execute("BEGIN")
            try:
                self.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
            except BaseException:
                self._rollback()
                raise
        else:
            self.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except (sqlite3.Error, psycopg.Error):
            pass  # the connection is gone (the server rolled back for us) or nothing was open


def open_sqlite(path: Path, wait: float) -> Db:
    conn = sqlite3.connect(path, timeout=wait, isolation_level=None)
    conn.row_factory = _dict_factory
    conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
    return Db("sqlite", conn)


def open_postgresql(url: str, wait: float) -> Db:
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=max(2, int(wait) or 2))
    # A writer waits for another one's lock at most `wait` seconds, then says so (builder/catalog/guard.py).
    conn.execute(f"SET lock_timeout = '{int(wait * 1000)}ms'" if wait else "SET lock_timeout = '1ms'")
    return Db("postgresql", conn)
