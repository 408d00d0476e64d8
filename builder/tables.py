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
    bootstrappable: bool  # can mmdebstrap build it from packages reachable here (Ubuntu: its
                          # archive over http, its keyring pinned: builder/ubuntu_keyring.py)
    postgresql: str = ""  # major version of `postgresql`: /etc/postgresql/<it>/main
    glibc: tuple[int, int] = (0, 0)  # libc6: the newest manylinux tag its Python installs
    # Archive components the stack needs: Ubuntu has python3-venv and
    # fail2ban in universe, Debian everything in main.
    components: tuple[str, ...] = ("main",)
    kernel: str = ""      # the kernel package a bootstrapped VM base installs
    openssh: str = ""     # upstream OpenSSH version of openssh-server
    nginx: str = ""       # upstream nginx version
    # sshd is started by ssh.socket (socket activation) by default, as on
    # Ubuntu since 22.10; the service unit is ssh.service on all five.
    ssh_socket: bool = False


# One row of facts per OS. Checked 2026-11-30 against the archives' amd64
# Packages indexes (main, and universe for Ubuntu) of the release pocket:
# deb.debian.org (trixie, bookworm) and archive.ubuntu.com (resolute, noble,
# jammy); -updates/-security may carry newer point releases, same majors.
# Not listed (a located error in the spec): debian-11 (LTS ended 2026-08),
# ubuntu-20.04 (standard support ended 2025-05).
OPERATING_SYSTEMS: dict[str, OS] = {
    "debian-13": OS("debian-13", "debian", "trixie", "3.13", True, postgresql="17", glibc=(2, 41),
                    kernel="linux-image-cloud-amd64", openssh="10.0", nginx="1.26"),
    "debian-12": OS("debian-12", "debian", "bookworm", "3.11", True, postgresql="15", glibc=(2, 36),
                    kernel="linux-image-cloud-amd64", openssh="9.2", nginx="1.22"),
    "ubuntu-26.04": OS("ubuntu-26.04", "ubuntu", "resolute", "3.14", True, postgresql="18", glibc=(2, 43),
                       components=("main", "universe"), kernel="linux-image-virtual", openssh="10.2",
                       nginx="1.28", ssh_socket=True),
    "ubuntu-24.04": OS("ubuntu-24.04", "ubuntu", "noble", "3.12", True, postgresql="16", glibc=(2, 39),
                       components=("main", "universe"), kernel="linux-image-virtual", openssh="9.6",
                       nginx="1.24", ssh_socket=True),
    "ubuntu-22.04": OS("ubuntu-22.04", "ubuntu", "jammy", "3.10", True, postgresql="14", glibc=(2, 35),
                       components=("main", "universe"), kernel="linux-image-virtual", openssh="8.9",
                       nginx="1.18"),
}

DEFAULT_OS = "debian-13"


def oses_with_python(version: str) -> list[str]:
    """The OSes whose python3 is `version` (for an honest stack.python error)."""
    return [name for name, os_ in OPERATING_SYSTEMS.items() if os_.python == version]


ARCHITECTURES = ("amd64", "arm64")

