"""What djbake does on Linode with linode_api4 (Packer only builds the image).

- `latest`: the newest available private image of a spec, optionally only
  verified ones (tag `djbake-verified`) and only where a region has a copy.
- `launch`: a Linode from an image, user-data through Linode's metadata
  service (`metadata.user_data`, base64; the image must be cloud-init capable,
  which the template sets with `cloud_init = true`).
- `verify`: launch, wait for SSH, run the testinfra suite, then delete the
  Linode whatever happened.
- `replicate`: copy an image to more regions (the replicate call replaces
  the region list, so the current regions are always kept).
- `prune`: delete old images of a spec, keeping the newest N and always the
  newest verified one.

LINODE_TOKEN authenticates; DJBAKE_LINODE_API points at another API base URL
(a local stand-in in the tests). Errors the user can fix (bad token, unknown
image) are UserError; the API failing after retries is BuildFailed.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from builder import clouds
from builder.errors import BuildFailed, UserError

API_URL = "https://api.linode.com/v4"
API_ENV = "DJBAKE_LINODE_API"
TOKEN_ENV = "LINODE_TOKEN"
TAG_VERIFIED = "djbake-verified"
# GETs/DELETEs are retried on these besides linode_api4's own 408/429/502.
RETRY_STATUSES = [503, 504]


def client(token: str | None = None, base_url: str | None = None, retry_interval: float = 1.0):
    from linode_api4 import LinodeClient

    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError("no Linode token", hint=f"export {TOKEN_ENV}=<a personal access token>")
    return LinodeClient(token, base_url=base_url or os.environ.get(API_ENV) or API_URL,
                        retry_rate_limit_interval=retry_interval, retry_max=5, retry_statuses=RETRY_STATUSES)


def _api(what: str, fn: Callable, *args, **kwargs):
    """Call linode_api4, turning its errors into djbake's one-line errors."""
    from linode_api4.errors import ApiError

    try:
        return fn(*args, **kwargs)
    except ApiError as e:
        reasons = "; ".join(e.errors) if e.errors else str(e)
        if e.status == 401:
            raise UserError(f"Linode rejected the token while trying to {what}: {reasons}",
                            hint=f"check {TOKEN_ENV} (scopes: Linodes and Images read/write)") from None
        if e.status == 404:
            raise UserError(f"Linode: {what}: not found ({reasons})") from None
        if e.status in (400, 403):
            raise UserError(f"Linode refused to {what}: {reasons}") from None
        raise BuildFailed(f"Linode API failed to {what}: HTTP {e.status} {reasons}") from None


# -- images -------------------------------------------------------------------

@dataclass
class Image:
    id: str
    label: str
    created: str
    status: str
    tags: list[str]
    regions: dict[str, str]          # region -> replication status
    capabilities: list[str]

    @property
    def verified(self) -> bool:
        return TAG_VERIFIED in self.tags

    @property
    def region(self) -> str:
        return ",".join(self.regions)

    @property
    def build_id(self) -> str:
        return self.label.rsplit("-", 1)[-1]  # labels are <image>-<version>-<build id>


def _image(obj) -> Image:
    regions = {}
    for r in obj.regions or []:
        regions[r.region if isinstance(r.region, str) else r.region.id] = r.status
    created = obj.created.isoformat() if hasattr(obj.created, "isoformat") else str(obj.created)
    return Image(obj.id, obj.label, created, obj.status, list(obj.tags or []), regions, list(obj.capabilities or []))


def own_images(api, image_name: str) -> list[Image]:
    """Private images whose label is `<image_name>-...` (djbake's naming), newest first."""
    from linode_api4 import Image as LImage

    found = _api("list images", lambda: [_image(i) for i in api.images(LImage.is_public == False)])  # noqa: E712
    mine = [i for i in found if i.label.startswith(f"{image_name}-")]
    return sorted(mine, key=lambda i: (i.created, i.id), reverse=True)


def get_image(api, image_id: str) -> Image:
    from linode_api4 import Image as LImage

    return _api(f"read image {image_id}", lambda: _image(api.load(LImage, image_id)))


def latest(api, image_name: str, region: str | None = None, verified: bool = True) -> Image | None:
    for img in own_images(api, image_name):
        if img.status != "available" or (verified and not img.verified):
            continue
        if region and img.regions.get(region) != "available":
            continue
        return img
    return None


