"""`djbake catalog export` and `merge`: a CI matrix's catalogs become one, each entry stored once (both backends)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.catalog import store as catalog
from builder.catalog import sync

DJBAKE = str(Path(sys.executable).with_name("djbake"))


def djbake(*args, db):
    env = dict(os.environ, DJBAKE_CATALOG=str(db))
    return subprocess.run([DJBAKE, *args], capture_output=True, text=True, env=env, timeout=60)


def entry(provider, region, build_id="20261128120000-abc123", **kw):
    return catalog.Entry(build_id=build_id, image="django-web", version="1.0.0", provider=provider,
                         region=region, artifact=f"{provider}-{region}-img", os="debian-12",
                         timings={"total_seconds": 600.0, "steps": [{"name": "packer build", "seconds": 590.0}]},
                         **kw)


def test_merge_is_idempotent_and_keyed_by_build_provider_region(catalog_at):
    runner_a = catalog.Catalog(catalog_at("a"))
    runner_a.add([entry("aws", "us-east-1", verified=True), entry("aws", "eu-west-1", verified=True)])
    runner_b = catalog.Catalog(catalog_at("b"))
    runner_b.add([entry("linode", "us-east"), entry("aws", "us-east-1", build_id="20261129-other")])

    merged = catalog.Catalog(catalog_at("merged"))
    exports = [sync.export_entries(c.query(state=None)) for c in (runner_a, runner_b)]
    entries = [catalog.Entry(**{k: v for k, v in row.items()}) for ex in exports for row in ex["entries"]]
    assert sync.merge(merged, entries) == {"added": 4, "updated": 0, "unchanged": 0}
    assert sync.merge(merged, entries) == {"added": 0, "updated": 0, "unchanged": 4}
    assert sync.merge(merged, entries + entries) == {"added": 0, "updated": 0, "unchanged": 8}
    assert len(merged.query(state=None)) == 4
    # the same entry twice within one merge is stored once
    fresh = catalog.Catalog(catalog_at("fresh"))
    assert sync.merge(fresh, [entry("gcp", "us-central1-a")] * 2) == {"added": 1, "updated": 0, "unchanged": 1}
    assert len(fresh.query(state=None)) == 1


def test_a_later_export_updates_verification(catalog_at):
    cat = catalog.Catalog(catalog_at("c"))
    sync.merge(cat, [entry("hetzner", "fsn1")])
    assert cat.latest("hetzner") is None
    counts = sync.merge(cat, [entry("hetzner", "fsn1", verified=True, verification={"passed": 42})])
    assert counts == {"added": 0, "updated": 1, "unchanged": 0}
    got = cat.latest("hetzner")
    assert got.verification == {"passed": 42} and got.timings["total_seconds"] == 600.0


def test_cli_export_then_merge_twice(tmp_path, catalog_at):
    src = catalog_at("runner")
    catalog.Catalog(src).add([entry("digitalocean", "nyc3", verified=True), entry("digitalocean", "ams3")])
    out = tmp_path / "export.json"
    proc = djbake("catalog", "export", "-o", str(out), db=src)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["format"] == "djbake-catalog" and len(data["entries"]) == 2
    assert "id" not in data["entries"][0]

    dest = catalog_at("merged")
    first = djbake("catalog", "merge", str(out), str(out), db=dest)
    assert first.returncode == 0, first.stderr
    assert "2 added, 0 updated, 2 unchanged" in first.stdout
    again = djbake("catalog", "merge", str(out), db=dest)
    assert "0 added, 0 updated, 2 unchanged" in again.stdout
    assert djbake("latest", "-p", "digitalocean", db=dest).stdout.strip() == "digitalocean-nyc3-img"
    # stdout export, filtered
    assert json.loads(djbake("catalog", "export", "-p", "none", db=dest).stdout)["entries"] == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not a catalog export"),
    ('{"format": "something-else", "entries": []}', "not a catalog export"),
    ('{"format": "djbake-catalog", "version": 99, "entries": []}', "newer than this djbake reads"),
    ('{"format": "djbake-catalog", "version": 1, "entries": [{"build_id": "x"}]}', "entry 0 lacks"),
])
def test_bad_export_is_one_line_exit_2(tmp_path, catalog_at, content, message):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    db = catalog_at("db")
    proc = djbake("catalog", "merge", str(path), db=db)
    assert proc.returncode == 2
    assert proc.stderr.startswith("djbake: error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert catalog.Catalog(db).query(state=None) == []
