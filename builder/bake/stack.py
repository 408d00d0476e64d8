"""What goes into the image: the provisioning scripts, in order, and their inputs.

The scripts in scripts/ are the same for every provider; this table says
which of them run for a spec, and `environment()` is the only way values
from the spec reach them (as environment variables, never edited in).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from builder import tables
from builder.spec import Spec, app_source

# Layers: where a provider builds in layers (qemu), the scripts of the
# "stack" layer run once into a cached disk (builder/bake/layers.py) and a build
# runs only the "image" scripts on top of it, so changing the app does not
# reinstall the packages. The stack layer is the slow, rarely changing part:
# apt, Python, the database server, and the services that do not depend on
# the app (nginx, certbot, nftables, kernel hardening, fail2ban). The image
# layer keeps what must not be live in the stack disk when a later image
# layer boots it: gunicorn's units (they would start before first boot
# exists), sshd's hardening (Packer's SSH session of the image layer meets
# the stock sshd, as before), the unattended-upgrades switch (apt's timers
# would catch up at that boot and race the build's dpkg), first boot (it
# runs the app's migrations for the gate) and the backup timer.
# Every provider runs SCRIPTS in this one order, layered or not.
STACK_LAYER = "stack"
IMAGE_LAYER = "image"


@dataclass(frozen=True)
class Script:
    file: str
    why: str
    when: Callable[[Spec], bool] = lambda spec: True
    layer: str = IMAGE_LAYER
    # The apt packages the script installs (its apt_install lines), for a base that can hold them
    # before the script runs: see preinstall(). tests/test_layers.py holds this to the scripts.
    packages: Callable[[Spec], tuple[str, ...]] = lambda spec: ()


def _always(*names: str) -> Callable[[Spec], tuple[str, ...]]:
    return lambda spec: names


def _database_packages(spec: Spec) -> tuple[str, ...]:
    if spec.stack.database == "postgresql":
        return ("postgresql", "postgresql-client", "s3cmd")
    return ("postgresql-client",)


def _python_packages(spec: Spec) -> tuple[str, ...]:
    return ("python3", "python3-venv", *(tables.BUILD_TOOLS if spec.stack.build_tools else ()))


# Run in this order. seal.sh is not here: it runs after the in-build gate.
SCRIPTS: tuple[Script, ...] = (
    Script("base.sh", "apt retries, base packages, time sync, extra packages", layer=STACK_LAYER,
           packages=_always("ca-certificates", "curl", "git", "gnupg", "logrotate", "systemd-timesyncd",
                            "openssh-server", "sudo", "tzdata", "unattended-upgrades")),
    Script("python.sh", "python3 and venv (the build tools only with stack.build_tools); the django user and /srv/app; the virtualenv",
           layer=STACK_LAYER, packages=_python_packages),
    Script("postgresql.sh", "PostgreSQL server (or client only for an external database)", layer=STACK_LAYER,
           packages=_database_packages),
    Script("redis.sh", "Redis for caching and queues", lambda s: s.stack.redis, layer=STACK_LAYER,
           packages=_always("redis-server")),
    Script("nginx.sh", "nginx in front of gunicorn", lambda s: s.stack.nginx, layer=STACK_LAYER,
           packages=_always("nginx")),
    Script("certbot.sh", "certbot with the nginx plugin", lambda s: s.stack.certbot and s.stack.nginx,
           layer=STACK_LAYER, packages=_always("certbot", "python3-certbot-nginx")),
    Script("firewall.sh", "nftables: 22, 80, 443 only", layer=STACK_LAYER, packages=_always("nftables")),
    Script("harden.sh", "kernel/network parameters, module blacklist, no core dumps, banner, umask, journal cap, restart policies",
           layer=STACK_LAYER,
           packages=_always("kmod", "procps", "libpam-pwquality", "cracklib-runtime", "auditd", "apparmor")),
    Script("fail2ban.sh", "fail2ban with the systemd backend", layer=STACK_LAYER,
           packages=_always("fail2ban", "python3-systemd")),
    Script("app.sh", "the welcome project, or the spec's baked-in app"),
    Script("gunicorn.sh", "gunicorn socket + service"),
    Script("ssh.sh", "sshd hardening"),
    Script("upgrades.sh", "unattended security upgrades"),
    Script("firstboot.sh", "per-VM secrets, swap and database at first boot"),
    Script("backup.sh", "daily database dumps with retention; djbake-backup now|list|restore",
           lambda s: s.stack.database == "postgresql"),
)
# Runs first in every Packer run (each layer), before SCRIPTS.
INPUTS = Script("inputs.sh", "record the build's inputs in /etc/djbake/build.env for the suite")
# Packer's execute_command for every script: runs the payload's copy under its name (template.py).
EXEC = "lib-exec.sh"
SEAL = Script("seal.sh", "nothing secret, nothing unique: host keys, machine-id, cloud-init, build user")

PAYLOAD_DIR = "/tmp/djbake"


def scripts_for(spec: Spec, layer: str | None = None) -> list[Script]:
    """The scripts this spec runs, in order; only those of one layer when given."""
    return [s for s in SCRIPTS if s.when(spec) and (layer is None or s.layer == layer)]


def preinstall(spec: Spec) -> tuple[str, ...]:
    """The apt packages the stack layer's scripts install for this spec, each once, in script order.

    A base made here can hold them already: the qemu bootstrap installs them with mmdebstrap,
    natively, where in the build VM under TCG each script's dpkg run took minutes (base.sh,
    python.sh and postgresql.sh alone 22 min of a CI run on 2026-12-01). The scripts still
    install them (lib.sh's apt_install skips what dpkg holds), so a base without them, every
    cloud provider's, gets the same system. The spec's own `packages` are not among them:
    base.sh checks each against the archive and says which one is not there."""
    seen: dict[str, None] = {}
    for script in scripts_for(spec, STACK_LAYER):
        seen.update(dict.fromkeys(script.packages(spec)))
    return tuple(seen)


def environment(spec: Spec, provider: str) -> dict[str, str]:
    """The values the scripts read. Nothing secret is ever among them."""
    pins = tables.PYTHON_PINS
    env = {
        "DJBAKE_IMAGE": spec.name,
        "DJBAKE_PROVIDER": provider,
        "DJBAKE_OS": spec.os,
        "DJBAKE_PYTHON": spec.python_version,
        "DJBAKE_DJANGO_VERSION": spec.stack.django,
        "DJBAKE_GUNICORN_VERSION": spec.stack.gunicorn,
        "DJBAKE_PSYCOPG_VERSION": pins["psycopg"],
        "DJBAKE_UV_VERSION": pins["uv"],
        "DJBAKE_DATABASE": spec.stack.database,
        "DJBAKE_REDIS": "1" if spec.stack.redis else "0",
        "DJBAKE_NGINX": "1" if spec.stack.nginx else "0",
        "DJBAKE_CERTBOT": "1" if spec.stack.certbot else "0",
        "DJBAKE_BUILD_TOOLS": "1" if spec.stack.build_tools else "0",
        "DJBAKE_TOOLCHAIN": " ".join(tables.BUILD_TOOLS),
        "DJBAKE_PACKAGES": " ".join(spec.packages),
        "DJBAKE_APP_MODULE": spec.app.module if spec.app else "",
        "DJBAKE_APP_SETTINGS": (spec.app.settings or "") if spec.app else "",
        "DJBAKE_PAYLOAD": PAYLOAD_DIR,
    }
    # Only when used, so templates of specs without them stay as they were.
    if spec.stack.redis:
        env["DJBAKE_REDIS_VERSION"] = pins["redis"]
    if spec.app:
        # A URL, or a path inside the uploaded payload (app.sh resolves it).
        env["DJBAKE_APP_SOURCE"] = app_source.payload_source(spec)
        env["DJBAKE_APP_REQUIREMENTS"] = spec.app.requirements or ""
    return env


def requirements(spec: Spec) -> list[str]:
    """The pinned wheels the host downloads once and uploads to the guest."""
    reqs = [
        f"django=={spec.stack.django}",
        f"gunicorn=={spec.stack.gunicorn}",
        f"psycopg[binary]=={tables.PYTHON_PINS['psycopg']}",
        f"uv=={tables.PYTHON_PINS['uv']}",
    ]
    if spec.stack.redis:
        reqs.append(f"redis=={tables.PYTHON_PINS['redis']}")
    return reqs
