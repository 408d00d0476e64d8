"""The facts djbake relies on, one table per kind of fact.

Every default a template uses comes from here: which operating systems
exist, which source image each provider starts from, and each provider's
default region and machine size. Provider modules read these tables; they
hold no values of their own.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OS:
    name: str
    family: str          # debian | ubuntu
    codename: str
    python: str          # the distribution's python3 (the venv is built on it)
    bootstrappable: bool  # can mmdebstrap build it from packages reachable here


OPERATING_SYSTEMS: dict[str, OS] = {
    "debian-12": OS("debian-12", "debian", "bookworm", "3.11", True),
    "ubuntu-24.04": OS("ubuntu-24.04", "ubuntu", "noble", "3.12", False),
    "ubuntu-22.04": OS("ubuntu-22.04", "ubuntu", "jammy", "3.10", False),
}

ARCHITECTURES = ("amd64", "arm64")

# Source image per provider and OS. "{arch}" is filled from the spec;
# AWS image names use amd64/arm64; the architecture filter x86_64/arm64.
# Owners: 136693071363 is Debian's official AWS account, 099720109477 Canonical's.
SOURCE_IMAGES: dict[str, dict[str, dict[str, str]]] = {
    "aws": {
        "debian-12": {"owner": "136693071363", "name": "debian-12-{arch}-*", "ssh_username": "admin", "root_device": "/dev/xvda"},
        "ubuntu-24.04": {
            "owner": "099720109477",
            "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*",
            "ssh_username": "ubuntu",
            "root_device": "/dev/sda1",
        },
        "ubuntu-22.04": {
            "owner": "099720109477",
            "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{arch}-server-*",
            "ssh_username": "ubuntu",
            "root_device": "/dev/sda1",
        },
    },
    "linode": {
        "debian-12": {"image": "linode/debian12"},
        "ubuntu-24.04": {"image": "linode/ubuntu24.04"},
        "ubuntu-22.04": {"image": "linode/ubuntu22.04"},
    },
    "rackspace": {
        # Image names as listed by `openstack image list` on Rackspace.
        "debian-12": {"flex": "Debian-12", "classic": "Debian 12 (Bookworm) (PVHVM)"},
        "ubuntu-24.04": {"flex": "Ubuntu-24.04", "classic": "Ubuntu 24.04 LTS (Noble Numbat) (PVHVM)"},
        "ubuntu-22.04": {"flex": "Ubuntu-22.04", "classic": "Ubuntu 22.04 LTS (Jammy Jellyfish) (PVHVM)"},
    },
    "digitalocean": {
        "debian-12": {"image": "debian-12-x64"},
        "ubuntu-24.04": {"image": "ubuntu-24-04-x64"},
        "ubuntu-22.04": {"image": "ubuntu-22-04-x64"},
    },
    "hetzner": {
        "debian-12": {"image": "debian-12"},
        "ubuntu-24.04": {"image": "ubuntu-24.04"},
        "ubuntu-22.04": {"image": "ubuntu-22.04"},
    },
    "gcp": {
        "debian-12": {"project": "debian-cloud", "family": "debian-12{gcp_arch}"},
        "ubuntu-24.04": {"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-{arch}"},
        "ubuntu-22.04": {"project": "ubuntu-os-cloud", "family": "ubuntu-2204-lts{gcp_arch}"},
    },
    "azure": {
        "debian-12": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2{azure_arch}"},
        "ubuntu-24.04": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server{azure_arch}"},
        "ubuntu-22.04": {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts-{azure_arch_jammy}",
        },
    },
    "qemu": {
        # Official cloud images; `source_image: bootstrap` builds the base
        # locally with mmdebstrap instead (air-gapped networks, our CI).
        "debian-12": {
            "url": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-{arch}.qcow2",
            "checksum": "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
        },
        "ubuntu-24.04": {
            "url": "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-{arch}.img",
            "checksum": "file:https://cloud-images.ubuntu.com/noble/current/SHA256SUMS",
        },
        "ubuntu-22.04": {
            "url": "https://cloud-images.ubuntu.com/jammy/current/jammy-server-cloudimg-{arch}.img",
            "checksum": "file:https://cloud-images.ubuntu.com/jammy/current/SHA256SUMS",
        },
    },
    "docker": {
        # Built locally from an mmdebstrap rootfs: no registry is needed.
        "debian-12": {"image": "djbake/debian-12-base:latest"},
        "ubuntu-24.04": {"image": "djbake/ubuntu-24.04-base:latest"},
        "ubuntu-22.04": {"image": "djbake/ubuntu-22.04-base:latest"},
    },
}


@dataclass(frozen=True)
class Gallery:
    """Where a multi-region image is published (Azure Compute Gallery)."""
    name: str                  # letters, digits, `_` and `.` only
    storage_account_type: str  # of each replica; Packer >= 1.7 only (1.6.6 leaves Azure's default)


@dataclass(frozen=True)
class ProviderDefaults:
    regions: tuple[str, ...]
    instance_size: str | None
    instance_size_arm64: str | None = None
    gallery: Gallery | None = None


PROVIDER_DEFAULTS: dict[str, ProviderDefaults] = {
    "aws": ProviderDefaults(("us-east-1",), "t3.small", "t4g.small"),
    "linode": ProviderDefaults(("us-east",), "g6-standard-1"),
    "rackspace": ProviderDefaults(("DFW",), "general1-2"),
    "digitalocean": ProviderDefaults(("nyc3",), "s-1vcpu-2gb"),
    "hetzner": ProviderDefaults(("fsn1",), "cx22", "cax11"),
    "gcp": ProviderDefaults(("us-central1-a",), "e2-small", "t2a-standard-1"),
    # Standard_LRS is the cheapest replica storage (and Azure's default).
    "azure": ProviderDefaults(("eastus",), "Standard_B1ms", "Standard_B2pts_v2",
                              gallery=Gallery("djbake", "Standard_LRS")),
    "qemu": ProviderDefaults(("local",), "2cpu-2048mb"),
    "docker": ProviderDefaults(("local",), None),
}

# Identity endpoints for Rackspace: OpenStack Flex (Keystone v3) and the
# classic Rackspace Cloud identity service (v2.0).
RACKSPACE_IDENTITY = {
    "flex": "https://keystone.api.sjc3.rackspacecloud.com/v3",
    "classic": "https://identity.api.rackspacecloud.com/v2.0/",
}

# Pinned Python packages installed into the image's virtualenv.
# Reviewed 2026-11-28; Django 5.2 is the current LTS.
PYTHON_PINS = {
    "django": "5.2.19",
    "gunicorn": "23.0.0",
    "psycopg": "3.2.10",
    "redis": "5.2.1",
    # The installer of djbake-deploy (releases, uv.lock projects); a binary wheel.
    "uv": "0.13.8",
}

# What compiling a Python requirement needs: a C toolchain and the Python and
# libpq headers. In the image only with `stack.build_tools: true`; otherwise
# installed for the baked-in app's requirements alone and removed again
# (scripts/lib.sh with_toolchain), and named by djbake-deploy's error.
BUILD_TOOLS = ("build-essential", "python3-dev", "libpq-dev")

# Packer plugins (Packer 1.7 and newer install them with `packer init`;
# Debian's 1.6.6 has them built in, except linode).
PACKER_PLUGINS = {
    "amazon": ("github.com/hashicorp/amazon", ">= 1.3.0"),
    "linode": ("github.com/linode/linode", ">= 1.5.0"),
    "openstack": ("github.com/hashicorp/openstack", ">= 1.1.0"),
    "digitalocean": ("github.com/digitalocean/digitalocean", ">= 1.4.0"),
    "hcloud": ("github.com/hetznercloud/hcloud", ">= 1.6.0"),
    "googlecompute": ("github.com/hashicorp/googlecompute", ">= 1.1.0"),
    "azure": ("github.com/hashicorp/azure", ">= 2.1.0"),
    "qemu": ("github.com/hashicorp/qemu", ">= 1.1.0"),
    "docker": ("github.com/hashicorp/docker", ">= 1.1.0"),
}

# Ubuntu 24.04 minimal cloud image (amd64 .img, compressed qcow2) as published
# on https://cloud-images.ubuntu.com/minimal/releases/noble/release/ : 227 MiB.
# The benchmark compares our image's size against it (builder/bench.py).
UBUNTU_MINIMAL_MIB = 227
