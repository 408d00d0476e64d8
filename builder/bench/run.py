"""`djbake bench`: measure one provider's figures and their baselines in one run.

    render+validate (all providers) | null-template validate
    bootstrap + full build (catalog timings) | floor: boot base, plain install script
    rebuild, only the app changed (catalog timings) | the full build
    baked image booted to HTTP 200 | bare base booted to SSH (docker: systemd up)
    image size | its packages' installed size; Ubuntu 24.04 minimal
    gate time per check (junit + catalog) | one `true` through the same transport
    Lynis hardening index: baked | base; OpenSCAP (builder/bench/openscap.py): baked | base;
    listening ports of the baked image

The builds are real `djbake image` runs (builder/bake/pipeline.py) recorded in a
catalog of the benchmark's own (bench/out/catalog.sqlite: a bench build is
never anyone's `latest`), and their per-step timings are read back from it.
On qemu the builds use a fresh cache (bench/out/cache), so the full build
really bootstraps the base and builds the stack layer, and the rebuild
shows what the layer cache saves. The pure arithmetic is builder/bench/report.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import yaml

from builder import providers
from builder import spec as spec_mod
from builder.bake import apt_cache, gate, pipeline, provenance, render, wheelhouse
from builder.bake import packer as packer_mod
from builder.bake.validate_all import WORKERS as VALIDATE_WORKERS
from builder.bake.validate_all import validate_all
from builder.bench import openscap as bench_openscap
from builder.bench import probe as bench_probe
from builder.bench import report as bench
from builder.bench import targets as bench_targets
from builder.bench.targets import FLOOR_WHEELS, dir_tar, floor_script
from builder.catalog import store as catalog
from builder.errors import BuildFailed
from builder.paths import ROOT
from builder.spec import Spec

SAMPLE_APP = ROOT / "tests" / "sample_project"
APP_CHANGE = "the app layer (spec `app:` -> tests/sample_project)"
NULL_TEMPLATE = {"source": {"null": {"bench": {"communicator": "none"}}},
                 "build": [{"sources": ["source.null.bench"]}]}


@contextmanager
def environment(out: Path, provider: str):
    """The bench's own catalog and images directory; on qemu a fresh cache (bootstrap and layer from scratch)."""
    wanted = {"DJBAKE_CATALOG": str(out / "catalog.sqlite"), "DJBAKE_IMAGES": str(out / "images")}
    if provider == "qemu":
        cache = out / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        wanted["DJBAKE_CACHE"] = str(cache)
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def app_variant(spec_path: Path, out: Path) -> Path:
    """The same spec with only the app changed: the welcome project -> tests/sample_project."""
    data = yaml.safe_load(spec_path.read_text())
    data["app"] = {"source": os.path.relpath(SAMPLE_APP, out), "module": "sample.wsgi",
                   "settings": "sample.settings"}
    path = out / f"{data['name']}.app-change.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def render_and_validate(spec: Spec, out: Path, note: Callable[[str], None], null_runs: int = 3) -> bench.Figure:
    """Render all providers and validate them as `djbake validate` does (side by side), against null validates."""
    pk = packer_mod.find()
    names = list(providers.PROVIDERS)
    t = time.monotonic()
    rendered = render.render(spec, names, pk, out / "render")
    render_seconds = time.monotonic() - t
    validate: dict[str, float] = {}
    t = time.monotonic()
    for name, timed in zip(names, validate_all(spec, names, rendered, pk)):
        validate[name] = timed.seconds
        v = timed.validation
        note(f"validate {name}: {'ok' if v.ok else 'FAILED'} in {timed.seconds:.2f} s ({v.how})")
    wall = time.monotonic() - t
    null_dir = out / "null-template"
    null_dir.mkdir(parents=True, exist_ok=True)
    (null_dir / "null.pkr.json").write_text(json.dumps(NULL_TEMPLATE))
    samples = []
    for _ in range(null_runs):
        t = time.monotonic()
        ok, output = packer_mod.validate(pk, null_dir, {})
        samples.append(time.monotonic() - t)
        if not ok:
            raise BuildFailed(f"packer validate of the minimal null template failed: {output}")
    return bench.render_validate(render_seconds, validate, sorted(samples)[len(samples) // 2],
                                 validate_wall_seconds=wall, null_side_by_side_seconds=_null_side_by_side(
                                     pk, null_dir, len(names)))


def _null_side_by_side(pk: packer_mod.Packer, null_dir: Path, n: int) -> float:
    """n null validates run as validate_all runs the providers' (same workers): the like-for-like floor."""
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(VALIDATE_WORKERS, n)) as pool:
        results = list(pool.map(lambda _: packer_mod.validate(pk, null_dir, {}), range(n)))
    if not all(ok for ok, _ in results):
        raise BuildFailed(f"packer validate of the minimal null template failed: {results[0][1]}")
    return time.monotonic() - t


def timings_of(outcome: pipeline.Outcome) -> dict:
    """The build's per-step timings as the catalog stored them."""
    entry = catalog.Catalog().get(outcome.entries[0].id)
    return entry.timings


def gate_figure(build_dir: Path, timings: dict, round_trip: float, transport: str) -> bench.Figure:
    times = gate.check_times(build_dir / "gate.junit.xml")
    suite = next((s["seconds"] for s in timings.get("scripts", []) if "gate" in s["name"]), None)
    if suite is None:
        suite = sum(t for _, t in times)
    return bench.suite_per_check(suite, len(times), round_trip, transport, times[:10])


