"""Amazon EC2 (Packer builder amazon-ebs)."""
from __future__ import annotations

from pydantic import Field

from builder.providers import base


class Settings(base.ProviderSettings):
    volume_type: str = Field("gp3", description="EBS volume type of the root disk.")
    throughput: int = Field(125, ge=125, le=1000, description="gp3 throughput in MiB/s.")
    iops: int = Field(3000, ge=3000, le=16000, description="gp3 IOPS.")


ARCH = {"amd64": "x86_64", "arm64": "arm64"}


class Provider(base.Provider):
    name = "aws"
    title = "Amazon EC2"
    builder_type = "amazon-ebs"
    plugin = "amazon"
    Settings = Settings
    credentials = (
        base.Credential("AWS_ACCESS_KEY_ID", "aws_access_key", help="an IAM access key id"),
        base.Credential("AWS_SECRET_ACCESS_KEY", "aws_secret_key", help="its secret"),
        base.Credential("AWS_SESSION_TOKEN", "aws_session_token", required=False, help="for temporary credentials"),
    )

    def extra_variables(self) -> dict[str, dict]:
        # Points Packer at an EC2-compatible emulator in tests; empty means AWS.
        return {"aws_endpoint": {"type": "string", "default": '${env("DJBAKE_AWS_ENDPOINT")}'}}

    def source(self) -> dict:
        img = self.os_image()
        s = self.settings
        regions = self.regions
        ami_filter_name = self.settings.source_image or img["name"].format(
            arch=self.spec.arch, aws_arch=ARCH[self.spec.arch]
        )
        src = {
            "access_key": "${var.aws_access_key}",
            "secret_key": "${var.aws_secret_key}",
            "token": "${var.aws_session_token}",
            "custom_endpoint_ec2": "${var.aws_endpoint}",
            "region": regions[0],
            "ami_regions": regions[1:],
            "instance_type": self.instance_size,
            "source_ami_filter": {
                "filters": {
                    "name": ami_filter_name,
                    "architecture": ARCH[self.spec.arch],
                    "root-device-type": "ebs",
                    "virtualization-type": "hvm",
                },
                "owners": [img["owner"]],
                "most_recent": True,
            },
            "ssh_username": img["ssh_username"],
            "ami_name": self.artifact_name(),
            "ami_description": f"djbake {self.spec.name} ({self.spec.os}, Django {self.spec.stack.django})",
            "encrypt_boot": True,
            "launch_block_device_mappings": [
                {
                    "device_name": img["root_device"],
                    "volume_size": self.spec.disk_size_gb,
                    "volume_type": s.volume_type,
                    "throughput": s.throughput,
                    "iops": s.iops,
                    "encrypted": True,
                    "delete_on_termination": True,
                }
            ],
            "tags": self.tags(),
            "snapshot_tags": self.tags(),
            "run_tags": self.tags(),
        }
        if self.packer_version >= (1, 7, 0):
            # IMDSv2 only, on the build instance and on every VM from the AMI.
            src["metadata_options"] = {"http_endpoint": "enabled", "http_tokens": "required",
                                       "http_put_response_hop_limit": 1}
            src["imds_support"] = "v2.0"
        return src
