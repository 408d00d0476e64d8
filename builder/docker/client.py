"""The one way djbake reaches the local Docker engine (base image, docker provider, bench, apt cache route)."""
from __future__ import annotations

from builder.errors import UserError


def connect():
    """A docker.DockerClient that answered a ping, or a UserError naming the way to start one."""
    import docker  # function-local: importing the SDK takes ~1.5 s here, and most commands never need it

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any connection problem means the same to the user
        raise UserError(f"no Docker engine answers: {e}", hint="bash scripts/host/start-dockerd.sh") from e
    return client
