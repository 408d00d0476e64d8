"""Linode / Akamai Cloud (Packer plugin github.com/linode/linode).

Debian's Packer 1.6.6 lacks this builder; its templates are checked
against the plugin's documented configuration keys in the tests.
"""
from __future__ import annotations

import json

from builder import clouds
from builder.clouds import linode
from builder.providers import base
from builder.providers.aws import VERIFY_USER_DATA


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
            # Copies to the other regions (the plugin's replication list includes the build region);
            # `djbake image` builds in the first only and copies after the fresh-boot verification.
            "image_regions": "${var.linode_image_regions}",
            # VMs from the image get user-data through Linode's metadata service only when
            # the image is marked cloud-init capable.
            "cloud_init": True,
            # The plugin requires a root password, keys or users; a random one per build that no one
            # sees; Linode sets a new root password on every Linode deployed from the image.
            "root_pass": "${uuidv4()}",
            "ssh_username": "root",
        }

    def extra_variables(self) -> dict[str, dict]:
        return {"linode_image_regions": {"type": "list(string)", "default": self.regions}}

    # -- build hooks (builder/bake/pipeline.py) -----------------------------------
    def packer_variables(self, ctx: base.BuildContext) -> dict[str, str]:
        return {"linode_image_regions": json.dumps(self.regions[:1])}

    def verify(self, artifacts: list[tuple[str, str]], ctx: base.BuildContext) -> base.Verification:
        region, image = artifacts[0]
        with ctx.step(f"boot {image} in {region} and run the suite"):
            r = linode.verify(linode.client(), image, region, self.instance_size, user_data=VERIFY_USER_DATA)
        summary = f"Linode {r['instance']} from {image} in {region}: suite {'passed' if r['ok'] else 'FAILED'}"
        return base.Verification(r["ok"], summary=summary, checks=r, seconds=r["seconds"])

    def publish(self, artifacts: list[tuple[str, str]], verification: base.Verification,
                ctx: base.BuildContext) -> list[tuple[str, str]]:
        """After a passed verification only: tag the image verified and replicate it to the other regions."""
        if not verification.passed:
            return artifacts
        api = linode.client()
        region, image = artifacts[0]
        linode.mark_verified(api, image)
        with ctx.step(f"replicate to {', '.join(self.regions[1:])}" if self.regions[1:] else "no copies"):
            if self.regions[1:]:
                linode.replicate(api, image, self.regions)
        return [(r, image) for r in dict.fromkeys([region, *self.regions])]

    # -- after the build: select, launch, prune ------------------------------
    @classmethod
    def available(cls, region: str, artifact: str) -> bool:
        return linode.get_image(linode.client(), artifact).regions.get(region) == "available"

    def launch(self, region: str, artifact: str, user_data: str = "") -> tuple[str, str]:
        inst = linode.launch(linode.client(), artifact, region, self.instance_size, user_data=user_data or None,
                             tags=["djbake", f"djbake-{self.spec.name}"])
        return str(inst.id), inst.address

    def prune(self, keep: int, dry_run: bool, cat) -> list:
        decisions = linode.prune(linode.client(), self.spec.name, keep, dry_run)
        if not dry_run:
            clouds.record_pruned(cat, self.name, self.spec.name, decisions)
        return decisions

    def _static_tags(self) -> dict[str, str]:
        return {"djbake:image": self.spec.name, "djbake:build-id": "${var.build_id}"}
