"""Channels and revocation on AWS, against moto in-process (a stand-in for EC2 and SSM; no cloud contacted).

A channel is an SSM parameter `/djbake/<image>/<channel>` per region, which
Terraform reads with a plain `aws_ssm_parameter` data source; revoking a
build deprecates its AMIs (moto lacks EnableImageDeprecation: the tags say
so), deletes the channel parameters that pointed at it and moves
`/djbake/<image>/latest` back to the newest unrevoked verified AMI.
"""
from __future__ import annotations

import pytest

from builder import cli
from builder.catalog import store as catalog
from builder.clouds import aws, aws_release
from tests.test_aws_ops import _bake, ec2  # noqa: F401  (ec2: the moto fixture)

REGIONS = ("us-east-1", "eu-west-1")
PARAM = "/djbake/django-web/production"


@pytest.fixture
def builds(ec2, catalog_at, monkeypatch):  # noqa: F811
    where = catalog_at()
    monkeypatch.setenv("DJBAKE_CATALOG", where)
    monkeypatch.setenv("DJBAKE_ACTOR", "ci-runner-3")
    cat = catalog.Catalog(where)
    amis = {}
    for n, build in enumerate(("20261128000000-aaaaaa", "20261129000000-bbbbbb")):
        first = _bake(ec2, build, verified=True)
        copies = aws.copy("us-east-1", first, ["eu-west-1"], aws.tags_of(aws.describe("us-east-1", first)))
        amis[build] = {"us-east-1": first, **copies}
        cat.add([catalog.Entry(build, "django-web", f"2026.11.{28 + n}", "aws", r, amis[build][r], verified=True)
                 for r in REGIONS])
        for r in REGIONS:
            aws.publish("django-web", r, amis[build][r])  # what the build's publish step does
    return cat, amis


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_channel_is_published_per_region_and_revocation_updates_ssm(builds, capsys):
    cat, amis = builds
    old, new = "20261128000000-aaaaaa", "20261129000000-bbbbbb"
    code, out, _ = run(capsys, "channel", "set", "production", "django-web", old, "--provider", "aws")
    assert code == 0, out
    assert {r: aws_release.value(PARAM, r) for r in REGIONS} == amis[old]
    assert run(capsys, "channel", "set", "production", "django-web", new, "-p", "aws")[0] == 0
    assert {r: aws_release.value(PARAM, r) for r in REGIONS} == amis[new]
    assert run(capsys, "latest", "-p", "aws", "-r", "eu-west-1", "--channel", "production")[1].strip() == \
        amis[new]["eu-west-1"]

    code, out, _ = run(capsys, "revoke", new, "--reason", "CVE-2026-1234")
    assert code == 0, out
    for r in REGIONS:
        tags = aws.tags_of(aws.describe(r, amis[new][r]))
        assert tags[aws_release.TAG_REVOKED] == "CVE-2026-1234" and aws.TAG_DEPRECATE in tags
        assert aws_release.value(PARAM, r) is None  # Terraform fails closed, never gets the revoked AMI
        assert aws.published("django-web", r) == amis[old][r]  # latest moved back
    assert f"SSM {PARAM} in us-east-1 deleted" in out
    assert "djbake channel rollback production django-web --provider aws" in out

    code, _, err = run(capsys, "latest", "-p", "aws", "--channel", "production")
    assert code == 2 and "revoked (CVE-2026-1234)" in err and "channel rollback production" in err
    assert run(capsys, "latest", "-p", "aws", "-r", "us-east-1")[1].strip() == amis[old]["us-east-1"]
    code, _, err = run(capsys, "channel", "set", "staging", "django-web", new, "-p", "aws")
    assert code == 2 and "revoked" in err

    code, out, _ = run(capsys, "channel", "rollback", "production", "django-web", "-p", "aws")
    assert code == 0 and f"{new} -> {old}" in out
    assert {r: aws_release.value(PARAM, r) for r in REGIONS} == amis[old]


def test_prune_deletes_a_revoked_build_unless_in_use(builds, capsys):
    cat, amis = builds
    old, new = "20261128000000-aaaaaa", "20261129000000-bbbbbb"
    assert run(capsys, "revoke", new, "--reason", "bad")[0] == 0
    decisions = {d.image: d for d in aws.plan_prune("django-web", list(REGIONS), keep=1)}
    for r in REGIONS:
        assert decisions[amis[new][r]].delete and decisions[amis[new][r]].why == "revoked"
        assert not decisions[amis[old][r]].delete  # now the newest unrevoked build
    aws.client("ec2", "us-east-1").run_instances(ImageId=amis[new]["us-east-1"], MinCount=1, MaxCount=1)
    decisions = {d.image: d for d in aws.plan_prune("django-web", list(REGIONS), keep=1)}
    assert not decisions[amis[new]["us-east-1"]].delete and decisions[amis[new]["eu-west-1"]].delete
