"""Rackspace (OpenStack) operations and the FULL `packer validate`, against a local OpenStack stand-in.

tests/standins/openstack.py is not Rackspace: it is a small HTTP server
that answers the Keystone v3 / v2.0, Nova and Glance calls used here the
way the OpenStack API references document them (401s, 404s, 5xx, Glance
marker paging). Live tests at the end run against Rackspace when OS_USERNAME,
OS_PASSWORD and OS_PROJECT_ID are set.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from builder import spec
from builder.bake import packer, render
from builder.clouds import openstack as ops
from builder.errors import BuildFailed, UserError
from tests.standins.openstack import PASSWORD, PROJECT, USER, OpenStackStandIn

HERE = Path(__file__).parent


@pytest.fixture
def standin():
    with OpenStackStandIn() as s:
        yield s


def _conn(standin, identity="flex", password=PASSWORD):
    path = "/v3" if identity == "flex" else "/v2.0"
    return ops.connect(standin.region, identity, auth_url=standin.url + path, username=USER, password=password,
                       project_id=PROJECT)


def _seed(standin, n=3, verified=(1,)):
    ids = [standin.add_image(f"django-web-1.{k}-b{k}", f"2026-11-{10 + k:02d}T00:00:00Z",
                             tags=[ops.TAG_VERIFIED] if k in verified else [], **{"djbake:image": "django-web"})
           for k in range(n)]
    standin.add_image("other-1.0-b1", "2026-11-28T00:00:00Z", tags=[ops.TAG_VERIFIED])
    return ids


# -- the full packer validate (the builder signs in while validating) ------------------

needs_packer = pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")


@needs_packer
@pytest.mark.parametrize("identity, path", [("flex", "/v3"), ("classic", "/v2.0")])
def test_full_packer_validate_signs_in_at_the_standin(identity, path, standin, tmp_path):
    s = spec.loads(f"name: django-web\nproviders:\n  rackspace:\n    identity: {identity}\n", "x.yaml")
    pk = packer.find()
    (r,) = render.render(s, ["rackspace"], pk, base=tmp_path)
    creds = {"os_username": USER, "os_password": PASSWORD, "os_project_id": PROJECT,
             "os_identity_endpoint": standin.url + path}
    ok, out = packer.validate(pk, r.directory, creds)
    assert ok, out
    token_calls = standin.calls("POST", r"/auth/tokens$|/tokens$")
    assert [c.path for c in token_calls] == [path + ("/auth/tokens" if identity == "flex" else "/tokens")]
    if identity == "flex":
        user = token_calls[0].body["auth"]["identity"]["password"]["user"]
        assert user["domain"]["name"] == "rackspace_cloud_domain"
    ok, out = packer.validate(pk, r.directory, creds | {"os_password": "wrong"})
    assert not ok and "Authentication failed" in out


# -- operations ---------------------------------------------------------------------------

def test_latest_newest_verified_across_glance_pages(standin):
    ids = _seed(standin, n=30, verified=(4, 21))
    conn = _conn(standin)
    assert ops.latest(conn, "django-web").id == ids[21]
    assert ops.latest(conn, "django-web", verified=False).id == ids[29]
    listing = standin.calls("GET", r"^/image/v2/images$")
    assert any("marker" in c.query for c in listing), "did not follow Glance's next link"


def test_classic_identity_v2_lists_images(standin):
    ids = _seed(standin)
    conn = _conn(standin, "classic")
    assert ops.latest(conn, "django-web").id == ids[1]
    assert standin.calls("POST", r"^/v2\.0/tokens$")[0].body["auth"]["passwordCredentials"]["username"] == USER


def test_wrong_password_is_a_one_line_user_error(standin):
    with pytest.raises(UserError) as e:
        ops.latest(_conn(standin, password="nope"), "django-web")
    assert "refused the credentials" in str(e.value) and "\n" not in str(e.value) and "nope" not in str(e.value)


def test_missing_credentials_name_the_variables(monkeypatch):
    for var in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserError, match="OS_USERNAME, OS_PASSWORD, OS_PROJECT_ID"):
        ops.connect("SJC3")


def test_launch_writes_user_data_to_a_config_drive(standin):
    ids = _seed(standin)
    server = ops.launch(_conn(standin), ids[1], "gp.0.2.4", user_data="#cloud-config\nhostname: web1\n",
                        name="web1", interval=0.01)
    assert server.status == "ACTIVE" and server.address.startswith("203.0.113.")
    req = standin.servers[server.id]["_request"]
    assert req["config_drive"] is True and req["flavorRef"] == "f-gp024" and req["imageRef"] == ids[1]
    assert base64.b64decode(req["user_data"]).decode() == "#cloud-config\nhostname: web1\n"


def test_unknown_flavor_and_image_are_user_errors(standin):
    ids = _seed(standin)
    conn = _conn(standin)
    with pytest.raises(UserError, match="flavor"):
        ops.launch(conn, ids[1], "no-such-flavor", interval=0.01)
    with pytest.raises(UserError, match="could not be found"):
        ops.launch(conn, "00000000-0000-0000-0000-000000000000", "gp.0.2.4", interval=0.01)


def test_verify_cleans_up_server_and_key_whatever_happens_suite_stubbed(standin, monkeypatch):
    """The stand-in boots nothing, so the image suite is NOT run here: a stub in its place records what
    verify hands it. What is tested is the server's and key pair's life cycle around it."""
    monkeypatch.setattr(ops.clouds, "wait_for_login", lambda *a, **k: None)  # the stand-in boots nothing
    ids = _seed(standin)
    conn = _conn(standin)
    got = []
    result = ops.verify(conn, ids[1], "gp.0.2.4", user_data="#cloud-config\n",
                        suite=lambda host, port, user, key: got.append((host, user)) or True, interval=0.01)
    assert result["ok"] and got[0][1] == "root"
    assert standin.servers == {} and standin.keypairs == {}
    kp = standin.calls("POST", r"/os-keypairs$")[0].body["keypair"]
    assert kp["public_key"].startswith("ssh-ed25519 ")

    def crash(*a):
        raise RuntimeError("suite crashed")

    with pytest.raises(RuntimeError):
        ops.verify(conn, ids[1], "gp.0.2.4", suite=crash, interval=0.01)
    assert standin.servers == {} and standin.keypairs == {}


def test_server_error_from_nova_is_build_failed(standin):
    ids = _seed(standin)
    conn = _conn(standin)
    standin.fail_next("POST", r"/compute/v2\.1/servers", 500,
                      {"computeFault": {"code": 500, "message": "Unexpected API Error."}}, times=5)
    with pytest.raises(BuildFailed, match="Rackspace API failed"):
        ops.launch(conn, ids[1], "gp.0.2.4", interval=0.01)
    assert standin.servers == {}


def test_prune_keeps_newest_and_newest_verified(standin):
    ids = _seed(standin, n=4, verified=(0,))
    conn = _conn(standin)
    decisions = ops.prune(conn, "django-web", keep=1)
    assert [(d.image, d.delete) for d in decisions] == [
        (ids[3], False), (ids[2], True), (ids[1], True), (ids[0], False)]
    assert set(standin.images) >= {ids[3], ids[0]} and ids[2] not in standin.images
    assert any(v["name"].startswith("other-") for v in standin.images.values())


# -- live (real Rackspace) -------------------------------------------------------------------

live = pytest.mark.skipif(not all(os.environ.get(v) for v in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID")),
                          reason="OS_USERNAME/OS_PASSWORD/OS_PROJECT_ID are not set (live Rackspace tests)")


@live
def test_live_sign_in_and_list_images():
    region = os.environ.get("OS_REGION_NAME", "SJC3")
    ops.own_images(ops.connect(region, os.environ.get("DJBAKE_RACKSPACE_IDENTITY", "flex")), "django-web")


@live
@needs_packer
def test_live_full_packer_validate(tmp_path):
    s = spec.load(HERE.parent / "images" / "django-web.yaml")
    pk = packer.find()
    (r,) = render.render(s, ["rackspace"], pk, base=tmp_path)
    v = render.validate(s, r, "rackspace", pk)
    assert v.ok and "-syntax-only" not in v.how, v.output


@needs_packer
def test_djbake_validate_does_the_full_check_when_credentials_are_set(standin, tmp_path, monkeypatch):
    """`djbake validate`'s own path: with OS_* set (OS_AUTH_URL at the stand-in) it is no longer syntax-only."""
    monkeypatch.setenv("OS_USERNAME", USER)
    monkeypatch.setenv("OS_PASSWORD", PASSWORD)
    monkeypatch.setenv("OS_PROJECT_ID", PROJECT)
    monkeypatch.setenv("OS_AUTH_URL", standin.url + "/v3")
    s = spec.load(HERE.parent / "images" / "django-web.yaml")
    pk = packer.find()
    (r,) = render.render(s, ["rackspace"], pk, base=tmp_path)
    v = render.validate(s, r, "rackspace", pk)
    assert v.ok, v.output
    assert "-syntax-only" not in v.how
    assert standin.calls("POST", r"^/v3/auth/tokens$"), "Packer did not sign in at the stand-in"
    assert PASSWORD not in (tmp_path / "django-web" / "rackspace" / "django-web.pkr.json").read_text()
