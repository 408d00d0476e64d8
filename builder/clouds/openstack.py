"""What djbake does on Rackspace's OpenStack clouds with openstacksdk (Packer only builds the image).

Two identities: OpenStack Flex signs in at Keystone v3 (domain
`rackspace_cloud_domain`), classic Rackspace Cloud at the identity service
v2.0 (builder/tables.py RACKSPACE_IDENTITY). Credentials come from OS_USERNAME,
OS_PASSWORD, OS_PROJECT_ID and optionally OS_AUTH_URL (a stand-in in tests).

- `latest`: the newest active private Glance image of a spec, optionally
  only verified ones (tag `djbake-verified`).
- `launch`: a Nova server from an image with user-data on a config drive.
- `verify`: launch with a throw-away key pair, run the suite over SSH,
  delete server and key pair whatever happened.
- `prune`: delete old images, keeping the newest N and the newest verified.
Rackspace images live in one region; copies to other regions are not an
OpenStack call (export/import through object storage), so djbake builds in
each region instead (`djbake image --provider rackspace` per region).
"""
from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass

from builder import clouds, tables
from builder.errors import BuildFailed, UserError

TAG_VERIFIED = "djbake-verified"
FLEX_DOMAIN = "rackspace_cloud_domain"


def connect(region: str, identity: str = "flex", auth_url: str | None = None, username: str | None = None,
            password: str | None = None, project_id: str | None = None):
    import openstack

    env = os.environ
    username = username or env.get("OS_USERNAME")
    password = password or env.get("OS_PASSWORD")
    project_id = project_id or env.get("OS_PROJECT_ID")
    missing = [n for n, v in (("OS_USERNAME", username), ("OS_PASSWORD", password), ("OS_PROJECT_ID", project_id))
               if not v]
    if missing:
        raise UserError(f"no Rackspace credentials ({', '.join(missing)} unset)",
                        hint="export OS_USERNAME, OS_PASSWORD and OS_PROJECT_ID")
    auth_url = auth_url or env.get("OS_AUTH_URL") or tables.RACKSPACE_IDENTITY[identity]
    auth = {"auth_url": auth_url, "username": username, "password": password, "project_id": project_id}
    if identity == "flex":
        auth |= {"user_domain_name": FLEX_DOMAIN, "project_domain_name": FLEX_DOMAIN}
        auth_type = "v3password"
    else:
        auth = {"auth_url": auth_url, "username": username, "password": password, "tenant_id": project_id}
        auth_type = "v2password"
    return openstack.connection.Connection(auth=auth, auth_type=auth_type, region_name=region)


def _api(what: str, fn, *args, **kwargs):
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as osx

    try:
        return fn(*args, **kwargs)
    except (ksa.Unauthorized, osx.ForbiddenException) as e:
        raise UserError(f"Rackspace refused the credentials while trying to {what}: {_short(e)}",
                        hint="check OS_USERNAME, OS_PASSWORD, OS_PROJECT_ID and the identity (flex/classic)") from None
    except osx.NotFoundException as e:
        raise UserError(f"Rackspace: {what}: not found ({_short(e)})") from None
    except osx.BadRequestException as e:
        raise UserError(f"Rackspace refused to {what}: {_short(e)}") from None
    except (osx.HttpException, ksa.ClientException) as e:
        raise BuildFailed(f"Rackspace API failed to {what}: {_short(e)}") from None


def _short(e: Exception) -> str:
    return " ".join(str(getattr(e, "details", None) or e).split())[:300]


# -- images ---------------------------------------------------------------------

@dataclass
class Image:
    id: str
    name: str
    created: str
    status: str
    tags: list[str]
    region: str = ""

    @property
    def verified(self) -> bool:
        return TAG_VERIFIED in self.tags

    @property
    def build_id(self) -> str:
        return self.name.rsplit("-", 1)[-1]  # names are <image>-<version>-<build id>


def own_images(conn, image_name: str) -> list[Image]:
    def listing():
        return [Image(i.id, i.name, i.created_at, i.status, list(i.tags or []), conn.config.region_name or "")
                for i in conn.image.images(visibility="private")]

    found = _api("list images", listing)
    mine = [i for i in found if (i.name or "").startswith(f"{image_name}-")]
    return sorted(mine, key=lambda i: (i.created, i.id), reverse=True)


