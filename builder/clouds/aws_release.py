"""Channels and revocation on AWS: SSM parameters Terraform reads, AMI deprecation.

A channel of an image is published per region as the SSM parameter
`/djbake/<image>/<channel>` (data type aws:ec2:image), so Terraform selects
it with a plain `aws_ssm_parameter` data source and no djbake at plan time.
Revoking a build deprecates its AMIs (EnableImageDeprecation; where the API
lacks it, as moto does, the revocation is recorded as tags and said so),
deletes the channel parameters that pointed at it (a consumer fails closed:
ParameterNotFound, never the revoked AMI) and moves `/djbake/<image>/latest`
to the newest unrevoked verified AMI of the region (or deletes it).
"""
from __future__ import annotations

import datetime as dt

from builder.clouds import aws
from builder.errors import BuildFailed

TAG_REVOKED = aws.TAG_REVOKED


def channel_parameter(image_name: str, channel: str) -> str:
    return f"/djbake/{image_name}/{channel}"


def publish_channel(image_name: str, channel: str, entries) -> list[str]:
    """One parameter per region of the build's entries; returns what was written."""
    notes = []
    name = channel_parameter(image_name, channel)
    for e in entries:
        ssm = aws.client("ssm", e.region)
        aws._call(f"publish {e.artifact} to SSM {name} in {e.region}", ssm.put_parameter, Name=name,
                  Value=e.artifact, Type="String", DataType="aws:ec2:image", Overwrite=True,
                  Description=f"{image_name} channel {channel}: build {e.build_id}, written by djbake")
        notes.append(f"SSM {name} in {e.region} = {e.artifact}")
    return notes


def withdraw(name: str, region: str) -> bool:
    """Delete one parameter; False when it was not there."""
    ssm = aws.client("ssm", region)
    try:
        ssm.delete_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def value(name: str, region: str) -> str | None:
    ssm = aws.client("ssm", region)
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def deprecate_now(region: str, ami: str, reason: str | None) -> str:
    """Deprecate the AMI (a minute from now: the API refuses a past time) and tag why; says how it went."""
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    aws.tag(region, ami, {TAG_REVOKED: (reason or "revoked")[:256], aws.TAG_DEPRECATE: stamp})
    try:
        aws._call(f"deprecate {ami}", aws.client("ec2", region).enable_image_deprecation, ImageId=ami,
                  DeprecateAt=at)
        return f"{ami} in {region}: deprecated at {stamp}"
    except (BuildFailed, NotImplementedError):
        # moto lacks EnableImageDeprecation (in-process: NotImplementedError; its server: a 500).
        return f"{ami} in {region}: EnableImageDeprecation unavailable; revocation recorded as tags {TAG_REVOKED}"


def revoke(image_name: str, revoked, pointing: list[dict], replacement: dict[str, str | None],
           reason: str | None) -> list[str]:
    """Deprecate the revoked AMIs and update SSM. `replacement`: region -> newest unrevoked verified AMI."""
    notes = [deprecate_now(e.region, e.artifact, reason) for e in revoked]
    amis = {e.artifact for e in revoked}
    for e in revoked:
        for a in pointing:
            name = channel_parameter(image_name, a["channel"])
            if withdraw(name, e.region):
                notes.append(f"SSM {name} in {e.region} deleted (it pointed at the revoked build)")
        latest = aws.ssm_parameter(image_name)
        if value(latest, e.region) in amis:
            new = replacement.get(e.region)
            if new:
                aws.publish(image_name, e.region, new)
                notes.append(f"SSM {latest} in {e.region} = {new}")
            elif withdraw(latest, e.region):
                notes.append(f"SSM {latest} in {e.region} deleted (no unrevoked verified AMI left there)")
    return notes
