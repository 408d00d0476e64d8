"""Stand-in for the Linode API v4 (not Linode): images, replication, instances with metadata.

Answers like https://techdocs.akamai.com/linode-api/reference: bearer-token
auth (401 `Invalid Token`), `{"errors": [{"reason": ...}]}` bodies, paged
lists `{"data", "page", "pages", "results"}` with `page`/`page_size` and the
`X-Filter` header (only the keys djbake sends are understood), image
`regions` with per-region status after `POST /images/{id}/regions`,
instances that go provisioning -> running, `metadata.user_data` that must be
base64 and an image that must have the `cloud-init` capability for it.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import json
import math

from tests.standins import Reply, Request, StandIn

TOKEN = "standin-linode-token"


def _err(status: int, reason: str, field: str | None = None) -> Reply:
    e = {"reason": reason} | ({"field": field} if field else {})
    return Reply(status, {"errors": [e]})


class LinodeStandIn(StandIn):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.images: dict[str, dict] = {}
        self.instances: dict[int, dict] = {}
        self._ids = itertools.count(1000)
        self._ips = itertools.count(10)
        r = self.route
        r("GET", r"/v4/images", self.list_images)
        r("GET", r"/v4/images/(?P<iid>private/\d+|linode/[\w.-]+)", self.get_image)
        r("PUT", r"/v4/images/(?P<iid>private/\d+)", self.update_image)
        r("DELETE", r"/v4/images/(?P<iid>private/\d+)", self.delete_image)
        r("POST", r"/v4/images/(?P<iid>private/\d+)/regions", self.replicate_image)
        r("POST", r"/v4/linode/instances", self.create_instance)
        r("GET", r"/v4/linode/instances/(?P<lid>\d+)", self.get_instance)
        r("DELETE", r"/v4/linode/instances/(?P<lid>\d+)", self.delete_instance)

    # -- fixtures -----------------------------------------------------------
    def add_image(self, label: str, created: str, region: str = "us-east", tags: list[str] | None = None,
                  status: str = "available", capabilities: tuple[str, ...] = ("cloud-init",)) -> str:
        iid = f"private/{next(self._ids)}"
        self.images[iid] = {
            "id": iid, "label": label, "description": "", "created": created, "updated": created,
            "created_by": "djbake", "deprecated": False, "is_public": False, "is_shared": False,
            "size": 2500, "total_size": 2500, "type": "manual", "vendor": None, "status": status,
            "capabilities": list(capabilities), "tags": list(tags or []), "eol": None, "expiry": None,
            "regions": [{"region": region, "status": "available"}],
        }
        return iid

    # -- protocol -----------------------------------------------------------
    def authorize(self, req: Request) -> Reply | None:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return _err(401, "Invalid Token")
        return None

    def not_found(self, req: Request) -> Reply:
        return _err(404, "Not found")

    @staticmethod
    def _page(req: Request, items: list[dict]) -> Reply:
        size = int(req.query.get("page_size", ["100"])[0])
        page = int(req.query.get("page", ["1"])[0])
        pages = max(1, math.ceil(len(items) / size))
        return Reply(200, {"data": items[(page - 1) * size: page * size], "page": page, "pages": pages,
                           "results": len(items)})

    # -- images ---------------------------------------------------------------
    def list_images(self, req: Request) -> Reply:
        flt = json.loads(req.headers.get("x-filter") or "{}")
        items = sorted(self.images.values(), key=lambda i: i["id"])
        if "is_public" in flt:
            items = [i for i in items if i["is_public"] == flt["is_public"]]
        return self._page(req, items)

    def get_image(self, req: Request, iid: str) -> Reply:
        img = self.images[iid]
        out = json.loads(json.dumps(img))
        for r in img["regions"]:
            r["status"] = "available"  # replication finishes by the next look
        return Reply(200, out)

    def update_image(self, req: Request, iid: str) -> Reply:
        img = self.images[iid]
        for key in ("label", "description", "tags"):
            if key in (req.body or {}):
                img[key] = req.body[key]
        return Reply(200, img)

    def delete_image(self, req: Request, iid: str) -> Reply:
        del self.images[iid]
        return Reply(200, {})

    def replicate_image(self, req: Request, iid: str) -> Reply:
        img = self.images[iid]
        wanted = (req.body or {}).get("regions") or []
        if not wanted:
            return _err(400, "At least one region is required", "regions")
        have = {r["region"]: r for r in img["regions"]}
        # Regions not listed are removed, new ones start as "pending replication".
        img["regions"] = [have.get(r, {"region": r, "status": "pending replication"}) for r in wanted]
        return Reply(200, img)

    def settle(self) -> None:
        """What time does on Linode: replications finish, instances boot."""
        with self.lock:
            for img in self.images.values():
                for r in img["regions"]:
                    r["status"] = "available"
            for inst in self.instances.values():
                inst["status"] = "running"

    # -- instances ------------------------------------------------------------
    def create_instance(self, req: Request) -> Reply:
        b = req.body or {}
        for key in ("type", "region"):
            if not b.get(key):
                return _err(400, f"{key} is required", key)
        image = self.images.get(b.get("image")) if str(b.get("image", "")).startswith("private/") else None
        if b.get("image") and b["image"].startswith("private/") and image is None:
            return _err(400, "Not found", "image")
        if b.get("image") and not (b.get("root_pass") or b.get("authorized_keys") or b.get("authorized_users")):
            return _err(400, "root_pass, authorized_keys or authorized_users is required", "root_pass")
        user_data = (b.get("metadata") or {}).get("user_data")
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError):
                return _err(400, "user_data must be base64-encoded", "metadata.user_data")
            if image is not None and "cloud-init" not in image["capabilities"]:
                return _err(400, "The image does not support cloud-init (metadata)", "metadata")
        lid = next(self._ids)
        inst = {
            "id": lid, "label": b.get("label") or f"linode{lid}", "status": "provisioning", "region": b["region"],
            "image": b.get("image"), "type": b["type"], "ipv4": [f"192.0.2.{next(self._ips)}"],
            "ipv6": "2001:db8::1/128", "tags": b.get("tags", []), "has_user_data": user_data is not None,
            "created": "2026-11-28T10:00:00", "updated": "2026-11-28T10:00:00", "hypervisor": "kvm",
            "_request": b,
        }
        self.instances[lid] = inst
        return Reply(200, {k: v for k, v in inst.items() if not k.startswith("_")})

    def get_instance(self, req: Request, lid: str) -> Reply:
        inst = self.instances[int(lid)]
        out = {k: v for k, v in inst.items() if not k.startswith("_")}
        inst["status"] = "running"  # booted by the next look
        return Reply(200, out)

    def delete_instance(self, req: Request, lid: str) -> Reply:
        del self.instances[int(lid)]
        return Reply(200, {})
