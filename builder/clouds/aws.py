"""What djbake itself does on AWS with boto3 (Packer only builds the AMI).

After the build: make each region's AMI require IMDSv2 and deprecate it on
time where the Packer in use could not (1.6.x), tag it verified once the
fresh-boot check passed, copy it to the other regions, publish its id in
SSM. Before a deploy: select the newest verified AMI that EC2 still has.
Later: prune old AMIs and their snapshots.

One setting points all of it at an EC2 emulator (moto in our tests):
DJBAKE_AWS_ENDPOINT, read by the Packer template too. It is never set by
default. Credentials come from boto3's usual chain and are never written
anywhere by djbake.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache

from builder import clouds, regions
from builder.errors import BuildFailed, UserError

ENDPOINT_ENV = "DJBAKE_AWS_ENDPOINT"
# Test mode only: the address that stands in for every instance (moto starts none).
SSH_HOST_ENV = "DJBAKE_AWS_SSH_HOST"
SSH_PORT_ENV = "DJBAKE_AWS_SSH_PORT"

TAG_IMAGE = "djbake:image"
TAG_BUILD = "djbake:build-id"
TAG_VERIFIED = "djbake:verified"
TAG_DEPRECATE = "djbake:deprecate-at"
TAG_SOURCE = "djbake:copied-from"
TAG_REVOKED = "djbake:revoked"  # set by `djbake revoke` (builder/clouds/aws_release.py)
# Instances in these states still need their AMI (stopped ones start again).
USING_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def endpoint() -> str | None:
    return os.environ.get(ENDPOINT_ENV) or None


def check_regions(names: list[str]) -> None:
    known = [r.id for r in regions.table("aws")]
    for name in names:
        if name not in known:
            raise UserError(regions.unknown_region_message(name, known, "aws"))


def check_credentials() -> None:
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise UserError("no AWS credentials found",
                        hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")


@lru_cache(maxsize=None)
def client(service: str, region: str):
    """A boto3 client for one region; DJBAKE_AWS_ENDPOINT redirects every service."""
    import boto3
    from botocore.config import Config

    check_regions([region])
    check_credentials()
    return boto3.client(service, region_name=region, endpoint_url=endpoint(),
                        config=Config(retries={"max_attempts": 4, "mode": "standard"}))


def _call(what: str, fn, **kwargs):
    """One AWS call; an answer the user can act on becomes a UserError/BuildFailed line."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from botocore.parsers import ResponseParserError

    try:
        return fn(**kwargs)
    except NoCredentialsError as e:
        raise UserError(f"{what}: no AWS credentials", hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from e
    except ClientError as e:
        err = e.response.get("Error", {})
        code = err.get("Code", "")
        if code in ("AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
                    "AccessDenied", "AccessDeniedException"):
            raise UserError(f"{what}: AWS refused the credentials ({code})",
                            hint="check the access key and its IAM permissions") from e
        raise BuildFailed(f"{what}: {code}: {err.get('Message', '')}") from e
    except (BotoCoreError, ResponseParserError) as e:
        # ResponseParserError: the endpoint answered garbage (an emulator that lacks the call).
        raise BuildFailed(f"{what}: {str(e).splitlines()[0]}") from e


# -- artifacts -----------------------------------------------------------------

def parse_artifact_id(artifact_id: str) -> dict[str, str]:
    """amazon-ebs's artifact id `region:ami,region:ami` -> {region: ami}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in artifact_id.split(","))):
        region, sep, ami = part.partition(":")
        if not sep or not region or not ami.startswith("ami-"):
            raise BuildFailed(f"unexpected amazon-ebs artifact id {artifact_id!r} (want region:ami,region:ami)")
        out[region] = ami
    if not out:
        raise BuildFailed("the amazon-ebs manifest entry names no AMI")
    return out


def describe(region: str, ami: str) -> dict | None:
    """The AMI as EC2 has it now, or None when it is gone."""
    ec2 = client("ec2", region)
    found = _call(f"describe {ami} in {region}", ec2.describe_images,
                  Filters=[{"Name": "image-id", "Values": [ami]}], Owners=["self"])["Images"]
    return found[0] if found else None


def is_available(region: str, ami: str) -> bool:
    # EC2 (and moto) still launch instances from deregistered AMIs for a while:
    # selection must ask for state=available itself.
    image = describe(region, ami)
    return bool(image) and image.get("State") == "available"


def snapshots(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")]


def tag(region: str, ami: str, tags: dict[str, str], image: dict | None = None) -> None:
    """Tag the AMI and its snapshots alike."""
    image = image or describe(region, ami) or {}
    ec2 = client("ec2", region)
    _call(f"tag {ami} in {region}", ec2.create_tags, Resources=[ami, *snapshots(image)],
          Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def tags_of(image: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


@dataclass
class Hardening:
    """What djbake set on the AMI after the build, per attribute: how it went."""

    imds: str = ""
    deprecation: str = ""
    notes: list[str] = field(default_factory=list)


def harden(region: str, ami: str, lifetime_days: int | None, by_template: bool) -> Hardening:
    """IMDSv2-only and deprecation, for Packers whose template could not say so (1.6.x).

    IMDSv2 is also required at every launch djbake makes (launch(), verify),
    so instances are protected even where the AMI attribute did not stick.
    """
    out = Hardening()
    ec2 = client("ec2", region)
    if by_template:
        out.imds = "template (imds_support v2.0)"
    else:
        _call(f"require IMDSv2 on {ami}", ec2.modify_image_attribute, ImageId=ami, ImdsSupport={"Value": "v2.0"})
        out.imds = "modify_image_attribute ImdsSupport=v2.0"
    if lifetime_days:
        at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=lifetime_days)).replace(microsecond=0)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        tag(region, ami, {TAG_DEPRECATE: stamp})
        if by_template:
            out.deprecation = f"template deprecate_at {stamp}"
        else:
            try:
                _call(f"deprecate {ami}", ec2.enable_image_deprecation, ImageId=ami, DeprecateAt=at)
                out.deprecation = f"enable_image_deprecation {stamp}"
            except (BuildFailed, NotImplementedError) as e:
                # The date stays recorded as a tag. (moto lacks this call: its server
                # answers 500, in-process it raises NotImplementedError.)
                out.deprecation = f"tag only {stamp}"
                out.notes.append(f"{region}: EnableImageDeprecation failed ({e}); deprecation recorded as tag")
    return out


def copy(source_region: str, ami: str, regions: list[str], tags: dict[str, str]) -> dict[str, str]:
    """Copy a verified AMI to more regions, encrypted, with the same tags; wait until available."""
    src = describe(source_region, ami)
    if src is None:
        raise BuildFailed(f"{ami} is gone from {source_region}; nothing to copy")
    copies: dict[str, str] = {}
    for region in regions:
        ec2 = client("ec2", region)
        new = _call(f"copy {ami} to {region}", ec2.copy_image, SourceImageId=ami, SourceRegion=source_region,
                    Name=src["Name"], Description=src.get("Description", ""), Encrypted=True)["ImageId"]
        copies[region] = new
    for region, new in copies.items():
        wait_available(region, new)
        tag(region, new, tags | {TAG_SOURCE: f"{source_region}:{ami}"})
    return copies


def wait_available(region: str, ami: str, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        image = describe(region, ami)
        state = (image or {}).get("State", "missing")
        if state == "available":
            return image  # type: ignore[return-value]
        if state in ("failed", "missing", "deregistered", "error") or time.monotonic() > deadline:
            raise BuildFailed(f"{ami} in {region} is {state}, not available")
        time.sleep(15)


def publish(image_name: str, region: str, ami: str) -> str:
    """Write the AMI id to SSM `/djbake/<image>/latest` in its region (resolve:ssm:... selects it)."""
    name = ssm_parameter(image_name)
    ssm = client("ssm", region)
    _call(f"publish {ami} to SSM {name} in {region}", ssm.put_parameter, Name=name, Value=ami, Type="String",
          DataType="aws:ec2:image", Overwrite=True,
          Description=f"newest verified {image_name} AMI, written by djbake")
    return name


def ssm_parameter(image_name: str) -> str:
    return f"/djbake/{image_name}/latest"


def published(image_name: str, region: str) -> str | None:
    ssm = client("ssm", region)
    try:
        return ssm.get_parameter(Name=ssm_parameter(image_name))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


# -- instances -----------------------------------------------------------------

@dataclass
class Instance:
    region: str
    id: str
    host: str
    port: int
    key_name: str | None = None


def launch(region: str, ami: str, instance_type: str, user_data: str, tags: dict[str, str],
           key_name: str | None = None) -> Instance:
    """run_instances with IMDSv2 required; the address is the stand-in's in test mode."""
    if not is_available(region, ami):
        raise UserError(f"{ami} is not available in {region} (deregistered or still pending)",
                        hint="djbake latest --provider aws --region " + region)
    ec2 = client("ec2", region)
    args = dict(ImageId=ami, MinCount=1, MaxCount=1, InstanceType=instance_type, UserData=user_data,
                MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled",
                                 "HttpPutResponseHopLimit": 1},
                TagSpecifications=[{"ResourceType": "instance",
                                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    if key_name:
        args["KeyName"] = key_name
    inst = _call(f"launch {ami} in {region}", ec2.run_instances, **args)["Instances"][0]
    iid = inst["InstanceId"]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 5, "MaxAttempts": 120})
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    except BaseException:
        terminate(region, iid)
        raise
    host, port = address(inst)
    return Instance(region, iid, host, port, key_name)


def address(inst: dict) -> tuple[str, int]:
    override = os.environ.get(SSH_HOST_ENV)
    if override:
        return override, int(os.environ.get(SSH_PORT_ENV) or 22)
    return inst.get("PublicIpAddress") or inst.get("PrivateIpAddress", ""), 22


def terminate(region: str, instance_id: str) -> None:
    ec2 = client("ec2", region)
    _call(f"terminate {instance_id}", ec2.terminate_instances, InstanceIds=[instance_id])


def instance_metadata_options(region: str, instance_id: str) -> dict:
    ec2 = client("ec2", region)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0].get(
        "MetadataOptions", {})