def audits(session, spec: Spec, provider: str, which: str, note: Callable[[str], None]) -> tuple[dict, dict]:
    """Lynis, then OpenSCAP, in a booted target (which: "baked" or "base")."""
    note(f"{which}: Lynis ...")
    lynis = bench_probe.lynis(session)
    note(f"{which}: OpenSCAP ...")
    return lynis, bench_openscap.scan(session, spec.os, apt_cache.proxy_for(provider))


def lynis_summary(baked: dict, base: dict) -> dict:
    return {"baked": baked["hardening_index"], "base": base["hardening_index"], "version": baked["version"],
            "tests": {"baked": baked["tests"], "base": base["tests"]},
            "seconds": {"baked": baked["seconds"], "base": base["seconds"]},
            "findings": {"warnings": baked["warnings"], "suggestions": baked["suggestions"]}}


def run(spec_path: Path, provider: str, out: Path, new_build: Callable[[str], object],
        note: Callable[[str], None] = print, audit: bool = True) -> dict:
    """Every figure for provider; returns the results document (not yet written).

    audit=False leaves out Lynis and OpenSCAP (about 50 min of a QEMU/TCG run); the figures are
    measured the same, and the report says the audits were not run."""
    spec = spec_mod.load(spec_path)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[bench.Figure] = []
    with environment(out, provider):
        target = bench_targets.for_provider(provider, out / "vms")
        note("render and validate for every provider")
        figures.append(render_and_validate(spec, out, note))

        note("bootstrap and full build")
        apt_log, since = apt_cache.log_path(), time.time()
        bootstrap = target.bootstrap(spec, note)
        full = pipeline.run(spec, provider, new_build("full build"), out / "build", verify=True)
        full_timings = timings_of(full)
        build_dir = render.out_dir(spec, provider, out / "build")
        artifact = full.artifacts[0][1]
        full_apt, since = apt_cache.traffic(apt_log, since), time.time()

        note("rebuild with only the app changed")
        variant = spec_mod.load(app_variant(spec_path, out))
        rebuilt = pipeline.run(variant, provider, new_build("rebuild"), out / "build-app", verify=False)
        rebuilt_timings = timings_of(rebuilt)
        rebuild_apt = apt_cache.traffic(apt_log, since)

        note("booting the baked image to HTTP 200")
        with target.baked(artifact) as (baked_seconds, session):
            baked_packages = bench_probe.packages(session)
            ports = bench_probe.listening(session)
            gate_target = session.gate_target()
            round_trip = bench_probe.gate_round_trip(gate_target)
            gate_transport = bench_probe.gate_round_trip(gate_target, plain=False)
            login_round_trip = bench_probe.round_trip(session)
            note(f"baked: HTTP 200 after {baked_seconds:.0f} s; ports {ports['public_tcp']}")
            lynis_baked, scap_baked = audits(session, spec, provider, "baked", note) if audit else ({}, {})

        note(f"booting the bare base to {target.base_ready_what}; Lynis; the floor install")
        with target.base(spec) as (base_seconds, session):
            base_packages = bench_probe.packages(session)
            # OpenSCAP is installed, run and purged again before the floor install is timed.
            lynis_base, scap_base = audits(session, spec, provider, "base", note) if audit else ({}, {})
            added = sorted(set(baked_packages) - set(base_packages))

            house = wheelhouse.ensure(spec, log=note)

            session.put_tar(dir_tar(house.directory, FLOOR_WHEELS))
            # Through the same package cache as the builds, so only djbake differs.
            install_seconds = bench_probe.run_checked(
                session, floor_script(added, apt_cache.proxy_for(provider)), "the floor install")
        floor_seconds = base_seconds + install_seconds

        figures.append(bench.full_build(full_timings, floor_seconds, bootstrap, provider))
        figures[-1].details.update({"floor_boot_seconds": round(base_seconds, 1),
                                    "floor_install_seconds": round(install_seconds, 1),
                                    "floor_packages": len(added)})
        figures.append(bench.end_to_end(full_timings, floor_seconds, base_seconds, bootstrap))
        figures.append(bench.rebuild(rebuilt_timings, full_timings, APP_CHANGE))
        figures.append(bench.boot(baked_seconds, base_seconds, target.base_ready_what))
        installed_kib = sum(baked_packages.values())
        figures.extend(bench.image_size(target.image_bytes(artifact), installed_kib, target.size_what))
        figures.append(gate_figure(build_dir, full_timings, round_trip, gate_target.backend))
        figures[-1].details.update({"login_round_trip_seconds": round(login_round_trip, 3),
                                    "gate_transport_seconds": round(gate_transport, 3)})

    security = {
        "audited": audit,
        "lynis": lynis_summary(lynis_baked, lynis_base) if audit else {},
        "openscap": {"baked": scap_baked, "base": scap_base} if audit else {},
        "ports": ports,
    }
    extra = {
        "substitutions": target.substitutions,
        "builds": {
            "full": {"catalog_id": full.entries[0].id, "artifact": artifact, "verified": full.verified,
                     "timings": full_timings},
            "rebuild": {"catalog_id": rebuilt.entries[0].id, "artifact": rebuilt.artifacts[0][1],
                        "timings": rebuilt_timings},
        },
        "catalog": str(out / "catalog.sqlite"),
        # What apt fetched upstream vs what the host's cache served (builder/bake/apt_cache.py);
        # all zero when no cache ran.
        "package_cache": {"proxy": apt_cache.proxy_for(provider) or None,
                          "full": dataclasses.asdict(full_apt), "rebuild": dataclasses.asdict(rebuild_apt)},
    }
    return bench.document(provider, figures, security, provenance.git_commit(), extra)
