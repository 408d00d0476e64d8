"""`djbake image`: one image for one provider, from spec to catalog entry.

The steps, numbered the same everywhere (module docstrings, docs/architecture.md):

    1 load spec (builder/spec/)         2 render (template.py, render.py)
    3 validate (packer.py)              4 wheelhouse (wheelhouse.py)
    5 prepare (provider, apt_cache.py)  6 stack layer, layered providers only (layers.py)
    7 packer build: scripts, in-build gate, seal (runner.py, gate.py)
    8 artifacts                         9 fresh-boot verify (provider.verify)
    10 publish (provider.publish)       11 record (builder/catalog/)

One function per step (step 1 is the caller's: commands/image.py), each
taking the build's `Job`, called in that order by `run()`. Each step is timed
and shown through builder/bake/progress.py; the provider's part is its hooks
(builder/providers/base.py: prepare, packer_variables, artifacts, verify,
cleanup). Nothing is recorded unless Packer succeeded, which includes the
in-build gate; an artifact that then fails its fresh-boot verification is
recorded as not verified (it exists and may need cleaning up), and
`djbake latest` never returns it. cleanup() always runs: the build key is
gone when the command returns.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from builder import doctor, providers, safe_paths
from builder.bake import (
    apt_cache,
    artifact_guard,
    gate_report,
    layers,
    provenance,
    render,
    sbom,
    runner,
    template,
    wheelhouse,
)
from builder.bake import packer as packer_mod
from builder.bake.progress import Build
from builder.catalog import backend as catalog_backend
from builder.catalog import store as catalog
from builder.catalog import who
from builder.digest import sha256_file
from builder.errors import BuildFailed
from builder.providers.base import BuildContext, Provider, Verification
from builder.spec import Spec


@dataclass
class Outcome:
    provider: str
    artifacts: list[tuple[str, str]]
    verification: Verification
    entries: list[catalog.Entry] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.verification.passed


# -- the steps -------------------------------------------------------------

@dataclass
class Job:
    """One `djbake image` run for one provider: what every step works with, made once by run()."""

    spec: Spec
    provider: Provider
    packer: packer_mod.Packer
    ctx: BuildContext
    build: Build | None = None
    base_dir: Path | None = None


def render_step(job: Job) -> template.Rendered:
    (rendered,) = render.render_providers(job.spec, [job.provider], job.packer, job.base_dir, job.ctx.provenance)
    # An interrupted or failed run leaves Packer's output directory behind
    # (a successful one has its artifact moved out): Packer's validate and
    # build refuse to start while it exists.
    for stale in (rendered.directory / "output", rendered.directory / template.LAYER_DIR / "output"):
        if stale.is_dir():
            safe_paths.remove(stale, rendered.directory, owner=rendered.directory)
    # An earlier build's package lists must never become this build's bill of materials.
    for stale in (sbom.PACKAGES, sbom.FILE):
        (rendered.directory / stale).unlink(missing_ok=True)
    return rendered


def validate_step(job: Job, rendered: template.Rendered) -> None:
    result = render.validate(job.spec, rendered, job.provider, job.packer)
    if not result.ok:
        raise BuildFailed(f"{job.provider.name}: {result.how} failed:\n{result.output}")


def wheelhouse_step(job: Job, rendered: template.Rendered) -> None:
    ctx = job.ctx
    house = wheelhouse.ensure(job.spec, log=ctx.note)
    wheelhouse.install_into(house, rendered.directory / "payload")
    ctx.facts["wheelhouse"] = {"key": house.key, "wheels": list(house.files)}
    ctx.note(f"wheelhouse {house.key}: {len(house.files)} wheels "
             f"({'downloaded' if house.downloaded else 'cached'})")


def prepare_step(job: Job) -> None:
    provider, ctx = job.provider, job.ctx
    provider.prepare(ctx)
    if provider.uses_apt_cache:
        proxy = apt_cache.proxy_for(provider.name)
        ctx.facts["apt_cache"] = proxy
        ctx.note(f"apt through the host's package cache at {proxy}" if proxy else
                 "apt fetches directly: no package cache answers on this host (make apt-cache starts one)")


def packer_variables(job: Job) -> dict[str, str]:
    provider, ctx = job.provider, job.ctx
    # The gate runs `${var.djbake_python} -m builder gate` on this host.
    extra = {apt_cache.VARIABLE: ctx.facts.get("apt_cache", "")} if provider.uses_apt_cache else {}
    return {"djbake_python": sys.executable, **extra, **provider.packer_variables(ctx)}


def secrets_of(job: Job) -> list[str]:
    values = [os.environ.get(c.env, "") for c in job.provider.credentials if c.secret]
    return [v for v in (*values, *job.ctx.secrets, *catalog_backend.secrets()) if v]


def stack_layer_step(job: Job) -> None:
    """Layered providers: the cached stack-layer disk, built first when its inputs changed."""
    spec, ctx = job.spec, job.ctx
    layer_key = layers.key(ctx.build_dir, spec, ctx.facts.get("base_image", {}).get("checksum", ""),
                           ctx.facts["wheelhouse"]["key"])
    layer = layers.ensure(layer_key, ctx.build_dir / template.LAYER_DIR,
                          lambda directory: build_step(job, directory),
                          note=ctx.note, facts={"image": spec.name, "build_id": ctx.provenance["build_id"]})
    job.provider.use_layer(ctx, layer.path)
    ctx.facts["stack_layer"] = {"key": layer.key, "built_now": layer.built, "seconds": round(layer.seconds, 1)}


def build_step(job: Job, directory: Path | None = None) -> runner.Result:
    directory = directory or job.ctx.build_dir
    run = runner.PackerRunner(job.packer.path, directory / "packer.log", secrets=secrets_of(job),
                              on_event=job.build.packer_event if job.build else None)
    result = run.build(directory, packer_variables(job))
    if result.interrupted:
        raise KeyboardInterrupt
    if result.returncode != 0 and result.script_failure:
        # scripts/lib.sh's ERR trap named the script, line and command: that is the whole story.
        raise BuildFailed(f"{result.script_failure}; log: {result.log_path}")
    if result.returncode != 0:
        errors = "; ".join(e.strip().splitlines()[0] for e in result.errors[-3:] if e.strip()) or "see the log"
        raise BuildFailed(f"packer build failed ({result.returncode}): {errors} (log: {result.log_path})")
    return result


def manifest_builds(path: Path) -> list[dict]:
    """The `builds` entries of the last run in a Packer manifest (it appends runs)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildFailed(f"Packer wrote no manifest at {path}") from None
    except ValueError as e:
        raise BuildFailed(f"unreadable Packer manifest {path}: {e}") from None
    last = data.get("last_run_uuid")
    builds = [b for b in data.get("builds", []) if b.get("packer_run_uuid") == last]
    if not builds:
        raise BuildFailed(f"the manifest {path} has no build for its last run {last}")
    return builds


