"""The one way djbake reaches the local Docker engine (base image, docker provider, bench, apt cache route)."""
from __future__ import annotations

import ipaddress

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


def bridge_gateway(client) -> str | None:
    """The default bridge's gateway: the host's address that a container reaches it at.

    An engine's first start (no docker0 yet, an empty network store) reports the bridge's subnet without
    its gateway (moby/moby#26799, seen here on a new machine); the gateway is then Docker's default, the
    subnet's first address (172.17.0.1 for 172.17.0.0/16)."""
    for config in client.networks.get("bridge").attrs["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return config["Gateway"].split("/")[0]
        subnet = ipaddress.ip_network(config["Subnet"], strict=False) if config.get("Subnet") else None
        if subnet and subnet.version == 4 and subnet.num_addresses > 2:
            return str(next(subnet.hosts()))
    return None
