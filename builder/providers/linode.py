"""Linode / Akamai Cloud (Packer plugin github.com/linode/linode).

Debian's Packer 1.6.6 lacks this builder; its templates are checked
against the plugin's documented configuration keys in the tests.
"""
from __future__ import annotations

from builder.providers import base


class Provider(base.Provider):
    name = "linode"
    title = "Linode (Akamai Cloud)"
    builder_type = "linode"
    plugin = "linode"
    credentials = (base.Credential("LINODE_TOKEN", "linode_token", help="a personal access token (Linodes, Images: read/write)"),)

    def source(self) -> dict:
        regions = self.regions
        return {
            "linode_token": "${var.linode_token}",
            "image": self.settings.source_image or self.os_image()["image"],
            "region": regions[0],
            "instance_type": self.instance_size,
            "instance_label": f"djbake-{self.spec.name}-${{var.build_id}}",
            "instance_tags": [f"djbake-{k.split(':')[-1]}={v}" for k, v in self._static_tags().items()],
            "image_label": self.artifact_name(),
            "image_description": f"djbake {self.spec.name} ${{var.image_version}} ({self.spec.os})",
            # Copies to the other regions (the plugin's replication list includes the build region).
            "image_regions": regions,
            # VMs from the image get user-data through Linode's metadata service only when
            # the image is marked cloud-init capable.
            "cloud_init": True,
            # The plugin requires a root password, keys or users; a random one per build that no one
            # sees; Linode sets a new root password on every Linode deployed from the image.
            "root_pass": "${uuidv4()}",
            "ssh_username": "root",
        }

    def _static_tags(self) -> dict[str, str]:
        return {"djbake:image": self.spec.name, "djbake:build-id": "${var.build_id}"}
