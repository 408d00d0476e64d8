"""Microsoft Azure (Packer builder azure-arm): a managed image, published to an Azure Compute Gallery
(formerly Shared Image Gallery) and replicated there when the image is wanted in more than one region."""
from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from builder import tables
from builder.errors import UserError
from builder.providers import base

SKU_ARCH = {"amd64": "", "arm64": "-arm64"}
JAMMY_SKU = {"amd64": "gen2", "arm64": "arm64"}
# Packer >= 1.7 (plugin >= 2.1) has storage_account_type in shared_image_gallery_destination; 1.6.6 does not.
STORAGE_ACCOUNT_TYPE_SINCE = (1, 7, 0)
# A gallery image version is Major.Minor.Patch of 32-bit integers and can be published only once.
# Rebuilds of one version (and every `git describe` between two tags) must not collide, so the patch
# is the build's time in seconds since this epoch (fits 32 bits until 2088).
GALLERY_PATCH_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
INT32_MAX = 2**31 - 1
DEFAULT_GALLERY = tables.PROVIDER_DEFAULTS["azure"].gallery


# Azure's naming rules (what the portal enforces), so a bad name is a spec error, not a failed build.
NAME_RULES = {
    "gallery": (r"[A-Za-z0-9_][A-Za-z0-9_.]{0,78}[A-Za-z0-9_]|[A-Za-z0-9_]",
                "1-80 letters, digits, `_` or `.`, not starting or ending with `.` (no `-`)"),
    "gallery_resource_group": (r"[-\w.()]{0,89}[-\w()]",
                               "1-90 letters, digits, `-`, `_`, `.` or parentheses, not ending with `.`"),
    "gallery_image": (r"[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]|[A-Za-z0-9]",
                      "1-80 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"),
}


class Settings(base.ProviderSettings):
    gallery: str | None = Field(
        None, description=f"Azure Compute Gallery the image version is published to ({NAME_RULES['gallery'][1]}); "
        f"default `{DEFAULT_GALLERY.name}`. Used when the image has more than one region, or when set.",
    )
    gallery_resource_group: str | None = Field(
        None, description="Resource group of the gallery; default: `AZURE_RESOURCE_GROUP` (where the images are kept).",
    )
    gallery_image: str | None = Field(
        None, description="The gallery's image definition the versions go to; default: the spec's `name`.",
    )
    storage_account_type: Literal["Standard_LRS", "Standard_ZRS", "Premium_LRS"] | None = Field(
        None, description=f"Storage of each replica; default `{DEFAULT_GALLERY.storage_account_type}` "
        "(Packer >= 1.7; Debian's Packer 1.6.6 always uses Azure's default, Standard_LRS).",
    )

    @field_validator(*NAME_RULES)
    @classmethod
    def _azure_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        rule, words = NAME_RULES[info.field_name]
        if v is not None and not re.fullmatch(rule, v):
            raise ValueError(f"{v!r} is not an Azure name: {words}")
        return v


