"""`djbake image`: one image for one provider, from spec to catalog entry.

    load spec -> render -> validate -> wheelhouse -> prepare -> [stack layer]
    -> packer build (scripts, in-build gate, seal) -> artifacts
    -> fresh-boot verify -> record

One function per step, called in that order by `run()`. Each step is timed
and shown through builder/progress.py; the provider's part is its hooks
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

from builder import (apt_cache, catalog, context, doctor, layers, packer as packer_mod, providers, render, runner,
                     template, wheelhouse)
from builder import safe_paths
from builder.errors import BuildFailed
from builder.progress import Build
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

def render_step(spec: Spec, provider_name: str, pk: packer_mod.Packer, provenance: dict[str, str],
                base_dir: Path | None) -> template.Rendered:
    (rendered,) = render.render(spec, [provider_name], pk, base_dir, provenance)
    # An interrupted or failed run leaves Packer's output directory behind
    # (a successful one has its artifact moved out): Packer's validate and
    # build refuse to start while it exists.
    for stale in (rendered.directory / "output", rendered.directory / template.LAYER_DIR / "output"):
        if stale.is_dir():
            safe_paths.remove(stale, rendered.directory, owner=rendered.directory)
    return rendered


def validate_step(spec: Spec, rendered: template.Rendered, provider_name: str, pk: packer_mod.Packer) -> None:
    result = render.validate(spec, rendered, provider_name, pk)
    if not result.ok:
        raise BuildFailed(f"{provider_name}: {result.how} failed:\n{result.output}")


def wheelhouse_step(spec: Spec, rendered: template.Rendered, ctx: BuildContext) -> None:
    house = wheelhouse.ensure(spec, log=ctx.note)
    wheelhouse.install_into(house, rendered.directory / "payload")
    ctx.facts["wheelhouse"] = {"key": house.key, "wheels": list(house.files)}
    ctx.note(f"wheelhouse {house.key}: {len(house.files)} wheels "
             f"({'downloaded' if house.downloaded else 'cached'})")


def prepare_step(provider: Provider, ctx: BuildContext) -> None:
    provider.prepare(ctx)
    if provider.uses_apt_cache:
        proxy = apt_cache.proxy_for(provider.name)
        ctx.facts["apt_cache"] = proxy
        ctx.note(f"apt through the host's package cache at {proxy}" if proxy else
                 "apt fetches directly: no package cache answers on this host (make apt-cache starts one)")


def packer_variables(provider: Provider, ctx: BuildContext) -> dict[str, str]:
    # The gate runs `${var.djbake_python} -m builder gate` on this host.
    extra = {apt_cache.VARIABLE: ctx.facts.get("apt_cache", "")} if provider.uses_apt_cache else {}
    return {"djbake_python": sys.executable, **extra, **provider.packer_variables(ctx)}


def secrets_of(provider: Provider, ctx: BuildContext) -> list[str]:
    values = [os.environ.get(c.env, "") for c in provider.credentials if c.secret]
    return [v for v in (*values, *ctx.secrets) if v]


def stack_layer_step(spec: Spec, pk: packer_mod.Packer, provider: Provider, ctx: BuildContext,
                     build: Build | None) -> None:
    """Layered providers: the cached stack-layer disk, built first when its inputs changed."""
    layer_key = layers.key(ctx.build_dir, spec, ctx.facts.get("base_image", {}).get("checksum", ""),
                           ctx.facts["wheelhouse"]["key"])
    layer = layers.ensure(layer_key, ctx.build_dir / template.LAYER_DIR,
                          lambda directory: build_step(pk, provider, ctx, build, directory),
                          note=ctx.note, facts={"image": spec.name, "build_id": ctx.provenance["build_id"]})
    provider.use_layer(ctx, layer.path)
    ctx.facts["stack_layer"] = {"key": layer.key, "built_now": layer.built, "seconds": round(layer.seconds, 1)}


def build_step(pk: packer_mod.Packer, provider: Provider, ctx: BuildContext, build: Build | None,
               directory: Path | None = None) -> runner.Result:
    directory = directory or ctx.build_dir
    run = runner.PackerRunner(pk.path, directory / "packer.log", secrets=secrets_of(provider, ctx),
                              on_event=build.packer_event if build else None)
    result = run.build(directory, packer_variables(provider, ctx))
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


def artifacts_step(provider: Provider, ctx: BuildContext) -> list[tuple[str, str]]:
    found = provider.artifacts(manifest_builds(ctx.build_dir / "manifest.json"), ctx)
    if not found:
        raise BuildFailed(f"{provider.name}: the build's manifest names no artifact")
    for region, artifact in found:
        ctx.note(f"artifact {region}: {artifact}")
    return found


def verify_step(provider: Provider, found: list[tuple[str, str]], ctx: BuildContext) -> Verification:
    result = provider.verify(found, ctx)
    ctx.note(f"verification: {'passed' if result.passed else 'SKIPPED' if result.skipped else 'FAILED'}"
             f" - {result.summary}")
    return result


def _sha256(artifact: str) -> str | None:
    from builder.base_image import sha256_file

    path = Path(artifact)
    return sha256_file(path) if path.is_file() else None


def record_step(spec: Spec, provider: Provider, found: list[tuple[str, str]], verification: Verification,
                ctx: BuildContext, pk: packer_mod.Packer, timings: dict) -> list[catalog.Entry]:
    prov = ctx.provenance
    entries = [
        catalog.Entry(
            build_id=prov["build_id"], image=spec.name, version=prov["image_version"], provider=provider.name,
            region=region, artifact=artifact, sha256=_sha256(artifact), git_commit=prov["git_commit"],
            spec_hash=prov["spec_hash"], os=spec.os, tools=context.tools(pk.version_text), timings=timings,
            verified=verification.passed, verification=verification.as_dict(),
            extra={"gate": "passed", **ctx.facts},
        )
        for region, artifact in found
    ]
    ids = catalog.Catalog().add(entries)
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
    provider = providers.get(provider_name)(spec, pk.version)
    provenance = context.provenance(spec)
    ctx = BuildContext(out, provenance, build)
    step = ctx.step
    ok = False
    try:
        with step("render"):
            rendered = render_step(spec, provider_name, pk, provenance, base_dir)
        with step("validate"):
            validate_step(spec, rendered, provider_name, pk)
        with step("wheelhouse"):
            wheelhouse_step(spec, rendered, ctx)
        with step("prepare"):
            prepare_step(provider, ctx)
        if provider.layered:
            with step("stack layer"):
                stack_layer_step(spec, pk, provider, ctx, build)
        with step("packer build"):
            build_step(pk, provider, ctx, build)
        with step("artifacts"):
            found = artifacts_step(provider, ctx)
        if verify:
            with step("fresh-boot verify"):
                verification = verify_step(provider, found, ctx)
        else:
            verification = Verification(False, skipped=True, summary="skipped (--no-verify)")
        # --no-verify is a finished build, shown as such; it is still never `latest`.
        ok = verification.passed or not verify
        with step("publish"):
            found = provider.publish(found, verification, ctx)
    finally:
        provider.cleanup(ctx)
        timings = build.finish(ok=ok) if build is not None else {}
    entries = record_step(spec, provider, found, verification, ctx, pk, timings)
    return Outcome(provider_name, found, verification, entries, timings)
