"""Cloud operations djbake does itself, beside Packer: select, launch, verify, prune, replicate.

One module per API: `aws` (boto3), `linode` (linode_api4) and `openstack`
(openstacksdk, for Rackspace). The provider modules in builder/providers/ call them from
their hooks. Shared here: a throw-away SSH key pair and waiting for an SSH login.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from builder.bake import gate
from builder.errors import BuildFailed


@dataclass
class KeyPair:
    private_file: Path
    public: str

    def remove(self) -> None:
        self.private_file.unlink(missing_ok=True)


def temporary_key(comment: str = "djbake-verify") -> KeyPair:
    """An Ed25519 key pair for one verification; the private half in a 0600 file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    fd, name = tempfile.mkstemp(prefix="djbake-key-")
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    os.chmod(name, 0o600)
    return KeyPair(Path(name), f"{public.decode()} {comment}")


def wait_for_login(host: str, port: int, user: str, key_file: Path, timeout: float = 600,
                   interval: float = 3, refusals: int = 4) -> float:
    """Seconds until `user` logs in over SSH with key_file; the suite starts only then.

    An open port is not enough: sshd may answer before the instance has the
    key, and an address that was another machine's a moment ago (a replaced
    instance, a reused private IP) may still answer for the old one. Only a
    login with this verification's own key proves it is the new instance.
    Refused logins are few and spaced out (at most `refusals`, doubling the
    wait), as the image's fail2ban bans an address after five.
    """
    import paramiko

    started = time.monotonic()
    deadline = started + timeout
    refused, wait, last = 0, interval, ""
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())   # a fresh instance: no known key yet
        try:
            client.connect(host, port=port, username=user, key_filename=str(key_file), timeout=10,
                           banner_timeout=30, auth_timeout=30, allow_agent=False, look_for_keys=False)
            return time.monotonic() - started
        except paramiko.AuthenticationException as e:
            refused, last = refused + 1, f"login refused ({e})"
            if refused >= refusals:
                raise BuildFailed(f"{host}:{port} refused {user}'s login {refused} times: the instance did not "
                                  f"get the verification key, or the image's default user is wrong") from None
            wait *= 2
        except (OSError, paramiko.SSHException, EOFError) as e:
            last = f"{type(e).__name__}: {e}"
        finally:
            client.close()
        if time.monotonic() + wait > deadline:
            raise BuildFailed(f"no SSH login as {user} on {host}:{port} within {timeout:.0f}s ({last})")
        time.sleep(wait)


def random_password() -> str:
    """A strong one-off root password (the API requires one or a key); never printed or stored."""
    import secrets

    return secrets.token_urlsafe(24) + "-Aa1"


def run_suite(host: str, port: int, user: str, key_file: Path, log_dir: Path | None = None):
    """The image's testinfra suite over SSH (builder/bake/gate.py), as the fresh-boot verification."""
    return gate.run_suite(host=host, port=port, user=user, key_file=str(key_file), log_dir=log_dir,
                          fresh_boot=True, name="fresh-boot")


# -- retention: the same rule on every cloud ------------------------------------

@dataclass(frozen=True)
class PruneDecision:
    """The shape `djbake prune` prints (the same as builder/clouds/aws.py's)."""

    region: str
    image: str
    build_id: str | None
    verified: bool
    delete: bool
    why: str


def plan_prune(images: list, keep: int) -> list[PruneDecision]:
    """`images` newest first (each with .id, .region, .build_id, .verified): keep the newest `keep`
    and always the newest verified one; delete the rest."""
    newest_verified = next((i.id for i in images if i.verified), None)
    out = []
    for n, img in enumerate(images):
        if n < keep:
            delete, why = False, f"one of the newest {keep}"
        elif img.id == newest_verified:
            delete, why = False, "newest verified"
        else:
            delete, why = True, "older than the newest kept"
        out.append(PruneDecision(img.region, img.id, img.build_id, img.verified, delete, why))
    return out


def record_pruned(cat, provider: str, image_name: str, decisions: list[PruneDecision]) -> None:
    """The catalog follows a prune: deleted images get state `deregistered`."""
    gone = {d.image for d in decisions if d.delete}
    for e in cat.query(provider=provider, image=image_name, state=None):
        if e.artifact in gone:
            cat.update(e.id, state="deregistered")
