"""Linode operations (builder/clouds/linode.py) against a local stand-in of the Linode API v4.

The stand-in (tests/standins/linode.py) is not Linode: it answers the calls
djbake makes the way Linode's API reference documents them, including 401,
404, 429/5xx and paged lists. Live tests at the end run against Linode
when LINODE_TOKEN is set.
"""
from __future__ import annotations

import base64
import os

import pytest

from builder.clouds import linode as ops
from builder.errors import BuildFailed, UserError
from tests.standins.linode import TOKEN, LinodeStandIn


@pytest.fixture
def standin():
    with LinodeStandIn() as s:
        yield s


@pytest.fixture
def api(standin):
    c = ops.client(TOKEN, base_url=standin.url + "/v4", retry_interval=0.001)
    c.page_size = 25
    return c


def _seed(standin, n=3, verified=(1,)):
    ids = []
    for k in range(n):
        tags = [ops.TAG_VERIFIED] if k in verified else []
        ids.append(standin.add_image(f"django-web-1.{k}-b{k}", f"2026-11-{10 + k:02d}T00:00:00", tags=tags))
    standin.add_image("other-app-1.0-b1", "2026-11-28T00:00:00", tags=[ops.TAG_VERIFIED])
    return ids


def test_latest_picks_newest_verified_across_pages(standin, api):
    ids = _seed(standin, n=30, verified=(3, 17))  # 31 private images: two pages of 25
    img = ops.latest(api, "django-web")
    assert img.id == ids[17] and img.verified
    assert ops.latest(api, "django-web", verified=False).id == ids[29]
    pages = [r.query.get("page", ["1"])[0] for r in standin.calls("GET", r"^/v4/images$")]
    assert pages == ["1", "2", "1", "2"]  # two lookups, each reading both pages
    assert all(r.headers["x-filter"] == '{"is_public": false}' for r in standin.calls("GET", r"^/v4/images$"))


def test_latest_respects_region_copies(standin, api):
    ids = _seed(standin)
    assert ops.latest(api, "django-web", region="eu-west") is None
    img = ops.replicate(api, ids[1], ["eu-west", "ap-northeast"], timeout=5, interval=0.01)
    assert img.regions == {"us-east": "available", "eu-west": "available", "ap-northeast": "available"}
    assert ops.latest(api, "django-web", region="eu-west").id == ids[1]
    (call,) = standin.calls("POST", r"/regions$")
    # The replicate call replaces the list: the build region must be kept.
    assert call.body == {"regions": ["us-east", "eu-west", "ap-northeast"]}


def test_launch_passes_user_data_through_metadata_base64(standin, api):
    ids = _seed(standin)
    inst = ops.launch(api, ids[1], "us-east", "g6-standard-1", user_data="#cloud-config\nhostname: web1\n",
                      label="web1", interval=0.01)
    assert inst.status == "running" and inst.address.startswith("192.0.2.")
    body = standin.instances[inst.id]["_request"]
    assert base64.b64decode(body["metadata"]["user_data"]).decode() == "#cloud-config\nhostname: web1\n"
    assert body["image"] == ids[1] and body["type"] == "g6-standard-1" and body["root_pass"]


def test_launch_from_image_without_cloud_init_is_a_user_error(standin, api):
    iid = standin.add_image("django-web-0.9-b0", "2026-01-01T00:00:00", capabilities=())
    with pytest.raises(UserError, match="does not support cloud-init"):
        ops.launch(api, iid, "us-east", "g6-standard-1", user_data="x", interval=0.01)


