"""Rackspace (Packer builder openstack): OpenStack Flex or classic identity."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from builder import clouds, tables
from builder import regions as regions_mod
from builder.clouds import openstack
from builder.providers import base
from builder.providers.aws import VERIFY_USER_DATA

# OpenStack Flex regions (Keystone v3); every other Rackspace region is classic.
FLEX_REGIONS = ("SJC3", "DFW3")


class Settings(base.ProviderSettings):
    identity: Literal["flex", "classic"] = Field(
        "flex", description="`flex`: Rackspace OpenStack Flex (Keystone v3); `classic`: Rackspace Cloud identity v2.0."
    )
    networks: list[str] = Field(default_factory=list, description="Network UUIDs for the build server.")


class Provider(base.Provider):
    name = "rackspace"
    title = "Rackspace (OpenStack)"
    builder_type = "openstack"
    plugin = "openstack"
    Settings = Settings
    validate_needs_account = True
    credentials = (
        base.Credential("OS_USERNAME", "os_username", secret=False, help="your Rackspace user name"),
        base.Credential("OS_PASSWORD", "os_password", help="its password"),
        base.Credential("OS_PROJECT_ID", "os_project_id", secret=False, help="the project (tenant) id"),
        base.Credential("OS_AUTH_URL", "os_auth_url", required=False, secret=False,
                        help="override of the identity endpoint"),
    )

    @classmethod
    def region_table(cls, settings: Settings) -> tuple[regions_mod.Region, ...]:
        """Flex and classic are separate clouds: each identity sees only its own regions."""
        flex = settings.identity == "flex"
        return tuple(r for r in regions_mod.table(cls.name) if (r.id in FLEX_REGIONS) == flex)

    @classmethod
    def check_settings(cls, settings: Settings) -> list[tuple[tuple, str]]:
        problems = super().check_settings(settings)
        other = "classic" if settings.identity == "flex" else "flex"
        return [(loc, f"{settings.regions[loc[1]]} is a Rackspace {other} region; set `identity: {other}` "
                      f"or use one of {', '.join(r.id for r in cls.region_table(settings))}")
                if loc[0] == "regions" and settings.regions[loc[1]] in {r.id for r in regions_mod.table(cls.name)}
                else (loc, message) for loc, message in problems]

    def default_regions(self) -> tuple[str, ...]:
        return (self.region_table(self.settings)[0].id,)

    def extra_variables(self) -> dict[str, dict]:
        default = tables.RACKSPACE_IDENTITY[self.settings.identity]
        return {"os_identity_endpoint": {"type": "string", "default": default}}

    def source(self) -> dict:
        s = self.settings
        src = {
            # OS_AUTH_URL, when set, overrides the identity's endpoint (as in every OpenStack tool).
            "identity_endpoint": '${var.os_auth_url != "" ? var.os_auth_url : var.os_identity_endpoint}',
            "username": "${var.os_username}",
            "password": "${var.os_password}",
            "tenant_id": "${var.os_project_id}",
            "region": self.regions[0],
            "flavor": self.instance_size,
            "source_image_name": s.source_image or self.os_image()[s.identity],
            "image_name": self.artifact_name(),
            "metadata": self.tags(),
            "ssh_username": "root",
            "config_drive": True,
        }
        if s.identity == "flex":
            src["domain_name"] = "rackspace_cloud_domain"
        if s.networks:
            src["networks"] = list(s.networks)
        return src

    # -- build hooks (builder/bake/pipeline.py) -----------------------------------
    # Packer's artifact id is the Glance image UUID in the first region (the base default).
    def _connect(self, region: str | None = None):
        return openstack.connect(region or self.regions[0], self.settings.identity)

    def verify(self, artifacts: list[tuple[str, str]], ctx: base.BuildContext) -> base.Verification:
        region, image = artifacts[0]
        with ctx.step(f"boot {image} in {region} and run the suite"):
            r = openstack.verify(self._connect(region), image, self.instance_size, user_data=VERIFY_USER_DATA,
                                 networks=self.settings.networks or None)
        summary = f"server {r['server']} from {image} in {region}: suite {'passed' if r['ok'] else 'FAILED'}"
        return base.Verification(r["ok"], summary=summary, checks=r, seconds=r["seconds"])

    def publish(self, artifacts: list[tuple[str, str]], verification: base.Verification,
                ctx: base.BuildContext) -> list[tuple[str, str]]:
        """Tag the image verified. Glance has no cross-region copy: other regions get their own build."""
        if verification.passed:
            region, image = artifacts[0]
            openstack.mark_verified(self._connect(region), image)
            if self.regions[1:]:
                ctx.note(f"rackspace: images stay in {region}; build again with regions: "
                         f"[{self.regions[1]}] for {', '.join(self.regions[1:])}")
        return artifacts

    # -- after the build: select, launch, prune ------------------------------
    @classmethod
    def available(cls, region: str, artifact: str) -> bool:
        conn = openstack.connect(region, "flex" if region in FLEX_REGIONS else "classic")
        img = openstack._api(f"read image {artifact}", conn.image.find_image, artifact, ignore_missing=True)
        return img is not None and img.status == "active"

    def launch(self, region: str, artifact: str, user_data: str = "") -> tuple[str, str]:
        server = openstack.launch(self._connect(region), artifact, self.instance_size, user_data=user_data or None,
                                  name=f"{self.spec.name}-{artifact[:8]}", networks=self.settings.networks or None)
        return server.id, server.address

    def prune(self, keep: int, dry_run: bool, cat) -> list:
        decisions = openstack.prune(self._connect(), self.spec.name, keep, dry_run)
        if not dry_run:
            clouds.record_pruned(cat, self.name, self.spec.name, decisions)
        return decisions
