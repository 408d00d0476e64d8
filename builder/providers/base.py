"""The one small interface every provider implements.

A provider module defines a `Settings` model (what the spec may say under
`providers.<name>`) and a `Provider` subclass that turns a validated spec
into a Packer source block. Cloud operations (latest, launch, verify,
prune) live beside it in the same module when the provider has them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from builder import regions as regions_mod
from builder import tables
from builder.errors import UserError

if TYPE_CHECKING:
    from builder.bake.progress import Build
    from builder.spec import Spec


class ProviderSettings(BaseModel):
    """What every provider accepts under `providers.<name>` in a spec."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no coercion: `iops: "3000"`, `cpus: true` are errors

    regions: list[str] = Field(
        default_factory=list,
        description="Regions the image is built in (first) and copied to; empty: from `near`, else the provider's "
        "default. `djbake regions --provider P` lists them.",
    )
    near: list[str] = Field(
        default_factory=list,
        description="Continents the users are on (" + ", ".join(regions_mod.CONTINENTS) + "): one region per "
        "continent, the first is where the image is built. Ignored when `regions` is given.",
    )
    instance_size: str | None = Field(None, description="Machine type/size of the build VM.")
    source_image: str | None = Field(None, description="Override of the source image from the OS table.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags/labels on the image.")


@dataclass(frozen=True)
class Credential:
    """An environment variable a provider reads; never written to a file."""

    env: str
    variable: str
    required: bool = True
    secret: bool = True
    help: str = ""


class Provider:
    name: ClassVar[str]
    title: ClassVar[str]
    builder_type: ClassVar[str]          # Packer builder type
    plugin: ClassVar[str | None] = None  # key in tables.PACKER_PLUGINS
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    credentials: ClassVar[tuple[Credential, ...]] = ()
    # "ssh": the gate reaches the build VM over SSH; "docker": through the engine.
    gate_transport: ClassVar[str] = "ssh"
    # Builds on a cached stack-layer disk (builder/bake/layers.py, stack.STACK_LAYER):
    # the template then runs only the image layer's scripts.
    layered: ClassVar[bool] = False
    # Local builds fetch packages through the host's apt cache (builder/bake/apt_cache.py).
    uses_apt_cache: ClassVar[bool] = False
    # The builder talks to the cloud already during `packer validate`
    # (openstack authenticates): without credentials only syntax is checked.
    validate_needs_account: ClassVar[bool] = False

    def __init__(self, spec: "Spec", packer_version: tuple[int, int, int] = (1, 6, 6)):
        self.spec = spec
        # Templates adapt to the Packer that runs them: 1.6.x (Debian) lacks
        # some options that current plugins have.
        self.packer_version = packer_version
        self.settings = spec.providers_settings(self.name)
        self.defaults = tables.PROVIDER_DEFAULTS[self.name]

    # -- regions ---------------------------------------------------------
    @classmethod
    def region_table(cls, settings: ProviderSettings) -> tuple[regions_mod.Region, ...]:
        """The regions these settings may use (builder/data/regions.json)."""
        return regions_mod.table(cls.name)

    @classmethod
    def check_settings(cls, settings: ProviderSettings) -> list[tuple[tuple, str]]:
        """Problems in `providers.<name>` as (path below it, message); the spec reports the first."""
        known = [r.id for r in cls.region_table(settings)]
        problems = [(("regions", i), regions_mod.unknown_region_message(r, known, cls.name))
                    for i, r in enumerate(settings.regions) if known and r not in known]
        problems += [(("near", i), regions_mod.unknown_continent_message(c))
                     for i, c in enumerate(settings.near) if c not in regions_mod.CONTINENTS]
        return problems

    def default_regions(self) -> tuple[str, ...]:
        return self.defaults.regions

    # -- facts the template needs -------------------------------------
    @property
    def regions(self) -> list[str]:
        """Explicit regions, else one per continent in `near`, else the default; the first builds."""
        return regions_mod.resolve(self.region_table(self.settings), self.settings.regions, self.settings.near,
                                   self.default_regions())

    @property
    def instance_size(self) -> str | None:
        if self.settings.instance_size:
            return self.settings.instance_size
        if self.spec.arch == "arm64" and self.defaults.instance_size_arm64:
            return self.defaults.instance_size_arm64
        return self.defaults.instance_size

    def os_image(self) -> dict[str, str]:
        return dict(tables.SOURCE_IMAGES[self.name][self.spec.os])

    def tags(self) -> dict[str, str]:
        """Provenance tags (filled by Packer variables) plus the spec's own."""
        tags = {
            "djbake:image": self.spec.name,
            "djbake:version": "${var.image_version}",
            "djbake:build-id": "${var.build_id}",
            "djbake:git-commit": "${var.git_commit}",
            "djbake:spec-hash": "${var.spec_hash}",
            "djbake:os": self.spec.os,
        }
        tags.update(self.settings.tags)
        return tags

    def artifact_name(self) -> str:
        return f"{self.spec.name}-${{var.image_version}}-${{var.build_id}}"

    # -- what each provider must supply --------------------------------
    def source(self) -> dict:
        """The Packer source block for this provider (HCL2 JSON)."""
        raise NotImplementedError

    def extra_variables(self) -> dict[str, dict]:
        """Provider variables beyond credentials (e.g. a key file path)."""
        return {}

    def layer_source(self) -> dict:
        """The source block of the stack-layer build (layered providers only)."""
        raise NotImplementedError(f"{self.name} does not build in layers")

    def post_processors(self) -> list[dict]:
        """Post-processors after the manifest (e.g. docker-tag)."""
        return []

    def manifest_data(self) -> dict[str, str]:
        """What the builder knows only at build time, for the manifest's custom_data: the parent image a
        source filter picked (Packer's build variables). Read back by artifacts()."""
        return {}

    # -- build hooks (`djbake image`, builder/bake/pipeline.py) -----------------
    # The pipeline calls them in this order; the defaults suit a provider
    # whose template needs nothing from the host and whose image cannot be
    # booted here.
    def prepare(self, ctx: "BuildContext") -> None:
        """Make what the build needs on the host (base image, keys, seed); before `packer build`."""

    def use_layer(self, ctx: "BuildContext", disk: Path) -> None:
        """Build the image on this stack-layer disk (layered providers; after prepare)."""
        raise NotImplementedError(f"{self.name} does not build in layers")

    def packer_variables(self, ctx: "BuildContext") -> dict[str, str]:
        """-var values for `packer build` (prepare() has run). Secret ones also go to ctx.secrets."""
        return {}

    def artifacts(self, builds: list[dict], ctx: "BuildContext") -> list[tuple[str, str]]:
        """(region, artifact id) per image made, from this run's manifest.json `builds` entries.

        Default: Packer's artifact_id, split as amazon writes it
        (`region:id,region:id`), else one artifact in the first region.
        """
        out: list[tuple[str, str]] = []
        for build in builds:
            artifact_id = str(build.get("artifact_id") or "")
            pairs = [p.split(":", 1) for p in artifact_id.split(",") if p]
            if pairs and all(len(p) == 2 and p[0] and p[1] for p in pairs):
                out += [(region, ident) for region, ident in pairs]
            elif artifact_id:
                out.append((self.regions[0], artifact_id))
        return out

    def verify(self, artifacts: list[tuple[str, str]], ctx: "BuildContext") -> "Verification":
        """Boot a fresh VM from the artifact and test it. Default: not possible here (not verified)."""
        return Verification(False, skipped=True, summary=f"no fresh-boot verification for {self.name} yet")

    def publish(self, artifacts: list[tuple[str, str]], verification: "Verification",
                ctx: "BuildContext") -> list[tuple[str, str]]:
        """After the verification: mark, copy, publish (only if it passed). Returns what to record.

        Default: nothing to do. aws tags the AMI verified, copies it to the
        other regions and writes SSM parameters; the copies are recorded too.
        """
        return artifacts

    def launch(self, region: str, artifact: str, user_data: str = "") -> tuple[str, str]:
        """A cloud VM from the artifact, as (id, address) (`djbake launch`); qemu has its own."""
        raise UserError(f"djbake launch does not support {self.name} yet",
                        hint=f"use the id from `djbake latest --provider {self.name}` in your cloud's console")

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str] | None:
        """The provider's own CLI command that creates a VM from the artifact, for clouds djbake does not
        drive itself (`djbake launch` prints it). None: launch() creates the VM."""
        return None

    @classmethod
    def available(cls, region: str, artifact: str) -> bool:
        """Does the cloud still have this artifact, ready to use? (`djbake latest` asks.)"""
        return True

    def cleanup(self, ctx: "BuildContext") -> None:
        """Remove what prepare() made that must not outlive the build (e.g. the build key); always runs."""


    def has_credentials(self) -> bool:
        import os

        return all(os.environ.get(c.env) for c in self.credentials if c.required)

    def validate_placeholders(self) -> dict[str, str]:
        """Values for `packer validate` when the real credentials are unset.

        Validation checks the template, not the account, so it must pass on a
        machine with no cloud account.
        """
        import os

        # Only the unset ones: with real credentials in the environment, validation uses them.
        return {c.variable: "placeholder" for c in self.credentials if c.required and not os.environ.get(c.env)}


