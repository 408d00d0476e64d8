"""Local container image (Packer builder docker): the fast loop for script authors."""
from __future__ import annotations

from builder.providers import base


class Provider(base.Provider):
    name = "docker"
    title = "Docker (local container, systemd)"
    builder_type = "docker"
    plugin = "docker"
    gate_transport = "docker"

    def source(self) -> dict:
        return {
            "image": self.settings.source_image or self.os_image()["image"],
            "pull": False,
            "commit": True,
            "privileged": True,
            "changes": [
                'ENTRYPOINT ["/sbin/init"]',
                'STOPSIGNAL SIGRTMIN+3',
                f'LABEL djbake.image="{self.spec.name}" djbake.build-id="${{var.build_id}}"',
            ],
        }

    def post_processors(self) -> list[dict]:
        return [{"docker-tag": {"repository": f"djbake/{self.spec.name}", "tags": ["${var.image_version}", "latest"]}}]

    def validate_placeholders(self) -> dict[str, str]:
        return {}
