"""Rackspace (Packer builder openstack): OpenStack Flex or classic identity."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from builder import tables
from builder.providers import base


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

    def extra_variables(self) -> dict[str, dict]:
        default = tables.RACKSPACE_IDENTITY[self.settings.identity]
        return {"os_identity_endpoint": {"type": "string", "default": default}}

    def source(self) -> dict:
        s = self.settings
        src = {
            "identity_endpoint": "${var.os_identity_endpoint}",
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