def credential_variables(provider: Provider) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for cred in provider.credentials:
        out[cred.variable] = {
            "type": "string",
            "default": f'${{env("{cred.env}")}}',
            "sensitive": cred.secret,
        }
    return out


@dataclass
class Verification:
    """The result of a provider's fresh-boot verification."""

    passed: bool
    skipped: bool = False
    summary: str = ""
    checks: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"passed": self.passed, "skipped": self.skipped, "summary": self.summary,
                "checks": self.checks, "seconds": round(self.seconds, 1)}

    def failures(self) -> list[tuple[str, str]]:
        """(check, detail) of each failed check: what a reader of a failed build needs first."""
        return [(name, str(c.get("detail", ""))) for name, c in self.checks.items()
                if isinstance(c, dict) and c.get("ok") is False]


@dataclass
class BuildContext:
    """What the pipeline hands each hook: where the build is, its provenance, where to report."""

    build_dir: Path
    provenance: dict[str, str]
    progress: "Build | None" = None
    # Values the Packer runner must filter out of its log (hooks append).
    secrets: list[str] = field(default_factory=list)
    # A provider's own notes between its hooks (paths, ports, the accelerator...).
    state: dict[str, Any] = field(default_factory=dict)
    # Facts recorded in the catalog entry's `extra` (e.g. the base image, the accelerator).
    facts: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)
        else:
            print(text)

    def step(self, name: str):
        """A timed sub-step shown in the progress view (a no-op context without one)."""
        import contextlib

        return self.progress.step(name) if self.progress is not None else contextlib.nullcontext()
