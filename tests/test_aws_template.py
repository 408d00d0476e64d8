"""The amazon-ebs template: source images per OS/arch, gp3, IMDSv2, deprecation, test-mode overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from builder import spec as spec_mod
from builder.providers import aws

HERE = Path(__file__).parent


def _spec(**changes):
    base = spec_mod.load(HERE / "specs" / "golden.yaml")
    return base.model_copy(update=changes)


@pytest.mark.parametrize("os_name,arch,owner,name,aws_arch", [
    ("debian-12", "amd64", "136693071363", "debian-12-amd64-*", "x86_64"),
    ("debian-12", "arm64", "136693071363", "debian-12-arm64-*", "arm64"),
    ("ubuntu-24.04", "amd64", "099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "x86_64"),
    ("ubuntu-22.04", "arm64", "099720109477", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*", "arm64"),
])
def test_official_source_images(os_name, arch, owner, name, aws_arch):
    src = aws.Provider(_spec(os=os_name, arch=arch)).source()
    f = src["source_ami_filter"]
    assert f["owners"] == [owner] and f["most_recent"] is True
    assert f["filters"]["name"] == name and f["filters"]["architecture"] == aws_arch
    assert f["filters"]["root-device-type"] == "ebs"
    if arch == "arm64":
        assert src["instance_type"].startswith(("t4g", "m7g", "c7g")) or src["instance_type"] == "t3.small"


def test_root_volume_is_encrypted_gp3_with_throughput_and_iops():
    src = aws.Provider(_spec()).source()
    (vol,) = src["launch_block_device_mappings"]
    assert vol["volume_type"] == "gp3" and vol["encrypted"] and vol["throughput"] >= 125 and vol["iops"] >= 3000
    assert src["encrypt_boot"] is True


def test_imdsv2_and_deprecation_in_the_template_only_for_packer_17_and_newer():
    spec = _spec(lifetime_days=90)
    old = aws.Provider(spec, (1, 6, 6)).source()
    assert "metadata_options" not in old and "deprecate_at" not in old and "imds_support" not in old
    new = aws.Provider(spec, (1, 11, 2)).source()
    assert new["metadata_options"]["http_tokens"] == "required" and new["imds_support"] == "v2.0"
    assert new["deprecate_at"] == '${timeadd(timestamp(), "2160h")}'
    assert "deprecate_at" not in aws.Provider(_spec(), (1, 11, 2)).source()


def test_provenance_tags_everywhere_and_unique_names():
    src = aws.Provider(_spec()).source()
    for key in ("tags", "snapshot_tags", "run_tags"):
        assert {"djbake:image", "djbake:version", "djbake:build-id", "djbake:git-commit",
                "djbake:spec-hash"} <= set(src[key])
    assert "${var.build_id}" in src["ami_name"]


def test_test_mode_overrides_default_to_off():
    p = aws.Provider(_spec())
    src, variables = p.source(), p.extra_variables()
    assert src["ssh_host"] == "${var.aws_ssh_host}"
    assert variables["aws_ssh_host"]["default"] == '${env("DJBAKE_AWS_SSH_HOST")}'
    assert variables["aws_endpoint"]["default"] == '${env("DJBAKE_AWS_ENDPOINT")}'
    # Plain `packer build` copies to every spec region; djbake copies after verification.
    assert variables["aws_copy_regions"]["default"] == p.regions[1:]
    assert src["ami_regions"] == "${var.aws_copy_regions}"
