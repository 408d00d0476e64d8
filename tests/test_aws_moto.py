"""AWS end to end against an EC2 emulator: bake, verify, copy, select, publish, launch, prune.

The real Packer (amazon-ebs, the same template as in production) and the
real `djbake` CLI run against moto_server on a free 127.0.0.1 port
(DJBAKE_AWS_ENDPOINT). moto's instances are mirrored onto Docker containers
(tests/aws/harness.py), so the provisioning scripts, the in-build gate, the
seal and the fresh-boot verification suite really run on a Debian 12 host,
never on the CI host itself. Packer's temporary key pair reaches the
stand-in through sshd's AuthorizedKeysCommand asking moto for the instance's
key pair, as cloud-init would write it on EC2. `djbake verify --provider aws`
runs the testinfra fresh-boot suite over SSH against the stand-in booted
from the AMI's committed disk.

Runs in `make test` / .ci/run; skips only without docker.io or moto's server
(`make test` installs both). moto's server, the containers, their committed
images and the network are removed at the end, also on failure.

What this cannot prove, because moto keeps records and nothing else:
- nothing is written to an EBS disk: an AMI is a record, its "disk" here is
  the committed container; a region copy is another record pointing at it;
- the instance is not a VM of that AMI: no kernel, bootloader, cloud-init,
  ENA/NVMe drivers or EC2 metadata service (IMDSv2) are exercised, and the
  suite's `kernel` checks (swap, time sync) skip as in any container;
- IAM, quotas, encryption with KMS, the time AMIs and copies take (minutes
  on AWS, instant here), EnableImageDeprecation (moto lacks it: the date is
  a tag) and ImdsSupport (moto accepts and forgets it: djbake also requires
  IMDSv2 at every launch, which moto records and this test checks).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aws import harness  # tests/aws/

pytestmark = [pytest.mark.moto, pytest.mark.docker]

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(__file__).parent / "aws" / "spec.yaml"
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]
DJBAKE = [sys.executable, "-m", "builder"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """moto_server + relay + instance mirror; everything stopped by PID/id afterwards."""
    # `make test` installs both (Makefile APT_PACKAGES, pyproject's test extra).
    if shutil.which("dockerd") is None:
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    if not Path(sys.executable).with_name("moto_server").exists():
        pytest.skip("moto's server is not installed (pip install -e '.[test]')")
    import docker

    subprocess.run(["bash", str(ROOT / "scripts" / "host" / "start-dockerd.sh")], check=True)
    client = docker.from_env(timeout=600)
    tmp = tmp_path_factory.mktemp("aws")
    standin = harness.standin_image(client)
    moto = harness.MotoServer(tmp / "moto.log")
    relay = mirror = None
    timings: list[tuple[str, float]] = []
    try:
        moto.start()
        mirror = harness.InstanceMirror(client, moto.url, "", REGIONS, standin,
                                        harness.host_resolv_conf(tmp / "resolv.conf"))
        relay = harness.Relay((harness.GATEWAY, 0), ("127.0.0.1", moto.port))
        relay.start()
        mirror.relay_url = f"http://{harness.GATEWAY}:{relay.server.getsockname()[1]}"
        mirror.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(harness.CREDENTIALS, DJBAKE_AWS_ENDPOINT=moto.url, DJBAKE_AWS_SSH_HOST=harness.STANDIN_IP,
                   DJBAKE_AWS_SSH_PORT="22", DJBAKE_CATALOG=str(tmp / "catalog.sqlite"),
                   AWS_EC2_METADATA_DISABLED="true")
        yield {"moto": moto, "mirror": mirror, "env": env, "tmp": tmp, "timings": timings}
    finally:
        print("djbake step timings (s):", timings, file=sys.stderr)
        if mirror is not None:
            mirror.stop()
        if relay is not None:
            relay.stop()
        moto.stop()


def djbake(emulator, *args, check=True, timeout=3600) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run([*DJBAKE, *args], cwd=ROOT, env=emulator["env"], capture_output=True, text=True,
                          timeout=timeout)
    emulator["timings"].append((" ".join(args[:3]), round(time.monotonic() - started, 1)))
    if check and proc.returncode != 0:
        raise AssertionError(f"djbake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}\n{emulator['mirror'].diagnose()}")
    return proc


def ec2(emulator, region):
    import boto3

    return boto3.client("ec2", region_name=region, endpoint_url=emulator["moto"].url,
                        aws_access_key_id="testing", aws_secret_access_key="testing-not-secret")


def test_bake_verify_copy_select_launch_prune(emulator):
    env, mirror = emulator["env"], emulator["mirror"]
    out = emulator["tmp"] / "build"

    # 1. Bake with the real amazon-ebs builder; verify; copy; publish. Twice, for prune.
    amis = []
    for n in range(2):
        proc = djbake(emulator, "image", "--provider", "aws", "--spec", str(SPEC), "--out", str(out), "--plain")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("aws ")]
        made = {line.split()[1].rstrip(":"): line.split()[2] for line in lines}
        assert set(made) == set(REGIONS), proc.stdout
        assert all("(verified" in line for line in lines), proc.stdout
        amis.append(made)

    # The build really ran in a stand-in container, and the verification booted the sealed disk.
    assert any("committed disk" in e for e in mirror.events), mirror.events
    assert not mirror.errors, mirror.errors

    # 2. Provenance and hardening on every region's AMI and snapshot.
    for made in amis:
        for region, ami in made.items():
            image = ec2(emulator, region).describe_images(ImageIds=[ami])["Images"][0]
            tags = {t["Key"]: t["Value"] for t in image["Tags"]}
            assert tags["djbake:image"] == "django-aws-test" and tags["djbake:verified"] == "true"
            assert tags["djbake:build-id"] and tags["djbake:spec-hash"] and tags["djbake:git-commit"]
            assert "djbake:deprecate-at" in tags
            if region != "us-east-1":
                assert tags["djbake:copied-from"] == f"us-east-1:{made['us-east-1']}"
    # Verification instances required IMDSv2 and were terminated.
    verify_instances = [i for r in ec2(emulator, "us-east-1").describe_instances(
        Filters=[{"Name": "tag:djbake:purpose", "Values": ["verify"]}])["Reservations"] for i in r["Instances"]]
    assert len(verify_instances) == 2
    assert all(i["State"]["Name"] == "terminated" for i in verify_instances)
    assert all(i["MetadataOptions"]["HttpTokens"] == "required" for i in verify_instances)

    # The catalog has one verified entry per region and build, with that AMI id, and the
    # in-build verification ran the fresh-boot suite (counts recorded).
    from builder.catalog import store as catalog

    entries = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="aws", image="django-aws-test")
    assert {(e.region, e.artifact) for e in entries} == {(r, a) for made in amis for r, a in made.items()}
    assert all(e.verified for e in entries)
    # the parent image: the AMI the source filter picked, from Packer's build variables via the manifest
    ours = {a for made in amis for a in made.values()}
    parents = {e.extra.get("parent", {}).get("source_ami") for e in entries if e.region == "us-east-1"}
    assert len(parents) == 1 and not parents & ours, [e.extra.get("parent") for e in entries]
    (parent,) = ec2(emulator, "us-east-1").describe_images(ImageIds=list(parents))["Images"]
    assert all(e.extra["parent"]["name"] == parent["Name"] for e in entries if e.region == "us-east-1")
    assert all(e.extra["sbom"]["deb"] > 100 for e in entries), [e.extra.get("sbom") for e in entries]
    assert all(" passed, 0 failed)" in e.verification["summary"] for e in entries if e.region == "us-east-1"), \
        [e.verification for e in entries]

    # 3. latest per region = the newest build, and SSM says the same.
    import boto3

    for region in REGIONS:
        latest = djbake(emulator, "latest", "--provider", "aws", "--region", region).stdout.strip()
        assert latest == amis[1][region]
        ssm = boto3.client("ssm", region_name=region, endpoint_url=emulator["moto"].url,
                           aws_access_key_id="testing", aws_secret_access_key="testing-not-secret")
        assert ssm.get_parameter(Name="/djbake/django-aws-test/latest")["Parameter"]["Value"] == amis[1][region]

    # 3b. `djbake verify --provider aws` again on the newest catalogued AMI: an instance of it
    #     (the stand-in booted from the committed, sealed disk), the fresh-boot testinfra suite
    #     over SSH, the instance terminated.
    booted_before = len(mirror.events)
    result = json.loads(djbake(emulator, "verify", "--provider", "aws", "--spec", str(SPEC)).stdout)
    suite = result["checks"]["suite"]
    assert result["passed"] and suite["ok"] and suite["failed"] == [], result
    assert suite["passed"] >= 30 and "fresh_boot" in suite["markers"], suite
    # testinfra went over SSH to the instance's address (the stand-in), as the image's default user.
    assert Path(suite["log"]).read_text().startswith(f"# admin@{harness.STANDIN_IP}:22: "), suite["log"]
    # Not root: every command through one root process started with sudo (builder/bake/root_shell.py).
    assert f"--hosts=djbake-root://admin@{harness.STANDIN_IP}:22" in Path(suite["log"]).read_text().splitlines()[0]
    instance = result["checks"]["instance"]
    boot = [e for e in mirror.events[booted_before:] if e.startswith(f"{instance} running")]
    assert boot and "aws-standin:" not in boot[0], mirror.events  # the AMI's disk, not the source stand-in
    assert ec2(emulator, result["checks"]["region"]).describe_instances(InstanceIds=[instance])[
        "Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    # The verification's user-data ran at that instance's boot (cloud-init's part of the stand-in).
    assert "user-data ran" in mirror.read_file(instance, "/var/lib/djbake/verify-user-data")

    # 4. A deregistered AMI is never selected (moto would still launch it).
    ec2(emulator, "ap-northeast-1").deregister_image(ImageId=amis[1]["ap-northeast-1"])
    assert djbake(emulator, "latest", "--provider", "aws", "--region", "ap-northeast-1").stdout.strip() \
        == amis[0]["ap-northeast-1"]
    bad = djbake(emulator, "latest", "--provider", "aws", "--region", "eu-wset-1", check=False)
    assert bad.returncode == 2 and "eu-west-1" in bad.stderr

    # 5. launch: an instance of the newest verified AMI, IMDSv2 required, with user-data.
    user_data = emulator["tmp"] / "user-data.sh"
    user_data.write_text("#!/bin/sh\necho launched > /var/lib/djbake-launched\n")
    launched = djbake(emulator, "launch", "--provider", "aws", "--region", "us-east-1", "--spec", str(SPEC),
                      "--user-data", str(user_data)).stdout.split()
    instance_id, address = launched[0], launched[1]
    assert instance_id.startswith("i-") and address == harness.STANDIN_IP and amis[1]["us-east-1"] in launched[2]
    inst = ec2(emulator, "us-east-1").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert inst["ImageId"] == amis[1]["us-east-1"] and inst["MetadataOptions"]["HttpTokens"] == "required"
    # An older AMI that an instance still uses must survive prune.
    ec2(emulator, "eu-west-1").run_instances(ImageId=amis[0]["eu-west-1"], MinCount=1, MaxCount=1)

    # 6. prune --keep 1: in each region only the newest build stays, except where the newest is
    #    gone (ap-northeast-1: the older, verified one stays as the newest verified there).
    def owned():
        return {r: {i["ImageId"]: [m["Ebs"]["SnapshotId"] for m in i["BlockDeviceMappings"] if "Ebs" in m]
                    for i in ec2(emulator, r).describe_images(Owners=["self"])["Images"]} for r in REGIONS}

    before = owned()
    dry = djbake(emulator, "prune", "--provider", "aws", "--spec", str(SPEC), "--keep", "1", "--dry-run")
    doomed = [line.split()[3] for line in dry.stdout.splitlines() if line.startswith("would delete ")
              and " ami-" in line]
    assert doomed == [amis[0]["us-east-1"]], dry.stdout
    assert owned() == before  # a dry run changes nothing
    djbake(emulator, "prune", "--provider", "aws", "--spec", str(SPEC), "--keep", "1")
    left = owned()
    assert {r: set(images) for r, images in left.items()} == {
        "us-east-1": {amis[1]["us-east-1"]},
        "eu-west-1": {amis[1]["eu-west-1"], amis[0]["eu-west-1"]},   # an instance still uses the older one
        "ap-northeast-1": {amis[0]["ap-northeast-1"]}}                 # the newest verified one left there
    # The pruned AMI's snapshots are deleted too; the kept AMIs' snapshots stay.
    snaps = {s["SnapshotId"] for s in ec2(emulator, "us-east-1").describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert before["us-east-1"][amis[0]["us-east-1"]] and not set(before["us-east-1"][amis[0]["us-east-1"]]) & snaps
    assert set(left["us-east-1"][amis[1]["us-east-1"]]) <= snaps
    gone = catalog.Catalog(Path(env["DJBAKE_CATALOG"])).query(provider="aws", image="django-aws-test",
                                                               state="deregistered")
    assert [(e.region, e.artifact) for e in gone] == [("us-east-1", amis[0]["us-east-1"])]
    assert "deregistered" in djbake(emulator, "images", "--provider", "aws").stdout
