"""A catalog that cannot be used is one line saying what to do, never a traceback or an endless wait.

The catalog is SQLite or PostgreSQL (builder/catalog/backend.py). DJBAKE_CATALOG may
point at anything: a directory, /dev/null, a text file, a truncated copy, a
database server that is down or refuses the user. A message names the catalog
by its redacted form: a connection string's password never appears. A catalog
another djbake holds (a build recording, a merge) is waited for, at most
DJBAKE_CATALOG_WAIT seconds (default 60), and the message says so.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import contextmanager
from pathlib import Path

import psycopg

from builder.catalog import backend
from builder.errors import UserError

DEFAULT_WAIT = 60.0


def wait_seconds() -> float:
    raw = os.environ.get("DJBAKE_CATALOG_WAIT", "")
    try:
        value = float(raw) if raw else DEFAULT_WAIT
    except ValueError:
        raise UserError(f"DJBAKE_CATALOG_WAIT={raw!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise UserError("DJBAKE_CATALOG_WAIT must be between 0 and 3600 seconds")
    return value


def check_path(path: Path) -> None:
    """Before SQLite opens it: what is there must be a regular file (or nothing, to be created)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(f"catalog {path}: {e.strerror}", hint="set DJBAKE_CATALOG to a file path") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"catalog {path} is a directory", hint="set DJBAKE_CATALOG to a file path inside it")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"catalog {path} is not a regular file (a device or FIFO)",
                        hint="set DJBAKE_CATALOG to a file path")


DUPLICATE = "an entry with this build id, provider and region is already recorded"


def explain(path: Path, error: Exception) -> UserError:
    text = str(error)
    if "UNIQUE constraint failed: images." in text:
        return UserError(f"catalog {path}: {DUPLICATE}", hint="`djbake catalog merge` updates existing entries")
    if "locked" in text or "busy" in text:
        return UserError(f"catalog {path} is locked by another djbake (waited {wait_seconds():g} s)",
                         hint="try again when that build or merge has finished (DJBAKE_CATALOG_WAIT sets the wait)")
    if "not a database" in text or "malformed" in text or "disk I/O" in text or "file is" in text:
        return UserError(f"catalog {path} is not a readable djbake catalog (corrupt, truncated or not SQLite)",
                         hint="move it aside; djbake starts a new one, and `djbake catalog merge` adds exports to it")
    if isinstance(error, OSError):
        return UserError(f"catalog {path}: {error.strerror or error}",
                         hint="check that its directory exists and is writable, or set DJBAKE_CATALOG")
    return UserError(f"catalog {path}: {text}", hint="check that its directory is writable, or set DJBAKE_CATALOG")


def explain_postgresql(location, error: Exception) -> UserError:
    text = backend.scrub(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                         location.target)
    if isinstance(error, psycopg.errors.UniqueViolation) and "images_key" in text:
        return UserError(f"catalog {location}: {DUPLICATE}", hint="`djbake catalog merge` updates existing entries")
    if isinstance(error, psycopg.errors.LockNotAvailable):
        return UserError(f"catalog {location} is locked by another djbake (waited {wait_seconds():g} s)",
                         hint="try again when that build or merge has finished (DJBAKE_CATALOG_WAIT sets the wait)")
    if isinstance(error, psycopg.OperationalError):
        return UserError(f"catalog {location}: cannot use the database ({text})",
                         hint="check DJBAKE_CATALOG's host, port, database and user; keep the password in "
                              "~/.pgpass or PGPASSWORD rather than the URL")
    if isinstance(error, psycopg.ProgrammingError) and "invalid" in text.lower():
        return UserError(f"catalog {location}: not a valid connection string ({text})",
                         hint="DJBAKE_CATALOG=postgresql://USER@HOST:PORT/DATABASE")
    return UserError(f"catalog {location}: {text}", hint="check that the database is a djbake catalog")


@contextmanager
def guard(where):
    """SQLite, PostgreSQL and file errors inside become one UserError about the catalog (`where`: a
    Path or a backend.Location)."""
    location = where if isinstance(where, backend.Location) else backend.locate(where)
    path = location.path or location
    try:
        yield
    except psycopg.Error as e:
        raise explain_postgresql(location, e) from None
    except sqlite3.Error as e:
        raise explain(path, e) from None
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        raise explain(path, e) from None
