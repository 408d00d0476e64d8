"""Amazon EC2 (Packer builder amazon-ebs); the boto3 side is builder/clouds/aws.py.

`djbake image --provider aws`: Packer builds the AMI in the first region
only; djbake then makes it IMDSv2-only (and deprecates it on time) where
Packer 1.6 could not, boots an instance of it and runs the testinfra suite,
and only once that passed tags it verified, copies it to the other regions
and publishes each region's id in SSM `/djbake/<image>/latest`.
"""
from __future__ import annotations

import functools
import os

from pydantic import Field

from builder import clouds
from builder.clouds import aws
from builder.providers import base

# Verification user-data: proves that user-data reaches the instance and runs at boot.
VERIFY_USER_DATA = """#!/bin/sh
mkdir -p /var/lib/djbake && echo "user-data ran" > /var/lib/djbake/verify-user-data
"""


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
        return {
            # Points Packer at an EC2-compatible emulator in tests; empty means AWS.
            "aws_endpoint": {"type": "string", "default": '${env("DJBAKE_AWS_ENDPOINT")}'},
            # Test mode only (moto starts no machine): SSH to a stand-in host.
            # Empty means the instance's own address, as always on AWS.
            "aws_ssh_host": {"type": "string", "default": '${env("DJBAKE_AWS_SSH_HOST")}'},
            "aws_ssh_port": {"type": "string", "default": '${env("DJBAKE_AWS_SSH_PORT")}'},
            # Packer copies to these regions; `djbake image` sets [] and copies
            # itself, after the fresh-boot verification passed.
            "aws_copy_regions": {"type": "list(string)", "default": self.regions[1:]},
        }

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
            "ami_regions": "${var.aws_copy_regions}",
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
            "ssh_host": "${var.aws_ssh_host}",
            "ssh_port": '${var.aws_ssh_port == "" ? 22 : var.aws_ssh_port}',
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
            if self.spec.lifetime_days:
                src["deprecate_at"] = f'${{timeadd(timestamp(), "{self.spec.lifetime_days * 24}h")}}'
        return src

    # -- build hooks (builder/bake/pipeline.py) -------------------------------------
    def _from_template(self) -> bool:
        """Packer >= 1.7 sets IMDSv2 and deprecation in the template; 1.6.x leaves them to djbake."""
        return self.packer_version >= (1, 7, 0)

    def prepare(self, ctx: base.BuildContext) -> None:
        aws.check_regions(self.regions)
        aws.check_credentials()
        ctx.secrets.extend(v for v in (os.environ.get(c.env) for c in self.credentials) if v)

    def packer_variables(self, ctx: base.BuildContext) -> dict[str, str]:
        # Packer builds in the first region only: copies are made after verification.
        return {"aws_copy_regions": "[]"}

    def manifest_data(self) -> dict[str, str]:
        # The AMI the source_ami_filter picked: the parent image of this build, for auditors.
        return {"source_ami": "${build.SourceAMI}", "source_ami_name": "${build.SourceAMIName}"}

    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for build in builds:
            out += aws.parse_artifact_id(str(build.get("artifact_id") or "")).items()
            data = build.get("custom_data") or {}
            if data.get("source_ami"):
                ctx.facts["parent"] = {"source_ami": data["source_ami"], "name": data.get("source_ami_name", "")}
        hardening = {}
        for region, ami in out:
            h = aws.harden(region, ami, self.spec.lifetime_days, self._from_template())
            hardening[region] = {"imds": h.imds, "deprecation": h.deprecation}
            for note in h.notes:
                ctx.note(note)
        ctx.facts["aws"] = {"hardening": hardening, "endpoint": "custom" if aws.endpoint() else "aws"}
        return out

    def verify(self, artifacts: list[tuple[str, str]], ctx: base.BuildContext) -> base.Verification:
        region, ami = artifacts[0]
        suite = functools.partial(clouds.run_suite, log_dir=ctx.build_dir / "verify")
        with ctx.step(f"boot {ami} in {region} and run the suite"):
            result = aws.verify(region, ami, self.instance_size or "t3.small", self.os_image()["ssh_username"],
                                user_data=VERIFY_USER_DATA, tags={aws.TAG_IMAGE: self.spec.name,
                                                                  aws.TAG_BUILD: ctx.provenance["build_id"]},
                                suite=suite)
        s = result.get("suite", {})
        counts = f" ({s['passed']} passed, {len(s['failed'])} failed)" if s else ""
        summary = (f"instance {result['instance']} of {ami} in {region}: "
                   f"suite {'passed' if result['ok'] else 'FAILED'}{counts}")
        return base.Verification(result["ok"], summary=summary, checks=result, seconds=result["seconds"])

    def publish(self, artifacts: list[tuple[str, str]], verification: base.Verification,
                ctx: base.BuildContext) -> list[tuple[str, str]]:
        """After a passed verification only: tag verified, copy to the other regions, write SSM."""
        if not verification.passed:
            return artifacts
        region, ami = artifacts[0]
        aws.tag(region, ami, {aws.TAG_VERIFIED: "true"})
        tags = aws.tags_of(aws.describe(region, ami) or {})
        missing = [r for r in self.regions if r not in dict(artifacts)]
        with ctx.step(f"copy to {', '.join(missing)}" if missing else "no copies"):
            copies = aws.copy(region, ami, missing, tags) if missing else {}
        for r, copy in copies.items():
            aws.harden(r, copy, self.spec.lifetime_days, by_template=False)
        final = [*artifacts, *copies.items()]
        for r, image_id in final:
            if r != region and r not in copies:
                aws.tag(r, image_id, {aws.TAG_VERIFIED: "true"})  # copied by Packer (plain runs)
            name = aws.publish(self.spec.name, r, image_id)
        ctx.facts.setdefault("aws", {})["ssm_parameter"] = aws.ssm_parameter(self.spec.name)
        ctx.note(f"published {len(final)} AMI(s) as SSM {name}")
        return final

    # -- after the build: select, launch, prune ----------------------------------
    @classmethod
    def available(cls, region: str, artifact: str) -> bool:
        """EC2 still has the AMI and it is available (EC2 launches deregistered AMIs for a while)."""
        return aws.is_available(region, artifact)

    def launch(self, region: str, artifact: str, user_data: str = "") -> tuple[str, str]:
        """An instance of the AMI (IMDSv2 required), as (instance id, address)."""
        inst = aws.launch(region, artifact, self.instance_size or "t3.small", user_data,
                          {aws.TAG_IMAGE: self.spec.name, "djbake:purpose": "launch"})
        return inst.id, f"{inst.host}:{inst.port}" if inst.port != 22 else inst.host

    def prune(self, keep: int, dry_run: bool, cat) -> list:
        """Deregister old AMIs and delete their snapshots in every region the spec or the catalog names."""
        recorded = {e.region for e in cat.query(provider=self.name, image=self.spec.name, state=None)}
        regions = [*self.regions, *sorted(recorded - set(self.regions))]
        aws.check_regions(regions)
        decisions = aws.plan_prune(self.spec.name, regions, keep)
        for d in decisions:
            if d.delete and not dry_run:
                aws.delete(d)
                for e in cat.query(provider=self.name, image=self.spec.name, region=d.region, state=None):
                    if e.artifact == d.image:
                        cat.update(e.id, state="deregistered")
        return decisions
