"""Stand-in for Rackspace's OpenStack APIs (not Rackspace): Keystone v3 and v2.0, Nova, Glance.

Answers the calls Packer's openstack builder (gophercloud) and openstacksdk
make, shaped like the OpenStack API references:
- Keystone v3 `POST /v3/auth/tokens` (password, project scope) -> 201 with
  `X-Subject-Token` and a service catalog; Keystone v2.0 `POST /v2.0/tokens`
  (Rackspace classic) -> `access.token` + `serviceCatalog`; wrong
  credentials -> 401 `{"error": {"code": 401, ...}}`; version documents.
- Nova (`/compute/v2.1`): flavors, os-keypairs, servers (BUILD -> ACTIVE,
  `user_data` base64, `config_drive`), 404 `itemNotFound`.
- Glance (`/image/v2`): images with marker/limit paging and a `next` link,
  tags, delete; 404.
Every service answers 401 without a valid `X-Auth-Token`.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import uuid

from tests.standins import Reply, Request, StandIn

USER, PASSWORD, PROJECT = "standin-user", "standin-password", "0123456789abcdef0123456789abcdef"


class OpenStackStandIn(StandIn):
    def __init__(self, region: str = "SJC3") -> None:
        super().__init__()
        self.region = region
        self.tokens: set[str] = set()
        self.images: dict[str, dict] = {}
        self.servers: dict[str, dict] = {}
        self.keypairs: dict[str, dict] = {}
        self.flavors = {"gp.0.2.4": {"id": "f-gp024", "name": "gp.0.2.4", "vcpus": 2, "ram": 4096, "disk": 40},
                        "general1-2": {"id": "general1-2", "name": "general1-2", "vcpus": 2, "ram": 2048,
                                       "disk": 40}}
        self._clock = itertools.count(1)
        r = self.route
        r("GET", r"/", self.identity_versions)
        r("GET", r"/v3/?", self.identity_v3)
        r("POST", r"/v3/auth/tokens", self.token_v3)
        r("GET", r"/v2\.0/?", self.identity_v2)
        r("POST", r"/v2\.0/tokens", self.token_v2)
        r("GET", r"/compute/?", self.compute_versions)
        r("GET", r"/compute/v2\.1/?", self.compute_version)
        r("GET", r"/compute/v2\.1/flavors(/detail)?", self.list_flavors)
        r("GET", r"/compute/v2\.1/flavors/(?P<fid>[^/]+)", self.get_flavor)
        r("POST", r"/compute/v2\.1/os-keypairs", self.create_keypair)
        r("DELETE", r"/compute/v2\.1/os-keypairs/(?P<name>[^/]+)", self.delete_keypair)
        r("POST", r"/compute/v2\.1/servers", self.create_server)
        r("GET", r"/compute/v2\.1/servers/(?P<sid>[^/]+)", self.get_server)
        r("DELETE", r"/compute/v2\.1/servers/(?P<sid>[^/]+)", self.delete_server)
        r("GET", r"/image/?", self.image_versions)
        r("GET", r"/image/v2/images", self.list_images)
        r("GET", r"/image/v2/images/(?P<iid>[^/]+)", self.get_image)
        r("DELETE", r"/image/v2/images/(?P<iid>[^/]+)", self.delete_image)
        r("PUT", r"/image/v2/images/(?P<iid>[^/]+)/tags/(?P<tag>[^/]+)", self.add_tag)

    # -- fixtures -------------------------------------------------------------
    def add_image(self, name: str, created: str, tags: list[str] | None = None, status: str = "active",
                  **properties) -> str:
        iid = str(uuid.uuid4())
        self.images[iid] = {
            "id": iid, "name": name, "status": status, "visibility": "private", "owner": PROJECT,
            "created_at": created, "updated_at": created, "tags": list(tags or []), "disk_format": "qcow2",
            "container_format": "bare", "size": 2147483648, "min_disk": 10, "min_ram": 0, "protected": False,
            "self": f"/v2/images/{iid}", "file": f"/v2/images/{iid}/file", "schema": "/v2/schemas/image",
            **properties,
        }
        return iid

    # -- auth -------------------------------------------------------------------
    def authorize(self, req: Request) -> Reply | None:
        if req.path.startswith(("/compute", "/image")) and req.path.rstrip("/") not in ("/compute", "/image",
                                                                                         "/compute/v2.1"):
            if req.headers.get("x-auth-token") not in self.tokens:
                return Reply(401, {"error": {"code": 401, "title": "Unauthorized",
                                             "message": "The request you have made requires authentication."}})
        return None

    def not_found(self, req: Request) -> Reply:
        if req.path.startswith("/compute"):
            return Reply(404, {"itemNotFound": {"code": 404, "message": "Resource could not be found."}})
        if req.path.startswith("/image"):
            return Reply(404, {"code": 404, "title": "Not Found", "message": "No image found"})
        return Reply(404, {"error": {"code": 404, "title": "Not Found", "message": "Could not find resource."}})

    def _catalog_v3(self) -> list[dict]:
        def ep(path):
            return [{"id": uuid.uuid4().hex, "interface": i, "region": self.region, "region_id": self.region,
                     "url": self.url + path} for i in ("public", "internal")]
        return [{"id": "c1", "type": "compute", "name": "nova", "endpoints": ep("/compute/v2.1")},
                {"id": "c2", "type": "image", "name": "glance", "endpoints": ep("/image")},
                {"id": "c3", "type": "identity", "name": "keystone", "endpoints": ep("/v3")}]

    def _v3_doc(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": self.url + "/v3/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}

    def _v2_doc(self) -> dict:
        return {"id": "v2.0", "status": "deprecated", "updated": "2016-08-04T00:00:00Z",
                "links": [{"rel": "self", "href": self.url + "/v2.0/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}]}

    def identity_versions(self, req: Request) -> Reply:
        return Reply(300, {"versions": {"values": [self._v3_doc(), self._v2_doc()]}})

    def identity_v3(self, req: Request) -> Reply:
        return Reply(200, {"version": self._v3_doc()})

    def identity_v2(self, req: Request) -> Reply:
        return Reply(200, {"version": self._v2_doc()})

    def _unauthorized(self) -> Reply:
        return Reply(401, {"error": {"code": 401, "title": "Unauthorized",
                                     "message": "The request you have made requires authentication."}})

    def token_v3(self, req: Request) -> Reply:
        ident = ((req.body or {}).get("auth") or {}).get("identity") or {}
        user = (ident.get("password") or {}).get("user") or {}
        if user.get("name", user.get("id")) != USER or user.get("password") != PASSWORD:
            return self._unauthorized()
        token = uuid.uuid4().hex
        self.tokens.add(token)
        project = {"id": PROJECT, "name": "standin-project", "domain": {"id": "default", "name": "rackspace_cloud_domain"}}
        body = {"token": {
            "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
            "issued_at": "2026-11-28T10:00:00.000000Z", "audit_ids": ["a1"],
            "user": {"id": "u1", "name": USER, "domain": {"id": "default", "name": "rackspace_cloud_domain"},
                     "password_expires_at": None},
            "project": project, "roles": [{"id": "r1", "name": "member"}], "catalog": self._catalog_v3()}}
        return Reply(201, body, {"X-Subject-Token": token})

    def token_v2(self, req: Request) -> Reply:
        auth = (req.body or {}).get("auth") or {}
        creds = auth.get("passwordCredentials") or {}
        if creds.get("username") != USER or creds.get("password") != PASSWORD:
            return self._unauthorized()
        token = uuid.uuid4().hex
        self.tokens.add(token)

        def svc(type_, name, path):
            return {"type": type_, "name": name, "endpoints": [
                {"region": self.region, "tenantId": PROJECT, "publicURL": self.url + path,
                 "internalURL": self.url + path}]}
        return Reply(200, {"access": {
            "token": {"id": token, "expires": "2099-01-01T00:00:00.000Z",
                      "tenant": {"id": PROJECT, "name": PROJECT}},
            "serviceCatalog": [svc("compute", "cloudServersOpenStack", "/compute/v2.1"),
                               svc("image", "cloudImages", "/image")],
            "user": {"id": "u1", "name": USER, "roles": [{"id": "r1", "name": "identity:default"}]}}})

    # -- nova --------------------------------------------------------------------
    def _compute_doc(self) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": "2.79", "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": self.url + "/compute/v2.1/"}]}

    def compute_versions(self, req: Request) -> Reply:
        return Reply(200, {"versions": [self._compute_doc()]})

    def compute_version(self, req: Request) -> Reply:
        return Reply(200, {"version": self._compute_doc()})

    def list_flavors(self, req: Request) -> Reply:
        return Reply(200, {"flavors": [dict(f, links=[]) for f in self.flavors.values()]})

    def get_flavor(self, req: Request, fid: str) -> Reply:
        for f in self.flavors.values():
            if f["id"] == fid:
                return Reply(200, {"flavor": dict(f, links=[])})
        raise KeyError(fid)

    def create_keypair(self, req: Request) -> Reply:
        kp = (req.body or {}).get("keypair") or {}
        if kp.get("name") in self.keypairs:
            return Reply(409, {"conflictingRequest": {"code": 409, "message": "Key pair already exists"}})
        self.keypairs[kp["name"]] = {"name": kp["name"], "public_key": kp.get("public_key"),
                                     "fingerprint": "aa:bb", "type": "ssh"}
        return Reply(200, {"keypair": self.keypairs[kp["name"]]})

    def delete_keypair(self, req: Request, name: str) -> Reply:
        del self.keypairs[name]
        return Reply(202)

    def create_server(self, req: Request) -> Reply:
        s = (req.body or {}).get("server") or {}
        for key in ("name", "flavorRef"):
            if not s.get(key):
                return Reply(400, {"badRequest": {"code": 400, "message": f"Missing {key}"}})
        if s.get("imageRef") not in self.images:
            return Reply(400, {"badRequest": {"code": 400, "message": f"Image {s.get('imageRef')} could not be found."}})
        if s.get("user_data") is not None:
            try:
                base64.b64decode(s["user_data"], validate=True)
            except (binascii.Error, ValueError):
                return Reply(400, {"badRequest": {"code": 400, "message": "User data needs to be valid base 64."}})
        sid = str(uuid.uuid4())
        n = next(self._clock)
        self.servers[sid] = {
            "id": sid, "name": s["name"], "status": "BUILD", "image": {"id": s["imageRef"], "links": []},
            "flavor": {"id": s["flavorRef"], "links": []}, "metadata": s.get("metadata", {}),
            "key_name": s.get("key_name"), "config_drive": "True" if s.get("config_drive") else "",
            "addresses": {"public": [{"addr": f"203.0.113.{n}", "version": 4}]}, "accessIPv4": f"203.0.113.{n}",
            "accessIPv6": "", "created": "2026-11-28T10:00:00Z", "updated": "2026-11-28T10:00:00Z",
            "tenant_id": PROJECT, "user_id": "u1", "links": [], "_request": s,
        }
        return Reply(202, {"server": {"id": sid, "links": [], "OS-DCF:diskConfig": "AUTO",
                                      "security_groups": [{"name": "default"}]}})

    def get_server(self, req: Request, sid: str) -> Reply:
        srv = self.servers[sid]
        out = {k: v for k, v in srv.items() if not k.startswith("_")}
        srv["status"] = "ACTIVE"
        return Reply(200, {"server": out})

    def delete_server(self, req: Request, sid: str) -> Reply:
        del self.servers[sid]
        return Reply(204)

    # -- glance ------------------------------------------------------------------
    def image_versions(self, req: Request) -> Reply:
        return Reply(300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                         "links": [{"rel": "self", "href": self.url + "/image/v2/"}]}]})

    def list_images(self, req: Request) -> Reply:
        q = {k: v[0] for k, v in req.query.items()}
        items = sorted(self.images.values(), key=lambda i: (i["created_at"], i["id"]), reverse=True)
        for key in ("owner", "visibility", "status", "name"):
            if key in q:
                items = [i for i in items if i.get(key) == q[key]]
        if "tag" in q:
            items = [i for i in items if q["tag"] in i["tags"]]
        if "marker" in q:
            ids = [i["id"] for i in items]
            if q["marker"] not in ids:
                return Reply(400, {"code": 400, "title": "Bad Request", "message": "marker not found"})
            items = items[ids.index(q["marker"]) + 1:]
        limit = int(q.get("limit", 25))
        page = items[:limit]
        body = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if len(items) > limit:
            body["next"] = f"/v2/images?marker={page[-1]['id']}&limit={limit}"
        return Reply(200, body)

    def get_image(self, req: Request, iid: str) -> Reply:
        return Reply(200, self.images[iid])

    def delete_image(self, req: Request, iid: str) -> Reply:
        del self.images[iid]
        return Reply(204)

    def add_tag(self, req: Request, iid: str, tag: str) -> Reply:
        img = self.images[iid]
        if tag not in img["tags"]:
            img["tags"].append(tag)
        return Reply(204)
