"""builder/clouds/aws.py against moto in-process (no server, no Packer): the boto3 half of issue 5.

The end-to-end run with the real Packer, moto_server and a stand-in host is
tests/test_aws_moto.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.clouds import aws
from builder.errors import BuildFailed, UserError

AMIS = Path(__file__).parent / "aws" / "amis.json"
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]


@pytest.fixture
def ec2(monkeypatch):
    """moto in-process with our Debian-like AMIs; every region fresh."""
    monkeypatch.setenv("MOTO_AMIS_PATH", str(AMIS))
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(aws.ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(aws.SSH_HOST_ENV, raising=False)
    from moto import mock_aws

    aws.client.cache_clear()
    with mock_aws():
        yield aws.client("ec2", "us-east-1")
    aws.client.cache_clear()


def _bake(ec2, build_id: str, name: str = "django-web", verified: bool = False) -> str:
    """An AMI as Packer leaves it: made from an instance, tagged with provenance."""
    inst = ec2.run_instances(ImageId="ami-0d1ebd1a2b3c4d5e7", MinCount=1, MaxCount=1)["Instances"][0]
    ami = ec2.create_image(InstanceId=inst["InstanceId"], Name=f"{name}-1.0-{build_id}")["ImageId"]
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    tags = {aws.TAG_IMAGE: name, aws.TAG_BUILD: build_id}
    if verified:
        tags[aws.TAG_VERIFIED] = "true"
    aws.tag("us-east-1", ami, tags)
    return ami


def test_artifact_id_is_parsed_per_region():
    assert aws.parse_artifact_id("ap-northeast-1:ami-3,eu-west-1:ami-2,us-east-1:ami-1") == {
        "ap-northeast-1": "ami-3", "eu-west-1": "ami-2", "us-east-1": "ami-1"}
    for bad in ("", "us-east-1", "us-east-1:snap-1", ":ami-1"):
        with pytest.raises(BuildFailed):
            aws.parse_artifact_id(bad)


def test_unknown_region_and_missing_credentials_are_user_errors(monkeypatch):
    with pytest.raises(UserError, match="did you mean 'eu-west-1'"):
        aws.check_regions(["eu-wset-1"])
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.client.cache_clear()
    with pytest.raises(UserError, match="no AWS credentials"):
        aws.client("ec2", "us-east-1")


def test_endpoint_is_off_by_default(monkeypatch):
    monkeypatch.delenv(aws.ENDPOINT_ENV, raising=False)
    assert aws.endpoint() is None
    monkeypatch.setenv(aws.ENDPOINT_ENV, "http://127.0.0.1:5000")
    assert aws.endpoint() == "http://127.0.0.1:5000"


def test_copy_tags_copies_and_snapshots_and_ssm(ec2):
    ami = _bake(ec2, "20260101000000-aaaaaa", verified=True)
    copies = aws.copy("us-east-1", ami, ["eu-west-1", "ap-northeast-1"], aws.tags_of(aws.describe("us-east-1", ami)))
    assert set(copies) == {"eu-west-1", "ap-northeast-1"}
    for region, copy in copies.items():
        image = aws.describe(region, copy)
        tags = aws.tags_of(image)
        assert tags[aws.TAG_VERIFIED] == "true" and tags[aws.TAG_SOURCE] == f"us-east-1:{ami}"
        snap_tags = aws.client("ec2", region).describe_snapshots(SnapshotIds=aws.snapshots(image))["Snapshots"][0]
        assert {t["Key"]: t["Value"] for t in snap_tags["Tags"]}[aws.TAG_IMAGE] == "django-web"
        aws.publish("django-web", region, copy)
        assert aws.published("django-web", region) == copy
    assert aws.published("django-web", "us-east-1") is None


def test_harden_for_packer_16_tags_the_deprecation_date(ec2):
    ami = _bake(ec2, "20260101000000-aaaaaa")
    h = aws.harden("us-east-1", ami, lifetime_days=30, by_template=False)
    assert h.imds == "modify_image_attribute ImdsSupport=v2.0"
    # moto has no EnableImageDeprecation: the date is kept as a tag and said so.
    assert h.deprecation.startswith(("enable_image_deprecation", "tag only"))
    assert aws.TAG_DEPRECATE in aws.tags_of(aws.describe("us-east-1", ami))
    assert aws.harden("us-east-1", ami, None, by_template=True).imds.startswith("template")


def test_deregistered_ami_is_not_available_and_launch_refuses_it(ec2):
    ami = _bake(ec2, "20260101000000-aaaaaa")
    assert aws.is_available("us-east-1", ami)
    ec2.deregister_image(ImageId=ami)
    assert not aws.is_available("us-east-1", ami)
    with pytest.raises(UserError, match="not available"):
        aws.launch("us-east-1", ami, "t3.small", "", {})


def test_launch_requires_imdsv2_and_passes_user_data(ec2):
    ami = _bake(ec2, "20260101000000-aaaaaa")
    inst = aws.launch("us-east-1", ami, "t3.small", "#!/bin/sh\necho hi\n", {"djbake:purpose": "test"})
    assert aws.instance_metadata_options("us-east-1", inst.id)["HttpTokens"] == "required"
    data = ec2.describe_instance_attribute(InstanceId=inst.id, Attribute="userData")["UserData"]["Value"]
    import base64

    assert base64.b64decode(data).decode() == "#!/bin/sh\necho hi\n"
    assert inst.host  # the instance's address (no stand-in override here)


def test_prune_keeps_newest_builds_newest_verified_and_images_in_use(ec2):
    old_verified = _bake(ec2, "20260101000000-aaaaaa", verified=True)
    used = _bake(ec2, "20260102000000-bbbbbb")
    gone = _bake(ec2, "20260103000000-cccccc")
    newest = _bake(ec2, "20260104000000-dddddd")
    ec2.run_instances(ImageId=used, MinCount=1, MaxCount=1)
    other = _bake(ec2, "20260105000000-eeeeee", name="other-image")
    decisions = {d.image: d for d in aws.plan_prune("django-web", ["us-east-1"], keep=1)}
    assert set(decisions) == {old_verified, used, gone, newest}
    assert not decisions[newest].delete and not decisions[old_verified].delete and not decisions[used].delete
    assert decisions[gone].delete
    snaps = decisions[gone].snapshots
    assert snaps
    aws.delete(decisions[gone])
    assert aws.describe("us-east-1", gone) is None
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snaps}])["Snapshots"]
    assert aws.describe("us-east-1", other) is not None
    with pytest.raises(UserError):
        aws.plan_prune("django-web", ["us-east-1"], keep=0)


def test_verify_terminates_the_instance_and_deletes_the_key_even_when_the_suite_fails(ec2, monkeypatch):
    from builder import clouds

    ami = _bake(ec2, "20260101000000-aaaaaa")
    monkeypatch.setattr(clouds, "wait_for_login", lambda *a, **k: None)
    seen = {}

    def failing_suite(host, port, user, key_file):
        seen.update(user=user, key=Path(key_file).read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY"))
        raise BuildFailed("suite exploded")

    with pytest.raises(BuildFailed, match="exploded"):
        aws.verify("us-east-1", ami, "t3.small", "admin", suite=failing_suite)
    assert seen == {"user": "admin", "key": True}
    states = {i["State"]["Name"] for r in ec2.describe_instances(
        Filters=[{"Name": "tag:djbake:purpose", "Values": ["verify"]}])["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    assert not [k for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"].startswith("djbake-verify")]

    result = aws.verify("us-east-1", ami, "t3.small", "admin", suite=lambda *a: True)
    assert result["ok"] and result["imds_http_tokens"] == "required"


def test_amis_fixture_is_debian_and_canonical_like():
    amis = json.loads(AMIS.read_text())
    assert {a["owner_id"] for a in amis} == {"136693071363", "099720109477"}
    assert all(a["root_device_type"] == "ebs" for a in amis)