def latest(conn, image_name: str, verified: bool = True) -> Image | None:
    return next((i for i in own_images(conn, image_name)
                 if i.status == "active" and (i.verified or not verified)), None)


def mark_verified(conn, image_id: str) -> None:
    _api(f"tag image {image_id}", conn.image.add_tag, image_id, TAG_VERIFIED)


# -- servers ----------------------------------------------------------------------

@dataclass
class Server:
    id: str
    name: str
    address: str
    status: str


def _address(server) -> str:
    if server.access_ipv4:
        return server.access_ipv4
    for nets in (server.addresses or {}).values():
        for a in nets:
            if a.get("version") == 4:
                return a["addr"]
    raise BuildFailed(f"server {server.id} has no IPv4 address")


def launch(conn, image_id: str, flavor: str, user_data: str | None = None, name: str | None = None,
           key_name: str | None = None, networks: list[str] | None = None, timeout: float = 900,
           interval: float = 5) -> Server:
    """A server from the image; user-data is written to a config drive (cloud-init's ConfigDrive source)."""
    fl = _api(f"find flavor {flavor}", conn.compute.find_flavor, flavor, ignore_missing=False)
    kwargs: dict = {"name": name or f"djbake-{uuid.uuid4().hex[:8]}", "image_id": image_id, "flavor_id": fl.id,
                    "config_drive": True, "metadata": {"djbake": "launch"}}
    if user_data is not None:
        kwargs["user_data"] = base64.b64encode(user_data.encode()).decode()
    if key_name:
        kwargs["key_name"] = key_name
    if networks:
        kwargs["networks"] = [{"uuid": n} for n in networks]
    server = _api(f"create a server from {image_id}", conn.compute.create_server, **kwargs)
    deadline = time.monotonic() + timeout
    while True:
        server = _api(f"read server {server.id}", conn.compute.get_server, server.id)
        if server.status == "ACTIVE":
            return Server(server.id, server.name, _address(server), server.status)
        if server.status == "ERROR" or time.monotonic() > deadline:
            delete_server(conn, server.id)
            raise BuildFailed(f"server {server.id} did not become ACTIVE (last: {server.status})")
        time.sleep(interval)


def delete_server(conn, server_id: str) -> None:
    _api(f"delete server {server_id}", conn.compute.delete_server, server_id, ignore_missing=True)


def verify(conn, image_id: str, flavor: str, user_data: str | None = None, networks: list[str] | None = None,
           suite=None, ssh_timeout: float = 600, interval: float = 5) -> dict:
    """Boot a fresh server from the image, run the suite over SSH, delete server and key whatever happens."""
    key = clouds.temporary_key()
    key_name = f"djbake-verify-{uuid.uuid4().hex[:8]}"
    server = None
    started = time.monotonic()
    try:
        _api("create a key pair", conn.compute.create_keypair, name=key_name, public_key=key.public)
        server = launch(conn, image_id, flavor, user_data=user_data, key_name=key_name, networks=networks,
                        interval=interval)
        clouds.wait_for_login(server.address, 22, "root", key.private_file, timeout=ssh_timeout, interval=interval)
        result = (suite or clouds.run_suite)(server.address, 22, "root", key.private_file)
        ok = bool(getattr(result, "ok", result))
        return {"ok": ok, "server": server.id, "seconds": round(time.monotonic() - started, 1)}
    finally:
        try:
            if server is not None:
                delete_server(conn, server.id)
        finally:
            try:
                _api("delete the key pair", conn.compute.delete_keypair, key_name, ignore_missing=True)
            finally:
                key.remove()


# -- retention ----------------------------------------------------------------------

def prune(conn, image_name: str, keep: int = 2, dry_run: bool = False):
    if keep < 1:
        raise UserError("--keep must be 1 or more")
    decisions = clouds.plan_prune(own_images(conn, image_name), keep)
    if not dry_run:
        for d in decisions:
            if d.delete:
                _api(f"delete image {d.image}", conn.image.delete_image, d.image, ignore_missing=True)
    return decisions