def import_key(region: str, name: str, public: str) -> None:
    """Register the public half of a djbake key pair (the private half never leaves this host)."""
    ec2 = client("ec2", region)
    _call(f"import key pair {name}", ec2.import_key_pair, KeyName=name, PublicKeyMaterial=public.encode())


def delete_key(region: str, name: str) -> None:
    ec2 = client("ec2", region)
    _call(f"delete key pair {name}", ec2.delete_key_pair, KeyName=name)


def images_in_use(region: str) -> set[str]:
    ec2 = client("ec2", region)
    used: set[str] = set()
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": list(USING_STATES)}])
    for page in pages:
        for res in page["Reservations"]:
            used.update(i["ImageId"] for i in res["Instances"])
    return used


# -- prune ---------------------------------------------------------------------

@dataclass
class PruneDecision:
    region: str
    image: str
    build_id: str
    verified: bool
    delete: bool
    why: str
    snapshots: list[str] = field(default_factory=list)


def own_images(region: str, image_name: str) -> list[dict]:
    ec2 = client("ec2", region)
    return _call(f"list {image_name} AMIs in {region}", ec2.describe_images, Owners=["self"],
                 Filters=[{"Name": f"tag:{TAG_IMAGE}", "Values": [image_name]}])["Images"]


def plan_prune(image_name: str, regions: list[str], keep: int) -> list[PruneDecision]:
    """Keep the `keep` newest builds; per region also the newest verified AMI and every AMI in use.
    A revoked AMI counts as neither a build to keep nor verified: it goes unless instances use it."""
    if keep < 1:
        raise UserError("--keep must be at least 1")
    found = {r: [i for i in own_images(r, image_name) if i.get("State") != "deregistered"] for r in regions}
    builds = sorted({tags_of(i).get(TAG_BUILD, "") for imgs in found.values() for i in imgs
                     if TAG_REVOKED not in tags_of(i)}, reverse=True)
    kept_builds = set(builds[:keep])
    out: list[PruneDecision] = []
    for region, imgs in found.items():
        used = images_in_use(region) if imgs else set()
        verified = [i for i in imgs if tags_of(i).get(TAG_VERIFIED) == "true" and i.get("State") == "available"
                    and TAG_REVOKED not in tags_of(i)]
        newest_verified = max(verified, key=lambda i: (tags_of(i).get(TAG_BUILD, ""), i.get("CreationDate", "")),
                              default=None)
        for img in imgs:
            t = tags_of(img)
            build = t.get(TAG_BUILD, "")
            in_use = img["ImageId"] in used
            if TAG_REVOKED in t:
                keep_it, why = in_use, "revoked; instances use it" if in_use else "revoked"
            elif build in kept_builds:
                keep_it, why = True, f"one of the {keep} newest builds"
            elif newest_verified is not None and img["ImageId"] == newest_verified["ImageId"]:
                keep_it, why = True, "the newest verified AMI in this region"
            elif img["ImageId"] in used:
                keep_it, why = True, "instances use it"
            else:
                keep_it, why = False, "older than the kept builds"
            out.append(PruneDecision(region, img["ImageId"], build, t.get(TAG_VERIFIED) == "true",
                                     not keep_it, why, snapshots(img)))
    return out


