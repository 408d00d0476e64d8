"""AWS without AWS: moto's EC2 server plus a stand-in host for its instances.

moto keeps records, it starts no machine. So that the build's scripts and
the verification really run somewhere, this harness mirrors moto's
instances onto Docker containers (never onto the CI host):

- an instance that moto says is running gets a container, started from
  the stand-in image (Debian 12 + sshd) for the Debian source AMI, or from
  the committed disk of the instance an AMI was made from (moto's
  SourceInstanceId; region copies follow djbake's copied-from tag);
- stopped/terminated instances stop their container; an AMI created from a
  stopped instance is that container committed: a later instance of the AMI
  boots exactly the sealed disk. (Packer's encrypted AMI is a copy, which
  moto does not link to the instance: see _build_instance.)

Each container runs `boot.sh` at boot (host keys, the default user, the
instance's user-data: cloud-init's part) and its sshd's
AuthorizedKeysCommand asks moto for the public key of *its* instance's key
pair, so Packer's temporary key pair and djbake's verification key reach it
as they would on EC2. The containers reach moto through a relay on their
network's gateway; moto itself listens on 127.0.0.1 only.

Only one instance container runs at a time and it always has the same
address (STANDIN_IP on a network of our own), which djbake is given as
DJBAKE_AWS_SSH_HOST: an instance that starts stops the previous container
(its moto record stays as it is). The mirror follows moto a poll (and a
`docker commit`) behind, so for a few seconds that address may still be
the previous instance's container; djbake's verification therefore waits
for a login with its own key (clouds.wait_for_login), which only the new
instance accepts, as on EC2 a reused private address would require too.

Name resolution: on a network of its own, Docker would point a container at
its embedded resolver (127.0.0.11), which works through NAT rules Docker
puts into the container's own netfilter tables. The image's firewall
(scripts/files/nftables/nftables.conf) starts with `flush ruleset`, as it
must on a VM, and so removes them: every apt step after firewall.sh then
failed with "Temporary failure resolving". The stand-ins therefore get the
host's resolvers in /etc/resolv.conf, as containers on Docker's default
bridge (the docker loop's) do. It is a bind mount, so a committed "disk"
does not contain it; no proxy setting or CA is added to the stand-in.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AMIS = HERE / "amis.json"
STANDIN_DIR = HERE / "standin"
STANDIN_REPO = "djbake/aws-standin"
SUBNET, GATEWAY, STANDIN_IP = "172.31.250.0/24", "172.31.250.1", "172.31.250.10"
LABEL = "djbake.aws-standin"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-not-secret"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port}")


class MotoServer:
    """moto_server on a free 127.0.0.1 port with our Debian-like AMIs; stopped by PID."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MotoServer":
        env = dict(os.environ, MOTO_AMIS_PATH=str(AMIS))
        moto = Path(os.sys.executable).with_name("moto_server")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()


