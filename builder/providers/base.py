"""The one small interface every provider implements.

A provider module defines a `Settings` model (what the spec may say under
`providers.<name>`) and a `Provider` subclass that turns a validated spec
into a Packer source block. Cloud operations (latest, launch, verify,
prune) live beside it in the same module when the provider has them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from builder import regions as regions_mod
from builder import tables

if TYPE_CHECKING:
    from builder.spec import Spec


class ProviderSettings(BaseModel):
    """What every provider accepts under `providers.<name>` in a spec."""

    model_config = ConfigDict(extra="forbid")

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

    def post_processors(self) -> list[dict]:
        """Post-processors after the manifest (e.g. docker-tag)."""
        return []

    def has_credentials(self) -> bool:
        import os

        return all(os.environ.get(c.env) for c in self.credentials if c.required)

    def validate_placeholders(self) -> dict[str, str]:
        """Values for `packer validate` when the real credentials are unset.

        Validation checks the template, not the account, so it must pass on a
        machine with no cloud account.
        """
        return {c.variable: "placeholder" for c in self.credentials if c.required}


def credential_variables(provider: Provider) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for cred in provider.credentials:
        out[cred.variable] = {
            "type": "string",
            "default": f'${{env("{cred.env}")}}',
            "sensitive": cred.secret,
        }
    return out