# Source image per provider and OS. "{arch}" is filled from the spec;
# AWS image names use amd64/arm64; the architecture filter x86_64/arm64.
# Owners: 136693071363 is Debian's official AWS account, 099720109477 Canonical's.
# The debian-13 and ubuntu-26.04 names (added 2026-11-30) could not be looked
# up in the clouds' APIs from here; each was found in public configurations
# that use it (code search): AWS debian-13-{arch}-* (owner 136693071363) and
# hvm-ssd-gp3/ubuntu-resolute-26.04-{arch}-server-*, linode/debian13 and
# linode/ubuntu26.04, DigitalOcean debian-13-x64 and ubuntu-26-04-x64,
# Hetzner debian-13 and ubuntu-26.04, GCP families debian-13(-arm64) and
# ubuntu-2604-lts-{arch}, Azure Debian:debian-13:13-gen2 and
# Canonical:ubuntu-26_04-lts:server(-arm64). NOT confirmed: the Rackspace
# names (they follow the debian-12/ubuntu-24.04 pattern) and the qemu cloud
# image URLs (cloud.debian.org and cloud-images.ubuntu.com cannot be reached
# here; they follow each site's layout for the older releases).
SOURCE_IMAGES: dict[str, dict[str, dict[str, str]]] = {
    "aws": {
        "debian-13": {"owner": "136693071363", "name": "debian-13-{arch}-*", "ssh_username": "admin", "root_device": "/dev/xvda"},
        "debian-12": {"owner": "136693071363", "name": "debian-12-{arch}-*", "ssh_username": "admin", "root_device": "/dev/xvda"},
        "ubuntu-26.04": {
            "owner": "099720109477",
            "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-resolute-26.04-{arch}-server-*",
            "ssh_username": "ubuntu",
            "root_device": "/dev/sda1",
        },
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
        "debian-13": {"image": "linode/debian13"},
        "debian-12": {"image": "linode/debian12"},
        "ubuntu-26.04": {"image": "linode/ubuntu26.04"},
        "ubuntu-24.04": {"image": "linode/ubuntu24.04"},
        "ubuntu-22.04": {"image": "linode/ubuntu22.04"},
    },
    "rackspace": {
        # Image names as listed by `openstack image list` on Rackspace.
        "debian-13": {"flex": "Debian-13", "classic": "Debian 13 (Trixie) (PVHVM)"},
        "debian-12": {"flex": "Debian-12", "classic": "Debian 12 (Bookworm) (PVHVM)"},
        "ubuntu-26.04": {"flex": "Ubuntu-26.04", "classic": "Ubuntu 26.04 LTS (Resolute Raccoon) (PVHVM)"},
        "ubuntu-24.04": {"flex": "Ubuntu-24.04", "classic": "Ubuntu 24.04 LTS (Noble Numbat) (PVHVM)"},
        "ubuntu-22.04": {"flex": "Ubuntu-22.04", "classic": "Ubuntu 22.04 LTS (Jammy Jellyfish) (PVHVM)"},
    },
    "digitalocean": {
        "debian-13": {"image": "debian-13-x64"},
        "debian-12": {"image": "debian-12-x64"},
        "ubuntu-26.04": {"image": "ubuntu-26-04-x64"},
        "ubuntu-24.04": {"image": "ubuntu-24-04-x64"},
        "ubuntu-22.04": {"image": "ubuntu-22-04-x64"},
    },
    "hetzner": {
        "debian-13": {"image": "debian-13"},
        "debian-12": {"image": "debian-12"},
        "ubuntu-26.04": {"image": "ubuntu-26.04"},
        "ubuntu-24.04": {"image": "ubuntu-24.04"},
        "ubuntu-22.04": {"image": "ubuntu-22.04"},
    },
    "gcp": {
        "debian-13": {"project": "debian-cloud", "family": "debian-13{gcp_arch}"},
        "debian-12": {"project": "debian-cloud", "family": "debian-12{gcp_arch}"},
        "ubuntu-26.04": {"project": "ubuntu-os-cloud", "family": "ubuntu-2604-lts-{arch}"},
        "ubuntu-24.04": {"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-{arch}"},
        "ubuntu-22.04": {"project": "ubuntu-os-cloud", "family": "ubuntu-2204-lts{gcp_arch}"},
    },
    "azure": {
        "debian-13": {"publisher": "Debian", "offer": "debian-13", "sku": "13-gen2{azure_arch}"},
        "debian-12": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2{azure_arch}"},
        "ubuntu-26.04": {"publisher": "Canonical", "offer": "ubuntu-26_04-lts", "sku": "server{azure_arch}"},
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
        "debian-13": {
            "url": "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-{arch}.qcow2",
            "checksum": "file:https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS",
        },
        "debian-12": {
            "url": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-{arch}.qcow2",
            "checksum": "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
        },
        "ubuntu-26.04": {
            "url": "https://cloud-images.ubuntu.com/resolute/current/resolute-server-cloudimg-{arch}.img",
            "checksum": "file:https://cloud-images.ubuntu.com/resolute/current/SHA256SUMS",
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
        "debian-13": {"image": "djbake/debian-13-base:latest"},
        "debian-12": {"image": "djbake/debian-12-base:latest"},
        "ubuntu-26.04": {"image": "djbake/ubuntu-26.04-base:latest"},
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
    # Free disk (GB) a build needs on this host, where it writes its large
    # files (doctor.disk_path): below `disk_needed_gb` it stops before it
    # starts; below `disk_recommended_gb` the doctor warns. Cloud builds keep
    # nothing large here.
    disk_needed_gb: float = 0.0
    disk_recommended_gb: float = 0.0


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
    # qemu: the base image cache, a 10 GB sparse disk and its layers, compressed output, wheels.
    "qemu": ProviderDefaults(("local",), "2cpu-2048mb", disk_needed_gb=5.0, disk_recommended_gb=20.0),
    # docker: the engine's data root takes the build container's layer and its commit; a default
    # build with its base cached took 1.2 GB at its peak (the package cache's first fill included).
    "docker": ProviderDefaults(("local",), None, disk_needed_gb=2.0, disk_recommended_gb=4.0),
}

# Identity endpoints for Rackspace: OpenStack Flex (Keystone v3) and the
# classic Rackspace Cloud identity service (v2.0).
RACKSPACE_IDENTITY = {
    "flex": "https://keystone.api.sjc3.rackspacecloud.com/v3",
    "classic": "https://identity.api.rackspacecloud.com/v2.0/",
}

# Pinned Python packages installed into the image's virtualenv. Reviewed
# 2026-11-30 against PyPI (`pip index versions`); each has a wheel for
# Python 3.10 to 3.14 (psycopg-binary: manylinux_2_17 cp310-cp314), so the
# pins serve every OS below except Django 6.x (Python >= 3.12).
# Django: the latest release, 6.1, not the LTS (5.2, security fixes to April
# 2028): a new project starts on 6.1 today (`pip install django`, Wagtail 8
# needs >=6.1,<6.2, current cookiecutter-django), and 6.1 goes straight on to
# the next LTS, 6.2 (April 2027). Debian 12 and Ubuntu 22.04 cannot run 6.x:
# their specs pin DJANGO_LTS (the spec says so in a located error).
PYTHON_PINS = {
    "django": "6.1.3",
    "gunicorn": "27.0.1",
    "psycopg": "3.3.9",
    "redis": "8.1.0",
    # The installer of djbake-deploy (releases, uv.lock projects); a binary wheel.
    "uv": "0.13.8",
}
DJANGO_LTS = "5.2.19"

# The oldest Python each Django series supports (Django's release notes).
DJANGO_MIN_PYTHON = {"5.2": "3.10", "6.0": "3.12", "6.1": "3.12"}

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

# Cluster compression of the qemu provider's qcow2 (Packer's `qemu-img convert
# -c`, given `-o compression_type=` through qemu_img_args). zstd: QEMU 5.1 and
# later read it (Debian 11+, Ubuntu 22.04+; this host has 7.2). Every reader
# djbake has is this host's QEMU: fresh-boot verification, `djbake launch`,
# the bench; no cloud provider imports the qcow2 (each bakes with its own
# builder). Measured here on a baked default image (bench/changes/qcow2_zstd.sh):
# 3% smaller than zlib, written 4.7x and read back 1.5x faster. For an older
# QEMU (Ubuntu 20.04's 4.2; RHEL 8 before 8.3): `qemu-img convert -c -o
# compression_type=zlib -O qcow2 IN OUT`.
QCOW2_COMPRESSION = "zstd"

# Ubuntu 24.04 minimal cloud image (amd64 .img, compressed qcow2) as published
# on https://cloud-images.ubuntu.com/minimal/releases/noble/release/ : 227 MiB.
# The benchmark compares our image's size against it (builder/bench/report.py).
UBUNTU_MINIMAL_MIB = 227
