"""Google Compute Engine (Packer builder googlecompute)."""
from __future__ import annotations

import re

from builder.providers import base

ARCH = {"amd64": "", "arm64": "-arm64"}


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


class Provider(base.Provider):
    name = "gcp"
    title = "Google Compute Engine"
    builder_type = "googlecompute"
    plugin = "googlecompute"
    credentials = (
        base.Credential("GOOGLE_APPLICATION_CREDENTIALS", "gcp_account_file", required=False, secret=False,
                        help="path to a service account key file (default: application default credentials)"),
        base.Credential("GCP_PROJECT_ID", "gcp_project_id", secret=False, help="the project to build in"),
    )

    def source(self) -> dict:
        img = self.os_image()
        zone = self.regions[0]
        src = {
            "account_file": "${var.gcp_account_file}",
            "project_id": "${var.gcp_project_id}",
            "zone": zone,
            "machine_type": self.instance_size,
            "source_image_project_id": [img["project"]],
            "image_name": self.artifact_name(),
            "image_family": self.spec.name,
            "image_description": f"djbake {self.spec.name} ({self.spec.os})",
            # Label values must be lowercase; variables are filled at build time.
            "image_labels": {
                _label(k.replace(":", "_")): (_label(v) if "${" not in v else v) for k, v in self.tags().items()
            },
            "image_storage_locations": sorted({r.rsplit("-", 1)[0] for r in self.regions}),
            "disk_size": self.spec.disk_size_gb,
            "ssh_username": "packer",
        }
        if self.settings.source_image:
            src["source_image"] = self.settings.source_image
        else:
            src["source_image_family"] = img["family"].format(arch=self.spec.arch, gcp_arch=ARCH[self.spec.arch])
        return src

    # -- after the build ---------------------------------------------------------
    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """The googlecompute builder's artifact id is the image name. Images are global resources, stored in
        `image_storage_locations` (the spec's regions); recorded for each of the spec's zones."""
        return [(z, str(b["artifact_id"])) for b in builds if b.get("artifact_id") for z in self.regions]

    def launch_command(self, region: str, artifact: str, user_data_file: str | None = None) -> list[str]:
        import os

        project = os.environ.get("GCP_PROJECT_ID") or "$GCP_PROJECT_ID"
        cmd = ["gcloud", "compute", "instances", "create", f"{self.spec.name}-1", "--project", project,
               "--zone", region, "--machine-type", self.instance_size or "e2-small", "--image", artifact,
               "--image-project", project]
        return cmd + (["--metadata-from-file", f"user-data={user_data_file}"] if user_data_file else [])