def test_verify_deletes_the_instance_whatever_the_suite_does_suite_stubbed(standin, api, monkeypatch):
    """The stand-in boots nothing, so the image suite is NOT run here: a stub in its place records what
    verify hands it. What is tested is the instance's life cycle around it."""
    monkeypatch.setattr(ops.clouds, "wait_for_login", lambda *a, **k: None)  # the stand-in boots nothing
    ids = _seed(standin)
    seen = []

    def suite(host, port, user, key_file):
        seen.append((host, port, user, key_file.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY")))
        return type("R", (), {"ok": True})()

    result = ops.verify(api, ids[1], "us-east", "g6-standard-1", user_data="#cloud-config\n", suite=suite,
                        interval=0.01)
    assert result["ok"] and seen[0][1:] == (22, "root", True)
    assert standin.instances == {}
    req = standin.calls("POST", r"/linode/instances$")[0].body
    assert req["authorized_keys"][0].startswith("ssh-ed25519 ")

    def broken(*a):
        raise RuntimeError("suite crashed")

    with pytest.raises(RuntimeError):
        ops.verify(api, ids[1], "us-east", "g6-standard-1", suite=broken, interval=0.01)
    assert standin.instances == {}
    assert len(standin.calls("DELETE", r"/linode/instances/\d+$")) == 2


def test_prune_keeps_newest_and_newest_verified(standin, api):
    ids = _seed(standin, n=5, verified=(1,))
    decisions = ops.prune(api, "django-web", keep=2, dry_run=True)
    assert [(d.image, d.delete) for d in decisions] == [
        (ids[4], False), (ids[3], False), (ids[2], True), (ids[1], False), (ids[0], True)]
    assert len(standin.images) == 6  # dry run deletes nothing
    ops.prune(api, "django-web", keep=2)
    assert set(standin.images) == {ids[4], ids[3], ids[1]} | {i for i, v in standin.images.items()
                                                            if v["label"].startswith("other-app")}
    with pytest.raises(UserError):
        ops.prune(api, "django-web", keep=0)


def test_bad_token_is_a_one_line_user_error(standin):
    api = ops.client("wrong-token", base_url=standin.url + "/v4", retry_interval=0.001)
    with pytest.raises(UserError) as e:
        ops.latest(api, "django-web")
    assert "rejected the token" in str(e.value) and "Invalid Token" in str(e.value) and "\n" not in str(e.value)
    assert "wrong-token" not in str(e.value)


def test_missing_token_names_the_variable(monkeypatch):
    monkeypatch.delenv("LINODE_TOKEN", raising=False)
    with pytest.raises(UserError, match="LINODE_TOKEN"):
        ops.client()


def test_unknown_image_is_404_user_error(standin, api):
    with pytest.raises(UserError, match="not found"):
        ops.get_image(api, "private/999999")


def test_rate_limit_and_bad_gateway_are_retried(standin, api):
    ids = _seed(standin)
    standin.fail_next("GET", r"/v4/images", 429, {"errors": [{"reason": "Too Many Requests"}]},
                      headers={"Retry-After": "0"})
    standin.fail_next("GET", r"/v4/images", 502, {"errors": [{"reason": "Bad Gateway"}]})
    assert ops.latest(api, "django-web").id == ids[1]
    assert len(standin.calls("GET", r"^/v4/images$")) == 3


def test_persistent_server_error_is_build_failed(standin, api):
    standin.fail_next("GET", r"/v4/images", 500, {"errors": [{"reason": "Internal Server Error"}]}, times=10)
    with pytest.raises(BuildFailed, match="HTTP 500"):
        ops.latest(api, "django-web")


# -- live (real Linode) ---------------------------------------------------------

live = pytest.mark.skipif(not os.environ.get("LINODE_TOKEN"), reason="LINODE_TOKEN is not set (live Linode tests)")


@live
def test_live_token_lists_images():
    api = ops.client()
    ops.own_images(api, "django-web")  # read-only: the token works and listing pages


@live
def test_live_latest_verified_image_exists_in_every_listed_region():
    api = ops.client()
    img = ops.latest(api, "django-web")
    if img is None:
        pytest.skip("no verified django-web image on this Linode account yet")
    assert img.status == "available" and "cloud-init" in img.capabilities


def test_provider_hooks_replicate_and_record_after_a_stubbed_suite(standin, monkeypatch, tmp_path):
    """The pipeline's hooks for Linode (artifacts -> verify -> publish -> prune) against the stand-in.

    The stand-in boots nothing, so the image suite is NOT run: a stub answers for it, failing first
    (nothing is tagged or replicated) and then passing. The suite itself runs on real machines in the
    QEMU and docker end-to-end tests, and on the AWS stand-in's container (tests/aws/harness.py)."""
    from builder import clouds, spec
    from builder.catalog import store as catalog
    from builder.providers import base
    from builder.providers.linode import Provider

    monkeypatch.setenv("LINODE_TOKEN", TOKEN)
    monkeypatch.setenv("DJBAKE_LINODE_API", standin.url + "/v4")
    monkeypatch.setattr(clouds, "wait_for_login", lambda *a, **k: None)
    verdict = {"ok": False}
    monkeypatch.setattr(clouds, "run_suite", lambda *a, **k: type("R", (), verdict)())
    monkeypatch.setattr(ops.time, "sleep", lambda s: None)
    s = spec.loads("name: django-web\nproviders:\n  linode: {near: [north-america, europe]}\n")
    p = Provider(s)
    built = standin.add_image("django-web-1.0-b9", "2026-11-28T00:00:00")
    ctx = base.BuildContext(tmp_path, {"build_id": "b9"})
    # Packer's manifest entry for the linode builder: artifact_id is the image id.
    found = p.artifacts([{"name": "linode", "builder_type": "linode", "artifact_id": built,
                          "packer_run_uuid": "u", "custom_data": {}}], ctx)
    assert found == [("us-east", built)]
    v = p.verify(found, ctx)
    assert not v.passed and standin.instances == {}
    assert p.publish(found, v, ctx) == found   # a failed suite: not tagged verified, not replicated
    assert standin.images[built]["tags"] == [] and len(standin.images[built]["regions"]) == 1
    verdict["ok"] = True
    v = p.verify(found, ctx)
    assert v.passed and standin.instances == {}
    final = p.publish(found, v, ctx)
    assert final == [("us-east", built), ("eu-west", built)]
    assert standin.images[built]["tags"] == [ops.TAG_VERIFIED]
    assert [r["region"] for r in standin.images[built]["regions"]] == ["us-east", "eu-west"]
    assert Provider.available("eu-west", built) and not Provider.available("ap-south", built)
    cat = catalog.Catalog(tmp_path / "c.sqlite")
    old = standin.add_image("django-web-0.9-b1", "2026-11-01T00:00:00")
    cat.add([catalog.Entry("b1", "django-web", "0.9", "linode", "us-east", old)])
    decisions = p.prune(1, False, cat)
    assert [(d.image, d.delete) for d in decisions] == [(built, False), (old, True)]
    assert cat.query(provider="linode", state=None)[0].state == "deregistered"
