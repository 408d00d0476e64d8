"""`djbake launch --provider docker`: a container from the newest verified docker image.

Started as the build and the tests start theirs (builder/docker/base_image.py: systemd
as PID 1, not --privileged), then given cloud-init user-data the way a VM
would apply it; the image has no cloud-init, so this module applies the
parts a deploy uses, in cloud-init's order: ca_certs, write_files, runcmd.
Any other key is refused by name rather than silently skipped.
"""
from __future__ import annotations

import base64
import io
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from builder.catalog import channels
from builder.catalog import store as catalog
from builder.docker import base_image as docker_base
from builder.docker import client as client_mod
from builder.errors import BuildFailed, UserError

PURPOSE = "launch:"          # docker_base.LABEL value prefix: launched, not a build or a test
SUPPORTED = ("ca_certs", "write_files", "runcmd")


@dataclass(frozen=True)
class Launched:
    name: str
    container_id: str
    image: str
    address: str

    def describe(self) -> str:
        return f"{self.name}: container {self.container_id[:12]} of {self.image}, http://{self.address}/"


def parse(text: str, source: str) -> dict:
    """The user-data's supported parts; bad input is a UserError naming the file and line."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise UserError(f"{source}{where}: not YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: user-data must be a #cloud-config mapping")
    unknown = sorted(set(data) - set(SUPPORTED))
    if unknown:
        raise UserError(f"{source}: {', '.join(unknown)}: not applied in a docker container "
                        f"(supported: {', '.join(SUPPORTED)})")
    for i, f in enumerate(data.get("write_files") or []):
        if not isinstance(f, dict) or not isinstance(f.get("path"), str) or not f["path"].startswith("/"):
            raise UserError(f"{source}: write_files[{i}].path: an absolute path is required")
    for i, c in enumerate(data.get("runcmd") or []):
        if not isinstance(c, (str, list)):
            raise UserError(f"{source}: runcmd[{i}]: a string or a list of arguments")
    certs = data.get("ca_certs") or {}
    trusted = certs.get("trusted") if isinstance(certs, dict) else None
    if not isinstance(certs, dict) or not isinstance(trusted or [], list) or not all(isinstance(c, str) for c in trusted or []):
        raise UserError(f"{source}: ca_certs.trusted: a list of PEM certificates")
    return data


def _put(container, path: str, data: bytes, mode: int) -> None:
    parent, name = path.rsplit("/", 1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))
    _run(container, ["mkdir", "-p", parent or "/"], "write_files")
    if not container.put_archive(parent or "/", buf.getvalue()):
        raise BuildFailed(f"write_files: could not write {path}")


def _run(container, cmd: list[str], what: str) -> str:
    code, out = container.exec_run(cmd)
    text = out.decode(errors="replace")
    if code != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise BuildFailed(f"{what}: `{shlex.join(cmd)}` failed (exit {code}):\n{tail}")
    return text


def apply(container, data: dict, log=print) -> None:
    """ca_certs, then write_files, then runcmd (each command's output printed)."""
    trusted = (data.get("ca_certs") or {}).get("trusted") or []
    for i, pem in enumerate(trusted):
        _put(container, f"/usr/local/share/ca-certificates/djbake-launch-{i}.crt", pem.encode(), 0o644)
    if trusted:
        _run(container, ["update-ca-certificates"], "ca_certs")
    for f in data.get("write_files") or []:
        content = f.get("content", "")
        raw = base64.b64decode(content) if f.get("encoding") in ("b64", "base64") else str(content).encode()
        _put(container, f["path"], raw, int(str(f.get("permissions", "0644")), 8))
        if f.get("owner"):
            _run(container, ["chown", str(f["owner"]), f["path"]], "write_files")
    for c in data.get("runcmd") or []:
        cmd = ["sh", "-c", c] if isinstance(c, str) else [str(a) for a in c]
        log(f"runcmd: {shlex.join(cmd)}")
        out = _run(container, cmd, "runcmd")
        if out.strip():
            log(out.rstrip())


def read_user_data(path: str) -> str:
    """The file's text, checked (bad user-data fails before a container starts)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UserError(f"--user-data {path}: {e.strerror or e}") from None
    parse(text, path)
    return text


def _address(container) -> str:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), "")


def start(image: str, name: str, user_data: str | None = None, source: str = "user-data", client=None,
          log=print) -> Launched:
    client = client or client_mod.connect()
    data = parse(user_data, source) if user_data else {}
    if find(name, client):
        raise UserError(f"a container named {name} is already launched",
                        hint=f"djbake launch --provider docker --name {name} --stop")
    container = docker_base.start(image, PURPOSE + name, client)
    try:
        apply(container, data, log)
    except BaseException:
        docker_base.stop(container)
        raise
    return Launched(name, container.id, image, _address(container))


def find(name: str, client=None):
    client = client or client_mod.connect()
    found = client.containers.list(filters={"label": f"{docker_base.LABEL}={PURPOSE}{name}"})
    return found[0] if found else None


def running(client=None) -> list[Launched]:
    client = client or client_mod.connect()
    out = []
    for c in client.containers.list(filters={"label": docker_base.LABEL}):
        purpose = c.labels.get(docker_base.LABEL, "")
        if purpose.startswith(PURPOSE):
            image = c.image.tags[0] if c.image.tags else c.image.id
            out.append(Launched(purpose[len(PURPOSE):], c.id, image, _address(c)))
    return out


def stop(name: str, client=None) -> bool:
    container = find(name, client)
    if container is None:
        return False
    docker_base.stop(container)
    return True


def cmd(args) -> int:
    """The CLI: --stop, --list, or a container from --docker-image or the newest verified image."""
    if args.stop:
        if not stop(args.name):
            raise UserError(f"no container named {args.name} was launched", hint="djbake launch --provider docker --list")
        print(f"stopped container {args.name}")
        return 0
    if args.list:
        items = running()
        for item in items:
            print(item.describe())
        if not items:
            print("no launched container is running")
        return 0
    image = args.docker_image
    if not image:
        if getattr(args, "channel", None):  # the channel's build only (refused if revoked or unverified)
            entry = channels.resolve(catalog.Catalog(), args.channel, "docker", args.image_name)[0]
        else:
            entry = catalog.Catalog().latest("docker", image=args.image_name)
        if entry is None:
            raise UserError("no verified docker image in the catalog", hint="make image PROVIDER=docker")
        image = entry.artifact
    user_data = read_user_data(args.user_data) if args.user_data else None
    print(f"launching {image}; waiting for systemd...", flush=True)
    launched = start(image, args.name, user_data, source=args.user_data or "user-data")
    print(launched.describe())
    return 0