class Relay(threading.Thread):
    """TCP relay from the containers' gateway to moto on 127.0.0.1 (the instances' view of the API)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        super().__init__(daemon=True)
        self.target = target
        self.server = socket.create_server(listen)
        self.server.settimeout(0.5)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.target, timeout=10)
        except OSError:
            conn.close()
            return
        # Only connecting is bounded: moto may take long to answer under load, and
        # a relay timing out there fails the stand-in's AuthorizedKeysCommand.
        up.settimeout(None)

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join(timeout=30)
        conn.close()
        up.close()

    def stop(self) -> None:
        self.stopping.set()
        self.server.close()


def standin_image(client) -> str:
    """The stand-in image: the docker base + sshd + boot.sh; rebuilt only when its inputs change."""
    from builder.docker import base_image as docker_base

    base = docker_base.ensure("debian-12", client=client)
    digest = hashlib.sha256(base.input_hash.encode())
    for f in sorted(STANDIN_DIR.iterdir()):
        digest.update(f.name.encode() + f.read_bytes())
    tag = f"{STANDIN_REPO}:{digest.hexdigest()[:12]}"
    if docker_base.existing(client, tag) is not None:
        return tag
    c = client.containers.create(base.reference, entrypoint=["/bin/sh", "/tmp/standin/setup.sh"])
    try:
        c.put_archive("/tmp", _tar({f"standin/{f.name}": f.read_bytes() for f in STANDIN_DIR.iterdir()}))
        c.start()
        code = c.wait(timeout=600)["StatusCode"]
        if code != 0:
            raise RuntimeError(f"stand-in setup failed ({code}):\n{c.logs(tail=30).decode(errors='replace')}")
        repo, t = tag.split(":")
        c.commit(repository=repo, tag=t, changes=['ENTRYPOINT ["/sbin/init"]', f'LABEL {LABEL}="base"'])
    finally:
        c.remove(force=True)
    return tag


def host_resolv_conf(dest: Path, sources: tuple[Path, ...] = (Path("/etc/resolv.conf"),
                                                              Path("/run/systemd/resolve/resolv.conf"))) -> Path:
    """A resolv.conf naming the host's own resolvers, as Docker writes for its default bridge.

    A loopback nameserver (a local stub such as systemd-resolved's) is
    unreachable from a container, so it is left out, and the next source is
    tried, as Docker does; no public resolver is put in its place.
    """
    for src in sources:
        if not src.exists():
            continue
        lines = src.read_text().splitlines()
        servers = [ln for ln in lines if ln.split()[:1] == ["nameserver"] and len(ln.split()) > 1
                   and not ln.split()[1].startswith(("127.", "::1"))]
        if servers:
            rest = [ln for ln in lines if ln.split()[:1] in (["search"], ["options"])]
            dest.write_text("\n".join([*servers, *rest]) + "\n")
            return dest
    raise RuntimeError(f"no non-loopback nameserver in {', '.join(map(str, sources))}: "
                       "the stand-in containers could not resolve Debian's mirror")


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _remove_stale(client) -> None:
    """Containers and the network a killed earlier run left (its PID is gone): the subnet is fixed."""
    for net in client.networks.list(names=["djbake-aws-"]):
        pid = net.name.rsplit("-", 1)[-1]
        if not net.name.startswith("djbake-aws-") or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        net.reload()
        for c in net.containers:
            if LABEL in c.labels:
                c.remove(force=True)
        net.remove()


class InstanceMirror(threading.Thread):
    """Mirrors moto's instances onto stand-in containers (see the module docstring)."""

    def __init__(self, client, moto_url: str, relay_url: str, regions: list[str], standin: str,
                 resolv_conf: Path, default_user: str = "admin"):
        super().__init__(daemon=True)
        import boto3

        self.client = client
        self.resolv_conf = resolv_conf
        self.relay_url = relay_url
        self.standin = standin
        self.default_user = default_user
        self.ec2 = {r: boto3.client("ec2", region_name=r, endpoint_url=moto_url,
                                    aws_access_key_id="testing", aws_secret_access_key="testing-not-secret")
                    for r in regions}
        _remove_stale(client)
        self.network = client.networks.create(
            f"djbake-aws-{os.getpid()}", driver="bridge",
            ipam={"Driver": "default", "Config": [{"Subnet": SUBNET, "Gateway": GATEWAY}]})
        self.containers: dict[str, object] = {}   # instance id -> container
        self.images: dict[str, str] = {}          # "region:ami" -> committed image id
        self.committed: list[str] = []
        self.events: list[str] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    # -- the loop ----------------------------------------------------------
    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception as e:  # noqa: BLE001 - reported by the test, the loop goes on
                self.errors.append(repr(e))
            self.stopping.wait(1)

    def poll(self) -> None:
        with self.lock:
            for region, ec2 in self.ec2.items():
                for res in ec2.describe_instances()["Reservations"]:
                    for inst in res["Instances"]:
                        self._instance(region, inst)
                for image in ec2.describe_images(Owners=["self"])["Images"]:
                    self._image(region, image)

    def _instance(self, region: str, inst: dict) -> None:
        iid, state = inst["InstanceId"], inst["State"]["Name"]
        c = self.containers.get(iid)
        if state == "running" and c is None:
            image = self.images.get(f"{region}:{inst['ImageId']}")
            if image is None and not self._is_ours(region, inst["ImageId"]):
                image = self.standin
            if image is None:
                return  # an AMI of ours whose disk is not committed yet: next round
            self._boot(region, iid, image)
        elif state in ("stopping", "stopped", "shutting-down", "terminated") and c is not None:
            if c.status != "exited":
                self._halt(c)
                self.events.append(f"{iid} {state}: container {c.short_id} stopped")

    def _is_ours(self, region: str, ami: str) -> bool:
        found = self.ec2[region].describe_images(Filters=[{"Name": "image-id", "Values": [ami]}])["Images"]
        return bool(found) and found[0]["OwnerId"] not in {a["owner_id"] for a in json.loads(AMIS.read_text())}

    def _image(self, region: str, image: dict) -> None:
        key = f"{region}:{image['ImageId']}"
        if key in self.images:
            return
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        if tags.get("djbake:copied-from") in self.images:
            self.images[key] = self.images[tags["djbake:copied-from"]]
            return
        source = image.get("SourceInstanceId") or self._build_instance(region, tags)
        c = self.containers.get(source or "")
        if c is None:
            return
        self._halt(c)
        committed = c.commit(repository=STANDIN_REPO, tag=f"ami-{image['ImageId']}",
                             changes=[f'LABEL {LABEL}="{key}"'])
        self.committed.append(committed.id)
        self.images[key] = committed.id
        self.events.append(f"{key}: committed disk of {source} ({c.short_id})")

    def _build_instance(self, region: str, tags: dict[str, str]) -> str | None:
        """The instance Packer built this AMI on, for an AMI moto gives no SourceInstanceId.

        With `encrypt_boot`, Packer makes an AMI of the instance, copies it
        encrypted and deregisters the first one within a second, and moto
        keeps no lineage of copies. The build instance is then the one that
        carries the AMI's build id in Packer's run_tags, without the
        djbake:purpose tag that djbake's own verify/launch instances have.
        """
        build = tags.get("djbake:build-id")
        if not build:
            return None  # Packer tags the copy a moment after CopyImage: next round
        found = [i for r in self.ec2[region].describe_instances(
                     Filters=[{"Name": "tag:djbake:build-id", "Values": [build]}])["Reservations"]
                 for i in r["Instances"]
                 if not any(t["Key"] == "djbake:purpose" for t in i.get("Tags", []))]
        return found[0]["InstanceId"] if len(found) == 1 else None

    def _boot(self, region: str, iid: str, image: str) -> None:
        for other in self.containers.values():
            self._halt(other)
        conf = (f"ENDPOINT={self.relay_url}\nREGION={region}\nINSTANCE_ID={iid}\n"
                f"DEFAULT_USER={self.default_user}\n").encode()
        c = self.client.containers.create(
            image, detach=True, name=f"djbake-standin-{iid}", hostname=iid,
            tmpfs={"/run": "", "/run/lock": ""}, cgroupns="host",
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                     str(self.resolv_conf): {"bind": "/etc/resolv.conf", "mode": "rw"}},
            cap_add=["SYS_ADMIN", "NET_ADMIN"], security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            network=self.network.name, labels={LABEL: iid})
        self.containers[iid] = c
        self.network.disconnect(c)
        self.network.connect(c, ipv4_address=STANDIN_IP)
        info = tarfile.TarInfo("etc/djbake-standin.conf")
        info.size, info.mode = len(conf), 0o644
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.addfile(info, io.BytesIO(conf))
        c.put_archive("/", buf.getvalue())
        c.start()
        c.reload()
        self.events.append(f"{iid} running in {region}: container {c.short_id} from {image[:19]}")

    @staticmethod
    def _halt(c) -> None:
        c.reload()
        if c.status == "running":
            c.kill(signal="SIGRTMIN+3")  # systemd's "halt"
            try:
                c.wait(timeout=30)
            except Exception:  # noqa: BLE001
                c.kill()
            c.reload()

    def read_file(self, iid: str, path: str) -> str:
        """A file from the disk of instance iid's container, running or stopped."""
        stream, _ = self.containers[iid].get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            return tar.extractfile(member).read().decode(errors="replace")

    def exec(self, iid: str, cmd: str) -> tuple[int, str]:
        c = self.containers[iid]
        code, out = c.exec_run(["sh", "-c", cmd])
        return code, out.decode(errors="replace")

    def diagnose(self) -> str:
        """What a failed step needs: the mirror's events and, per container, sshd and fail2ban's view."""
        lines = [f"mirror events: {self.events}", f"mirror errors: {self.errors}"]
        with self.lock:
            for iid, c in self.containers.items():
                try:
                    c.reload()
                    lines.append(f"--- {iid} ({c.short_id}): {c.status}")
                    if c.status == "running":
                        for cmd in ("fail2ban-client status sshd", "nft list ruleset | grep -B2 -A6 f2b",
                                    "journalctl -u ssh -u fail2ban -u standin-boot --no-pager -n 40 -o short-monotonic"):
                            code, out = c.exec_run(["sh", "-c", cmd])
                            lines.append(f"$ {cmd} ({code})\n{out.decode(errors='replace').strip()}")
                except Exception as e:  # noqa: BLE001 - best effort, for a failure report
                    lines.append(f"--- {iid}: {e!r}")
        return "\n".join(lines)

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=30)
        with self.lock:
            for c in self.containers.values():
                try:
                    c.remove(force=True)
                except Exception:  # noqa: BLE001
                    pass
            for image_id in self.committed:
                try:
                    self.client.images.remove(image_id, force=True)
                except Exception:  # noqa: BLE001
                    pass
            self.network.remove()