def mark_verified(api, image_id: str) -> None:
    from linode_api4 import Image as LImage

    def tag():
        img = api.load(LImage, image_id)
        img.tags = sorted(set(img.tags or []) | {TAG_VERIFIED})
        img.save()

    _api(f"tag image {image_id}", tag)


def replicate(api, image_id: str, regions: list[str], timeout: float = 3600, interval: float = 15) -> Image:
    """Make the image available in `regions` too (keeps its current regions); waits until done."""
    from linode_api4 import Image as LImage

    img = _api(f"read image {image_id}", api.load, LImage, image_id)
    current = [r.region if isinstance(r.region, str) else r.region.id for r in img.regions or []]
    wanted = current + [r for r in regions if r not in current]
    if wanted != current:
        _api(f"replicate {image_id} to {', '.join(wanted)}", img.replicate, wanted)
    deadline = time.monotonic() + timeout
    while True:
        state = get_image(api, image_id)
        pending = [r for r in wanted if state.regions.get(r) != "available"]
        if not pending:
            return state
        if time.monotonic() > deadline:
            raise BuildFailed(f"Linode image {image_id} not replicated to {', '.join(pending)} within {timeout:.0f}s")
        time.sleep(interval)


# -- instances ------------------------------------------------------------------

@dataclass
class Instance:
    id: int
    label: str
    address: str
    status: str


def launch(api, image_id: str, region: str, instance_type: str, user_data: str | None = None,
           label: str | None = None, authorized_keys: list[str] | None = None, tags: list[str] | None = None,
           wait: bool = True, timeout: float = 600, interval: float = 5) -> Instance:
    """A Linode from the image; user-data reaches cloud-init through the metadata service."""
    kwargs: dict = {"image": image_id, "label": label, "tags": tags or ["djbake"],
                    # Linode requires a root password, keys or users for an image: a random one
                    # that nobody ever sees; access is by key.
                    "root_pass": clouds.random_password()}
    if authorized_keys:
        kwargs["authorized_keys"] = authorized_keys
    if user_data is not None:
        kwargs["metadata"] = api.linode.build_instance_metadata(user_data=user_data)
    created = _api(f"create a Linode from {image_id} in {region}", api.linode.instance_create,
                   instance_type, region, **kwargs)
    inst = created[0] if isinstance(created, tuple) else created
    deadline = time.monotonic() + timeout
    status = inst.status
    while wait and status != "running":
        if time.monotonic() > deadline:
            delete_instance(api, inst.id)
            raise BuildFailed(f"Linode {inst.id} not running within {timeout:.0f}s (last: {status})")
        time.sleep(interval)
        inst.invalidate()
        status = _api(f"read Linode {inst.id}", lambda: inst.status)
    return Instance(inst.id, inst.label, inst.ipv4[0], status)


def delete_instance(api, instance_id: int) -> None:
    from linode_api4 import Instance as LInstance

    _api(f"delete Linode {instance_id}", lambda: LInstance(api, instance_id).delete())


SuiteRunner = Callable[[str, int, str, Path], object]


def verify(api, image_id: str, region: str, instance_type: str, user_data: str | None = None,
           suite: SuiteRunner | None = None, ssh_timeout: float = 600, interval: float = 5) -> dict:
    """Boot a fresh Linode from the image, run the suite over SSH, delete the Linode whatever happens."""
    key = clouds.temporary_key()
    inst = None
    started = time.monotonic()
    try:
        inst = launch(api, image_id, region, instance_type, user_data=user_data, label=None,
                      authorized_keys=[key.public], tags=["djbake", "djbake-verify"], interval=interval)
        clouds.wait_for_login(inst.address, 22, "root", key.private_file, timeout=ssh_timeout, interval=interval)
        result = (suite or clouds.run_suite)(inst.address, 22, "root", key.private_file)
        ok = bool(getattr(result, "ok", result))
        return {"ok": ok, "instance": inst.id, "region": region, "seconds": round(time.monotonic() - started, 1)}
    finally:
        try:
            if inst is not None:
                delete_instance(api, inst.id)
        finally:
            key.remove()


# -- retention -------------------------------------------------------------------

def prune(api, image_name: str, keep: int = 2, dry_run: bool = False) -> list[clouds.PruneDecision]:
    if keep < 1:
        raise UserError("--keep must be 1 or more")
    decisions = clouds.plan_prune(own_images(api, image_name), keep)
    if not dry_run:
        from linode_api4 import Image as LImage

        for d in decisions:
            if d.delete:
                _api(f"delete image {d.image}", lambda: LImage(api, d.image).delete())
    return decisions
