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

    # -- after the build ---------------------------------------------------------
    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """The hcloud builder's artifact id is the snapshot id. Hetzner snapshots are global (usable in
        every location), so no copies are made: the one snapshot is recorded for each of the spec's regions."""
        return [(r, str(b["artifact_id"])) for b in builds if b.get("artifact_id") for r in self.regions]

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str]:
        cmd = ["hcloud", "server", "create", "--name", f"{self.spec.name}-1", "--image", artifact,
               "--type", self.instance_size or "cx22", "--location", region]
        return cmd + (["--user-data-from-file", user_data_file] if user_data_file else [])
