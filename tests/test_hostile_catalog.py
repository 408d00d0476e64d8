"""Hostile catalogs and exports (issue 17, class 6, and the catalog half of class 7).

A merged export may not poison `latest`: every field typed and ranged,
control characters refused (and escaped by `images` anyway), six concurrent
merges of one export store each entry once, and `latest` moves only for a
newer, verified, well-formed entry. An unusable catalog is one line, exit 2.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time

import pytest

from builder.catalog import import_check as catalog_import
from builder.catalog import store as catalog
from builder.catalog import sync
from tests.test_cli_errors import DJBAKE, djbake, one_line_error

NOW = time.time()


def row(**kw) -> dict:
    base = {"build_id": "20261128120000-abc123", "image": "django-web", "version": "1.0.0", "provider": "qemu",
            "region": "local", "artifact": "/srv/images/django-web.qcow2", "verified": True,
            "created_at": NOW - 3600, "state": "available", "os": "debian-12"}
    return {**base, **kw}


def export(tmp_path, rows, name="export.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"format": "djbake-catalog", "version": 1, "entries": rows}))
    return str(path)


@pytest.mark.parametrize("bad, fragment", [
    ({"created_at": "zzzz"}, "created_at"),
    ({"created_at": 9e18}, "future"),
    ({"created_at": True}, "created_at"),
    ({"created_at": float("nan")}, "created_at"),
    ({"verified": "yes"}, "verified"),
    ({"verified": 1}, "verified"),
    ({"artifact": "../../etc/passwd"}, ".."),
    ({"artifact": "img\x1b[2J"}, "control"),
    ({"region": "us-east-1\nfake line"}, "region"),
    ({"provider": "bogus"}, "provider"),
    ({"image": ["x"]}, "image"),
    ({"timings": "fast"}, "timings"),
    ({"state": "hacked"}, "state"),
    ({"sha256": 5}, "sha256"),
    ({"id": "x", "surprise": 1}, "unknown field"),
])
def test_every_field_is_typed_and_ranged(tmp_path, catalog_at, bad, fragment):
    db = catalog_at()
    proc = djbake("catalog", "merge", export(tmp_path, [row(), row(build_id="20261128130000-def456", **bad)]),
                  tmp=tmp_path, DJBAKE_CATALOG=str(db))
    line = one_line_error(proc, "entry 1")
    assert fragment in line, line
    assert catalog.Catalog(db).query(state=None) == []  # nothing half-written: read all before writing any


def test_timestamps_are_normalised():
    e = catalog_import.parse_entry(row(created_at="2026-01-02T03:04:05Z"))
    assert e.created_at == 1767323045.0
    with pytest.raises(catalog_import.BadEntry, match="zone"):
        catalog_import.parse_entry(row(created_at="2026-01-02T03:04:05"))


def test_six_concurrent_merges_of_one_export_store_each_entry_once(tmp_path, catalog_at):
    rows = [row(build_id=f"20261128{i:06d}-abc123", region=f"r{i % 3}", created_at=NOW - 10000 + i)
            for i in range(300)]
    path = export(tmp_path, rows)
    db = catalog_at()
    catalog.Catalog(db)  # exists (WAL) before the race, as in CI's merge job
    env = {"DJBAKE_CATALOG": str(db)}

    procs = [subprocess.Popen([DJBAKE, "catalog", "merge", path], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    added = sum(int(out.split(": ")[1].split(" added")[0]) for out, _ in results)
    assert added == 300, results
    with catalog.Catalog(db).connect() as c:
        assert c.execute("SELECT COUNT(*) AS n FROM images").fetchone()["n"] == 300
        assert c.execute("SELECT COUNT(DISTINCT build_id || provider || region) AS n FROM images"
                         ).fetchone()["n"] == 300


def test_latest_moves_only_for_a_newer_verified_well_formed_entry(catalog_at):
    cat = catalog.Catalog(catalog_at())
    current = row(build_id="20261128120000-aaaaaa", created_at=NOW - 60)
    sync.merge(cat, [catalog_import.parse_entry(current)])
    assert cat.latest("qemu").build_id == "20261128120000-aaaaaa"
    # Older, or unverified, or trying to unverify the current one: latest stays.
    older = row(build_id="20261101000000-bbbbbb", created_at=NOW - 86400)
    unverified = row(build_id="20261128130000-cccccc", created_at=NOW - 30, verified=False)
    unverify = dict(current, verified=False)
    sync.merge(cat, [catalog_import.parse_entry(r) for r in (older, unverified, unverify)])
    assert cat.latest("qemu").build_id == "20261128120000-aaaaaa"
    # A text timestamp cannot sort above every number any more: it is refused before the merge.
    with pytest.raises(catalog_import.BadEntry):
        catalog_import.parse_entry(row(build_id="20261128140000-dddddd", created_at="~~~~"))
    newer = row(build_id="20261128150000-eeeeee", created_at=NOW - 10)
    sync.merge(cat, [catalog_import.parse_entry(newer)])
    assert cat.latest("qemu").build_id == "20261128150000-eeeeee"


def test_images_escapes_control_characters_already_in_a_catalog(tmp_path, catalog_at):
    db = catalog_at()
    cat = catalog.Catalog(db)
    cat.add([catalog.Entry("b1", "django-web", "1", "qemu", "local\x1b[31m", "art\nfake 99 line")])
    proc = djbake("images", tmp=tmp_path, DJBAKE_CATALOG=str(db))
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\\x1b[31m" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 2  # header and one row


def _locked(db):
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.mark.parametrize("kind, fragment", [
    ("directory", "is a directory"), ("text", "not a readable djbake catalog"),
    ("truncated", "not a readable djbake catalog"), ("devnull", "not a regular file"),
    ("locked", "locked by another djbake (waited 1 s)"),
])
def test_unusable_catalog_is_one_line_exit_2(tmp_path, kind, fragment):
    db = tmp_path / "c.sqlite"
    holder = None
    if kind == "directory":
        db.mkdir()
    elif kind == "text":
        db.write_text("not sqlite at all\n" * 100)
    elif kind == "truncated":
        catalog.Catalog(db).add([catalog.Entry("b1", "django-web", "1", "qemu", "local", "a")])
        with sqlite3.connect(db) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.write_bytes(db.read_bytes()[:1500])
    elif kind == "devnull":
        db = "/dev/null"
    elif kind == "locked":
        catalog.Catalog(db)
        with sqlite3.connect(db) as c:
            c.execute("PRAGMA journal_mode = DELETE")  # an exclusive lock then blocks readers too
        holder = _locked(db)
    try:
        for command in (["images"], ["latest", "--provider", "qemu"]):
            proc = djbake(*command, tmp=tmp_path, DJBAKE_CATALOG=str(db), DJBAKE_CATALOG_WAIT="1")
            one_line_error(proc, fragment)
    finally:
        if holder is not None:
            holder.close()


def test_unusable_postgresql_catalog_is_one_line_without_the_password(tmp_path, pg_cluster):
    """Wrong password, no such database, nothing listening, a garbled URL: one line each, exit 2, and the
    connection string's password is in no output."""
    from tests.pg_cluster import PASSWORD

    name = pg_cluster.new_database()
    closed = pg_cluster.tcp_url(name).replace(f":{pg_cluster.port}/", ":1/")
    cases = [
        (pg_cluster.tcp_url(name, password="wrong-" + PASSWORD), "password authentication failed"),
        (pg_cluster.tcp_url("no_such_db"), "does not exist"),
        (closed, "cannot use the database"),
        (f"postgresql://djbake:{PASSWORD}@127.0.0.1:notaport/x", "catalog postgresql://djbake:***@"),
    ]
    for url, fragment in cases:
        for command in (["images"], ["latest", "--provider", "qemu"], ["catalog", "export"]):
            proc = djbake(*command, tmp=tmp_path, DJBAKE_CATALOG=url, DJBAKE_CATALOG_WAIT="2")
            line = one_line_error(proc, fragment)
            assert PASSWORD not in proc.stdout + proc.stderr, line
            assert "***" in line, line


def test_locked_postgresql_catalog_is_one_line(tmp_path, pg_cluster):
    import psycopg

    from builder.catalog import backend

    url = pg_cluster.url(pg_cluster.new_database())
    catalog.Catalog(url)
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (backend.WRITE_LOCK,))
        proc = djbake("catalog", "merge", export(tmp_path, [row()]), tmp=tmp_path, DJBAKE_CATALOG=url,
                      DJBAKE_CATALOG_WAIT="1")
        one_line_error(proc, "locked by another djbake (waited 1 s)")
        # Readers do not wait for a writer.
        assert djbake("images", tmp=tmp_path, DJBAKE_CATALOG=url).returncode == 0
        holder.execute("ROLLBACK")
    assert catalog.Catalog(url).query(state=None) == []