def delete(decision: PruneDecision) -> None:
    ec2 = client("ec2", decision.region)
    _call(f"deregister {decision.image}", ec2.deregister_image, ImageId=decision.image)
    for snap in decision.snapshots:
        _call(f"delete snapshot {snap}", ec2.delete_snapshot, SnapshotId=snap)


# -- fresh-boot verification ----------------------------------------------------

def verify(region: str, ami: str, instance_type: str, user: str, user_data: str = "",
           tags: dict[str, str] | None = None, suite=None, ssh_timeout: float = 600) -> dict:
    """Boot an instance of the AMI, run the testinfra suite over SSH, terminate it whatever happens.

    The key pair is made here and only its public half is imported, so the
    private key never travels through the EC2 API.
    """
    import secrets


    suite = suite or clouds.run_suite
    key = clouds.temporary_key()
    name = f"djbake-verify-{ami}-{secrets.token_hex(3)}"
    inst = None
    started = time.monotonic()
    try:
        import_key(region, name, key.public)
        inst = launch(region, ami, instance_type, user_data, (tags or {}) | {"djbake:purpose": "verify"},
                      key_name=name)
        clouds.wait_for_login(inst.host, inst.port, user, key.private_file, timeout=ssh_timeout)
        result = suite(inst.host, inst.port, user, key.private_file)
        out = {"ok": bool(getattr(result, "ok", result)), "instance": inst.id, "region": region,
               "imds_http_tokens": instance_metadata_options(region, inst.id).get("HttpTokens", ""),
               "seconds": round(time.monotonic() - started, 1)}
        if hasattr(result, "as_dict"):
            # Counts and failed checks, so the catalog and `djbake verify` show what really ran.
            out["suite"] = result.as_dict()
        return out
    finally:
        try:
            if inst is not None:
                terminate(region, inst.id)
            delete_key(region, name)
        finally:
            key.remove()
