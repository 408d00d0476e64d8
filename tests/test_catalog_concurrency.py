"""Eight builds at once into one catalog, on both backends (SQLite file, real PostgreSQL server).

Separate processes (as eight `djbake image` runs on eight CI runners are) add
whole builds while others read: every build lands, whole, nothing is
corrupted; a writer killed inside its transaction leaves no partial build
and no lock behind.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time

import pytest

from builder.catalog import backend
from builder.catalog import store as catalog

WRITERS = 8
BUILDS_PER_WRITER = 8
REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")

ctx = mp.get_context("fork")


def _build(writer: int, n: int) -> list[catalog.Entry]:
    build_id = f"w{writer}-b{n}"
    return [catalog.Entry(build_id=build_id, image="django-web", version="1.0", provider="aws", region=r,
                          artifact=f"ami-{writer:02d}{n:02d}{i}", verified=bool(n % 2), timings={"n": n},
                          extra={"writer": writer})
            for i, r in enumerate(REGIONS)]


def _writer(path: str, writer: int, start) -> None:
    start.wait()
    for n in range(BUILDS_PER_WRITER):
        # A new Catalog each time: a fresh process's first open, racing the others.
        catalog.Catalog(path).add(_build(writer, n))


def _reader(path: str, stop, bad) -> None:
    cat = catalog.Catalog(path)
    while not stop.is_set():
        counts: dict[str, int] = {}
        for e in cat.query(state=None):
            counts[e.build_id] = counts.get(e.build_id, 0) + 1
        if any(c != len(REGIONS) for c in counts.values()):
            bad.value += 1  # a reader saw half a build
        cat.latest("aws", image="django-web", region="eu-west-1")


def _integrity(path: str) -> str:
    if backend.is_url(path):  # the server keeps its own files whole; check what djbake promises instead
        with catalog.Catalog(path).connect() as db:
            dupes = db.execute("SELECT COUNT(*) AS n FROM (SELECT build_id, provider, region FROM images "
                               "GROUP BY build_id, provider, region HAVING COUNT(*) > 1) AS d").fetchone()["n"]
        return "ok" if dupes == 0 else f"{dupes} duplicate keys"
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_concurrent_builds_all_land_whole(catalog_at):
    path = catalog_at()
    start, stop = ctx.Event(), ctx.Event()
    bad = ctx.Value("i", 0)
    readers = [ctx.Process(target=_reader, args=(str(path), stop, bad)) for _ in range(2)]
    writers = [ctx.Process(target=_writer, args=(str(path), w, start)) for w in range(WRITERS)]
    catalog.Catalog(path)  # the readers need the table to exist
    for p in readers + writers:
        p.start()
    start.set()
    for p in writers:
        p.join(60)
    stop.set()
    for p in readers:
        p.join(30)
    assert [p.exitcode for p in writers + readers] == [0] * (WRITERS + 2)
    assert bad.value == 0, "a reader saw a partly recorded build"

    rows = catalog.Catalog(path).query(state=None)
    assert len(rows) == WRITERS * BUILDS_PER_WRITER * len(REGIONS)
    assert len({e.id for e in rows}) == len(rows)
    builds = {(e.extra["writer"], e.timings["n"]) for e in rows}
    assert builds == {(w, n) for w in range(WRITERS) for n in range(BUILDS_PER_WRITER)}
    assert _integrity(path) == "ok"
    if not backend.is_url(path):
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class _StallAfter(list):
    """Entries that, after `n` of them are inserted, tell the parent and hang: a build killed mid-write."""

    def __init__(self, entries, n, ready):
        super().__init__(entries)
        self.n, self.ready = n, ready

    def __iter__(self):
        for i, e in enumerate(list.__iter__(self)):
            if i == self.n:
                self.ready.set()
                time.sleep(600)
            yield e


def _killed_writer(path: str, ready) -> None:
    catalog.Catalog(path).add(_StallAfter(_build(99, 0), 2, ready))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_writer_killed_mid_transaction_leaves_nothing(catalog_at, sig):
    path = catalog_at()
    cat = catalog.Catalog(path)
    cat.add(_build(1, 0))
    ready = ctx.Event()
    p = ctx.Process(target=_killed_writer, args=(str(path), ready))
    p.start()
    assert ready.wait(30), "the writer never reached the middle of its transaction"
    # While it holds the write lock, readers still see the catalog as it was.
    assert {e.build_id for e in catalog.Catalog(path).query(state=None)} == {"w1-b0"}
    os.kill(p.pid, sig)
    p.join(30)
    assert p.exitcode == -sig

    after = catalog.Catalog(path)
    assert {e.build_id for e in after.query(state=None)} == {"w1-b0"}, "a partial build was recorded"
    assert _integrity(path) == "ok"
    # The lock died with the writer: the next build records at once.
    started = time.monotonic()
    after.add(_build(2, 0))
    assert time.monotonic() - started < 5
    assert len(after.query(state=None)) == 2 * len(REGIONS)


def test_failed_add_records_nothing(catalog_at):
    cat = catalog.Catalog(catalog_at())
    entries = _build(3, 0)
    entries[2].timings = {"not json": object()}  # fails while the first two rows are already inserted
    with pytest.raises(TypeError):
        cat.add(entries)
    assert cat.query(state=None) == []
    cat.add(_build(3, 1))
    assert len(cat.query(state=None)) == len(REGIONS)


def test_the_same_build_region_twice_is_one_line_and_records_nothing(catalog_at):
    from builder.errors import UserError

    cat = catalog.Catalog(catalog_at())
    cat.add(_build(4, 0))
    with pytest.raises(UserError, match="already recorded"):
        cat.add(_build(5, 0) + _build(4, 0)[:1])  # unique (build_id, provider, region): the whole add is refused
    assert {e.build_id for e in cat.query(state=None)} == {"w4-b0"}