def gallery_version(image_version: str, build_id: str) -> str:
    """The gallery image version of a build: Major.Minor of the image version, the build's time as Patch.

    A version without leading numbers (a bare commit hash, `dev`) is 0.0.
    """
    m = re.match(r"^v?(\d+)(?:\.(\d+))?", image_version)
    major, minor = (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)
    if max(major, minor) > INT32_MAX:
        raise UserError(f"image version {image_version}: Azure gallery versions need numbers below 2^31",
                        hint="set a shorter `version:` in the spec")
    try:
        built = dt.datetime.strptime(build_id[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        built = dt.datetime.now(dt.timezone.utc)
    return f"{major}.{minor}.{int((built - GALLERY_PATCH_EPOCH).total_seconds())}"


def gallery_version_id(subscription: str, resource_group: str, gallery: str, image: str, version: str) -> str:
    """What `az vm create --image` and the portal take for a gallery image version."""
    return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
            f"/galleries/{gallery}/images/{image}/versions/{version}")


class Provider(base.Provider):
    name = "azure"
    title = "Microsoft Azure"
    builder_type = "azure-arm"
    plugin = "azure"
    Settings = Settings
    credentials = (
        base.Credential("AZURE_SUBSCRIPTION_ID", "azure_subscription_id", secret=False, help="the subscription"),
        base.Credential("AZURE_TENANT_ID", "azure_tenant_id", secret=False, help="the Entra ID tenant"),
        base.Credential("AZURE_CLIENT_ID", "azure_client_id", secret=False, help="a service principal's app id"),
        base.Credential("AZURE_CLIENT_SECRET", "azure_client_secret", help="its secret"),
        base.Credential("AZURE_RESOURCE_GROUP", "azure_resource_group", secret=False,
                        help="the resource group that keeps the images"),
    )

    # -- the gallery -------------------------------------------------------------
    @property
    def uses_gallery(self) -> bool:
        """A managed image serves one region; more regions need the gallery's replicas."""
        return len(self.regions) > 1 or self.settings.gallery is not None

    @property
    def gallery(self) -> str:
        return self.settings.gallery or self.defaults.gallery.name

    @property
    def gallery_image(self) -> str:
        return self.settings.gallery_image or self.spec.name

    def gallery_resource_group(self, resource_group: str = "${var.azure_resource_group}") -> str:
        return self.settings.gallery_resource_group or resource_group

    def extra_variables(self) -> dict[str, dict]:
        if not self.uses_gallery:
            return {}
        # djbake passes the real one per build (packer_variables); the default only serves `packer validate`.
        return {"azure_gallery_image_version": {"type": "string", "default": "0.0.1"}}

    def packer_variables(self, ctx: base.BuildContext) -> dict[str, str]:
        if not self.uses_gallery:
            return {}
        return {"azure_gallery_image_version": gallery_version(ctx.provenance["image_version"],
                                                               ctx.provenance["build_id"])}

    def _gallery_destination(self) -> dict:
        destination = {
            "resource_group": self.gallery_resource_group(),
            "gallery_name": self.gallery,
            "image_name": self.gallery_image,
            "image_version": "${var.azure_gallery_image_version}",
            # Every region, the build location first: Packer adds the build location when it is
            # missing, and 1.6.6 rejects an empty list (a one-region gallery image).
            "replication_regions": self.regions,
        }
        if self.packer_version >= STORAGE_ACCOUNT_TYPE_SINCE:
            destination["storage_account_type"] = (self.settings.storage_account_type
                                                   or self.defaults.gallery.storage_account_type)
        return destination

    def source(self) -> dict:
        img = self.os_image()
        sku = img["sku"].format(azure_arch=SKU_ARCH[self.spec.arch], azure_arch_jammy=JAMMY_SKU[self.spec.arch])
        src = {
            "subscription_id": "${var.azure_subscription_id}",
            "tenant_id": "${var.azure_tenant_id}",
            "client_id": "${var.azure_client_id}",
            "client_secret": "${var.azure_client_secret}",
            # The managed image stays: Packer 1.6.6 publishes to a gallery only from one.
            "managed_image_resource_group_name": "${var.azure_resource_group}",
            "managed_image_name": self.artifact_name(),
            "os_type": "Linux",
            "image_publisher": img["publisher"],
            "image_offer": img["offer"],
            "image_sku": self.settings.source_image or sku,
            "location": self.regions[0],
            "vm_size": self.instance_size,
            "os_disk_size_gb": self.spec.disk_size_gb,
            "azure_tags": self.tags(),
            "ssh_username": "packer",
        }
        if self.uses_gallery:
            src["shared_image_gallery_destination"] = self._gallery_destination()
        return src

    # -- after the build ---------------------------------------------------------
    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """The azure-arm artifact id is the managed image's resource id whenever a managed image is made
        (Artifact.Id() prefers it to the gallery image version, which the manifest then does not carry).

        Without a gallery: the managed image, in the build location. With one: the gallery image version
        id, once per replicated region (what `az vm create --image` takes there); the managed image is
        noted in the catalog entry's extra. The version is derived again from the manifest's provenance,
        exactly as packer_variables() derived it for the build.
        """
        if not self.uses_gallery:
            return [(self.regions[0], str(b["artifact_id"])) for b in builds if b.get("artifact_id")]
        out: list[tuple[str, str]] = []
        for build in builds:
            artifact_id = str(build.get("artifact_id") or "")
            if "/galleries/" in artifact_id:  # a plugin build without a managed image
                version_id = artifact_id
            else:
                m = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/", artifact_id)
                if not m:
                    continue
                ctx.facts["azure_managed_image"] = artifact_id
                data = build.get("custom_data") or {}
                version = gallery_version(str(data.get("image_version") or ctx.provenance.get("image_version", "")),
                                          str(data.get("build_id") or ctx.provenance.get("build_id", "")))
                version_id = gallery_version_id(m.group(1), self.gallery_resource_group(m.group(2)),
                                                self.gallery, self.gallery_image, version)
            out += [(region, version_id) for region in self.regions]
        return out

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str]:
        import os

        group = os.environ.get("AZURE_RESOURCE_GROUP") or "$AZURE_RESOURCE_GROUP"
        cmd = ["az", "vm", "create", "--resource-group", group, "--name", f"{self.spec.name}-1",
               "--image", artifact, "--location", region, "--size", self.instance_size or "Standard_B1ms",
               "--admin-username", "azureuser", "--generate-ssh-keys"]
        return cmd + (["--custom-data", user_data_file] if user_data_file else [])
