"""Local QEMU image (Packer builder qemu): a qcow2 from a cloud image or a bootstrapped base."""
from __future__ import annotations

from pydantic import Field

from builder.providers import base


class Settings(base.ProviderSettings):
    cpus: int = Field(2, ge=1, le=64, description="vCPUs of the build VM.")
    memory_mb: int = Field(2048, ge=512, le=65536, description="Memory of the build VM in MiB.")


class Provider(base.Provider):
    name = "qemu"
    title = "QEMU (local qcow2)"
    builder_type = "qemu"
    plugin = "qemu"
    Settings = Settings

    def extra_variables(self) -> dict[str, dict]:
        return {
            # auto: djbake probes KVM by really booting; DJBAKE_ACCELERATOR overrides.
            "qemu_accelerator": {"type": "string", "default": "tcg"},
            # Filled per build: the base image (a cloud image URL or a bootstrapped qcow2).
            "qemu_source": {"type": "string", "default": ""},
            "qemu_source_checksum": {"type": "string", "default": "none"},
            # The per-build key pair; the public half goes into the NoCloud seed.
            "ssh_key_file": {"type": "string", "default": "build_key"},
        }

    @property
    def uses_bootstrap(self) -> bool:
        return self.settings.source_image == "bootstrap"

    def source(self) -> dict:
        s = self.settings
        return {
            "disk_image": True,
            "iso_url": "${var.qemu_source}",
            "iso_checksum": "${var.qemu_source_checksum}",
            "accelerator": "${var.qemu_accelerator}",
            "format": "qcow2",
            "disk_size": f"{self.spec.disk_size_gb}G",
            "disk_compression": True,
            "disk_interface": "virtio",
            "net_device": "virtio-net",
            "cpus": s.cpus,
            "memory": s.memory_mb,
            "headless": True,
            "qemuargs": [["-cpu", "max"], ["-serial", "file:${path.root}/serial.log"]],
            "cd_files": ["${path.root}/seed/meta-data", "${path.root}/seed/user-data"],
            "cd_label": "cidata",
            "ssh_username": "djbake",
            "ssh_private_key_file": "${var.ssh_key_file}",
            "ssh_timeout": "20m",
            "shutdown_command": "sudo shutdown -P now",
            "output_directory": "${path.root}/output",
            "vm_name": f"{self.spec.name}.qcow2",
        }

    def validate_placeholders(self) -> dict[str, str]:
        return {}
