"""DigitalOcean (Packer builder digitalocean)."""
from __future__ import annotations

import re

from builder.providers import base


class Provider(base.Provider):
    name = "digitalocean"
    title = "DigitalOcean"
    builder_type = "digitalocean"
    plugin = "digitalocean"
    credentials = (base.Credential("DIGITALOCEAN_TOKEN", "digitalocean_token", help="an API token with write scope"),)

    def source(self) -> dict:
        regions = self.regions
        return {
            "api_token": "${var.digitalocean_token}",
            "image": self.settings.source_image or self.os_image()["image"],
            "region": regions[0],
            "size": self.instance_size,
            "snapshot_name": self.artifact_name(),
            "snapshot_regions": regions,
            # Droplet tags are bare words: provenance is in the snapshot name.
            "tags": ["djbake", f"djbake-{self.spec.name}"]
            + [re.sub(r"[^A-Za-z0-9_:-]", "-", f"{k}-{v}") for k, v in self.settings.tags.items()],
            "ssh_username": "root",
        }

    # -- after the build ---------------------------------------------------------
    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """The digitalocean builder's artifact id is `region,region:snapshot id` (snapshot_regions copies)."""
        out: list[tuple[str, str]] = []
        for build in builds:
            regions, _, snapshot = str(build.get("artifact_id") or "").rpartition(":")
            out += [(r, snapshot) for r in regions.split(",") if r and snapshot]
        return out

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str]:
        cmd = ["doctl", "compute", "droplet", "create", f"{self.spec.name}-1", "--image", artifact,
               "--region", region, "--size", self.instance_size or "s-1vcpu-2gb", "--wait"]
        return cmd + (["--user-data-file", user_data_file] if user_data_file else [])