def artifacts_step(job: Job) -> list[tuple[str, str]]:
    provider, ctx = job.provider, job.ctx
    found = provider.artifacts(manifest_builds(ctx.build_dir / "manifest.json"), ctx)
    if not found:
        raise BuildFailed(f"{provider.name}: the build's manifest names no artifact")
    for region, artifact in found:
        ctx.note(f"artifact {region}: {artifact}")
    return found


def verify_step(job: Job, found: list[tuple[str, str]]) -> Verification:
    ctx = job.ctx
    before = artifact_guard.hashes(found)
    result = artifact_guard.check(job.provider.verify(found, ctx), before, found)
    ctx.note(f"verification: {'passed' if result.passed else 'SKIPPED' if result.skipped else 'FAILED'}"
             f" - {result.summary}")
    # The summary names the failed checks; their details (a suite's failing tests and why) go to
    # the log too, so a failed CI run or a user's terminal says what failed without the VM's files.
    for name, detail in result.failures():
        ctx.note(f"  {name}: {detail}")
    return result


def _sha256(artifact: str) -> str | None:
    path = Path(artifact)
    return sha256_file(path) if path.is_file() else None


def bill_of_materials(job: Job) -> str | None:
    """The CycloneDX document of the gate's package lists (sbom.py), written to the build directory too."""
    spec, ctx = job.spec, job.ctx
    document = sbom.from_packages(ctx.build_dir / sbom.PACKAGES, image=spec.name,
                                  version=ctx.provenance["image_version"], distro=spec.os)
    if document is not None:
        (ctx.build_dir / sbom.FILE).write_text(document, encoding="utf-8")
        ctx.facts["sbom"] = sbom.summary(document)
    return document


def record_step(job: Job, found: list[tuple[str, str]], verification: Verification,
                timings: dict) -> list[catalog.Entry]:
    spec, provider, ctx = job.spec, job.provider, job.ctx
    prov = ctx.provenance
    document = bill_of_materials(job)
    entries = [
        catalog.Entry(
            build_id=prov["build_id"], image=spec.name, version=prov["image_version"], provider=provider.name,
            region=region, artifact=artifact, sha256=_sha256(artifact), git_commit=prov["git_commit"],
            spec_hash=prov["spec_hash"], os=spec.os, tools=provenance.tools(job.packer.version_text), timings=timings,
            verified=verification.passed, verification=verification.as_dict(),
            extra={**gate_report.read(ctx.build_dir), **ctx.facts}, built_by=who.who(),
        )
        for region, artifact in found
    ]
    cat = catalog.Catalog()
    if document is not None:   # stored before the entries that name it
        cat.add_sbom(document)
    ids = cat.add(entries)
    for entry, entry_id in zip(entries, ids):
        entry.id = entry_id
    return entries


# -- the flow ----------------------------------------------------------------

def run(spec: Spec, provider_name: str, build: Build | None = None, base_dir: Path | None = None,
        verify: bool = True) -> Outcome:
    """Bake, gate, verify and record one image for one provider."""
    pk = packer_mod.find()
    out = render.out_dir(spec, provider_name, base_dir)
    # Missing credentials, builder, tools or disk: one line and exit 2 now,
    # not a Packer failure minutes into the build.
    doctor.preflight(provider_name, out)
    provider = providers.get(provider_name)(spec, pk.version)   # the one provider object of this build
    ctx = BuildContext(out, provenance.provenance(spec), build)
    job = Job(spec, provider, pk, ctx, build, base_dir)
    step = ctx.step
    ok = False
    try:
        with step("render"):
            rendered = render_step(job)
        with step("validate"):
            validate_step(job, rendered)
        with step("wheelhouse"):
            wheelhouse_step(job, rendered)
        with step("prepare"):
            prepare_step(job)
        if provider.layered:
            with step("stack layer"):
                stack_layer_step(job)
        with step("packer build"):
            build_step(job)
        with step("artifacts"):
            found = artifacts_step(job)
        if verify:
            with step("fresh-boot verify"):
                verification = verify_step(job, found)
        else:
            verification = Verification(False, skipped=True, summary="skipped (--no-verify)")
        # --no-verify is a finished build, shown as such; it is still never `latest`.
        ok = verification.passed or not verify
        with step("publish"):
            found = provider.publish(found, verification, ctx)
    finally:
        provider.cleanup(ctx)
        timings = build.finish(ok=ok) if build is not None else {}
    entries = record_step(job, found, verification, timings)
    return Outcome(provider_name, found, verification, entries, timings)
