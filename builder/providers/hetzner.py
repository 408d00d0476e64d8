"""Hetzner Cloud (Packer builder hcloud)."""
from __future__ import annotations

import re

from builder.providers import base


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


class Provider(base.Provider):
    name = "hetzner"
    title = "Hetzner Cloud"
    builder_type = "hcloud"
    plugin = "hcloud"
    credentials = (base.Credential("HCLOUD_TOKEN", "hcloud_token", help="a project API token (read/write)"),)

    def source(self) -> dict:
        return {
            "token": "${var.hcloud_token}",
            "image": self.settings.source_image or self.os_image()["image"],
            "location": self.regions[0],
            "server_type": self.instance_size,
            "snapshot_name": self.artifact_name(),
            # Labels allow no ':' in keys: djbake:image -> djbake/image.
            "snapshot_labels": {k.replace(":", "/"): _label(v) if "${" not in v else v for k, v in self.tags().items()},
            "ssh_username": "root",
        }
