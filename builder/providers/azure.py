"""Microsoft Azure (Packer builder azure-arm), a managed image."""
from __future__ import annotations

from builder.providers import base

SKU_ARCH = {"amd64": "", "arm64": "-arm64"}
JAMMY_SKU = {"amd64": "gen2", "arm64": "arm64"}


class Provider(base.Provider):
    name = "azure"
    title = "Microsoft Azure"
    builder_type = "azure-arm"
    plugin = "azure"
    credentials = (
        base.Credential("AZURE_SUBSCRIPTION_ID", "azure_subscription_id", secret=False, help="the subscription"),
        base.Credential("AZURE_TENANT_ID", "azure_tenant_id", secret=False, help="the Entra ID tenant"),
        base.Credential("AZURE_CLIENT_ID", "azure_client_id", secret=False, help="a service principal's app id"),
        base.Credential("AZURE_CLIENT_SECRET", "azure_client_secret", help="its secret"),
        base.Credential("AZURE_RESOURCE_GROUP", "azure_resource_group", secret=False,
                        help="the resource group that keeps the images"),
    )

    def source(self) -> dict:
        img = self.os_image()
        sku = img["sku"].format(azure_arch=SKU_ARCH[self.spec.arch], azure_arch_jammy=JAMMY_SKU[self.spec.arch])
        return {
            "subscription_id": "${var.azure_subscription_id}",
            "tenant_id": "${var.azure_tenant_id}",
            "client_id": "${var.azure_client_id}",
            "client_secret": "${var.azure_client_secret}",
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

    # -- after the build ---------------------------------------------------------
    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """The azure-arm artifact id of a managed image is its resource id. A managed image lives in its
        build location; replication to other regions needs a Shared Image Gallery (not configured)."""
        return [(self.regions[0], str(b["artifact_id"])) for b in builds if b.get("artifact_id")]

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str]:
        import os

        group = os.environ.get("AZURE_RESOURCE_GROUP") or "$AZURE_RESOURCE_GROUP"
        cmd = ["az", "vm", "create", "--resource-group", group, "--name", f"{self.spec.name}-1",
               "--image", artifact, "--location", region, "--size", self.instance_size or "Standard_B1ms",
               "--admin-username", "azureuser", "--generate-ssh-keys"]
        return cmd + (["--custom-data", user_data_file] if user_data_file else [])
