"""Versioned schema migrations (both backends) and `djbake catalog migrate --to postgresql://...`.

A SQLite catalog from before migrations is adopted with its rows; eight
processes opening a new database at once migrate it once; a schema newer
than this djbake is one line; `catalog migrate --to` copies entries,
channels and history into a real PostgreSQL database, idempotently,
checking every row as an untrusted export and never printing the password.
"""
from __future__ import annotations

import multiprocessing as mp
import sqlite3

from builder.catalog import channels, migrations, revocation
from builder.catalog import store as catalog
from tests.pg_cluster import PASSWORD
from tests.test_cli_errors import djbake, one_line_error

ctx = mp.get_context("fork")

OLD_SCHEMA = """
CREATE TABLE images (id INTEGER PRIMARY KEY AUTOINCREMENT, build_id TEXT NOT NULL, image TEXT NOT NULL,
    version TEXT NOT NULL, provider TEXT NOT NULL, region TEXT NOT NULL, artifact TEXT NOT NULL, sha256 TEXT,
    git_commit TEXT, spec_hash TEXT, os TEXT, tools TEXT NOT NULL DEFAULT '{}', timings TEXT NOT NULL DEFAULT '{}',
    verified INTEGER NOT NULL DEFAULT 0, verification TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'available', extra TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL);
CREATE INDEX images_select ON images (provider, image, region, verified, created_at);
INSERT INTO images (build_id, image, version, provider, region, artifact, verified, created_at)
    VALUES ('20261101000000-aaaaaa', 'django-web', '1.0', 'qemu', 'local', '/srv/a.qcow2', 1, 1793000000);
"""


def _applied(cat) -> list[int]:
    with cat.connect() as db:
        return [r["version"] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_a_catalog_from_before_migrations_is_adopted(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    cat = catalog.Catalog(path)
    assert _applied(cat) == [n for n, _, _ in migrations.MIGRATIONS]
    (e,) = cat.query(state=None)
    assert e.build_id == "20261101000000-aaaaaa" and e.revoked_at is None and cat.latest("qemu") == e
    assert catalog.Catalog(path).query(state=None) == [e]  # opening again applies nothing


def _open(where: str, start) -> None:
    start.wait()
    catalog.Catalog(where).query(state=None)


def test_eight_first_opens_migrate_once(catalog_at):
    where = catalog_at()
    start = ctx.Event()
    procs = [ctx.Process(target=_open, args=(where, start)) for _ in range(8)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    assert _applied(catalog.Catalog(where)) == [n for n, _, _ in migrations.MIGRATIONS]


def test_a_newer_schema_is_one_line(catalog_at, tmp_path):
    where = catalog_at()
    cat = catalog.Catalog(where)
    with cat.write() as db:
        db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)")
    one_line_error(djbake("images", tmp=tmp_path, DJBAKE_CATALOG=where), "schema version 99, newer than this djbake")


def _laptop(tmp_path):
    src = catalog.Catalog(tmp_path / "laptop.sqlite")
    for n, build in enumerate(("20261127000000-aaaaaa", "20261128000000-bbbbbb", "20261129000000-cccccc")):
        src.add([catalog.Entry(build, "django-web", f"2026.11.{27 + n}", p, r, f"{p}-{r}-{n}", verified=True,
                               created_at=1793000000 + n, timings={"total_seconds": 60.0 + n})
                 for p, r in (("qemu", "local"), ("hetzner", "fsn1"))])
    channels.set_channel(src, "production", "django-web", "2026.11.28")
    channels.set_channel(src, "production", "django-web", "2026.11.29")
    revocation.revoke(src, None, "20261127000000-aaaaaa", "old openssl")
    return src


def test_migrate_copies_a_laptop_catalog_into_postgresql(tmp_path, pg_cluster):
    src = _laptop(tmp_path)
    url = pg_cluster.tcp_url(pg_cluster.new_database())  # with the password in it: never printed
    first = djbake("catalog", "migrate", "--to", url, tmp=tmp_path, DJBAKE_CATALOG=str(src.path))
    assert first.returncode == 0, first.stderr
    assert "6 added, 0 updated, 0 unchanged; 2 channel(s), 4 history row(s)" in first.stdout
    assert PASSWORD not in first.stdout + first.stderr and "djbake:***@127.0.0.1" in first.stdout
    again = djbake("catalog", "migrate", "--to", url, tmp=tmp_path, DJBAKE_CATALOG=str(src.path))
    assert "0 added, 0 updated, 6 unchanged; 0 channel(s), 0 history row(s)" in again.stdout, again.stderr

    team = catalog.Catalog(url)
    key = lambda e: (e.build_id, e.provider, e.region)  # noqa: E731
    assert sorted(map(key, team.query(state=None))) == sorted(map(key, src.query(state=None)))
    old = team.query(build_id="20261127000000-aaaaaa", state=None)
    assert all(e.revoked_at and e.revoke_reason == "old openssl" for e in old)
    assert team.latest("hetzner").build_id == "20261129000000-cccccc"
    assert channels.resolve(team, "production", "qemu")[0].build_id == "20261129000000-cccccc"
    assert len(channels.history(team, "production", "django-web")) == 4
    # the same commands work on the team's catalog: rollback there
    assert [c.to_build for c in channels.rollback(team, "production", "django-web", "qemu")] == [
        "20261128000000-bbbbbb"]
    proc = djbake("latest", "-p", "qemu", "--channel", "production", tmp=tmp_path, DJBAKE_CATALOG=url)
    assert proc.stdout.strip() == "qemu-local-1" and PASSWORD not in proc.stderr


def test_migrate_refuses_a_hostile_row_and_writes_nothing(tmp_path, pg_cluster):
    src = _laptop(tmp_path)
    with sqlite3.connect(src.path) as db:
        db.execute("UPDATE images SET region = 'fsn1\x1b[2J' WHERE provider = 'hetzner' AND version = '2026.11.28'")
    url = pg_cluster.url(pg_cluster.new_database())
    proc = djbake("catalog", "migrate", "--to", url, tmp=tmp_path, DJBAKE_CATALOG=str(src.path))
    one_line_error(proc, "entry", "region")
    assert catalog.Catalog(url).query(state=None) == []
    assert channels.assignments(catalog.Catalog(url)) == []


def test_migrate_without_to_reports_the_schema_version(tmp_path):
    proc = djbake("catalog", "migrate", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"schema version {migrations.LATEST} (current: {migrations.LATEST})" in proc.stdout


def test_catalog_passwords_reach_the_build_log_filter(monkeypatch):
    from builder.catalog import backend

    monkeypatch.setenv("DJBAKE_CATALOG", f"postgresql://djbake:{PASSWORD}@db.example:5432/cat")
    monkeypatch.setenv("PGPASSWORD", "other-pg-secret")
    assert set(backend.secrets()) == {PASSWORD, "other-pg-secret"}
    assert backend.redact(f"postgresql://djbake:{PASSWORD}@db/x?password={PASSWORD}&sslmode=require") == \
        "postgresql://djbake:***@db/x?password=***&sslmode=require"
