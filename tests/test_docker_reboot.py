"""It keeps serving across a reboot (issue 20 point 4), on a container of the session's default image.

A container of the image boots (first boot: secrets, database role, host keys), serves, and is
rebooted the way systemd reboots (`systemctl reboot`: PID 1 runs the shutdown and exits; the
container's disk stays, as a VM's does); started again, it must come up with no failed unit, serve
HTTP 200 through nginx again, and keep every per-VM secret it made at first boot: the same
SECRET_KEY, database password, machine id and SSH host keys (a first boot that ran again would
sign users out and change the host key under their known_hosts). The QEMU end-to-end test boots real
kernels; this is the cheap check that runs with every docker build.
"""
from __future__ import annotations

import hashlib

import pytest

from builder.docker import base_image as docker_base
from tests.docker_build import built_id

pytestmark = pytest.mark.docker

IDENTITY = ("cat /etc/machine-id", "cat /etc/ssh/ssh_host_*_key.pub",
            "grep -E '^(DJANGO_SECRET_KEY|DJANGO_DB_PASSWORD)=' /etc/djbake/app.env",
            "stat -c %Y /var/lib/djbake/firstboot.done")   # first boot's stamp: it ran once, not again


def sh(box, cmd: str) -> tuple[int, str]:
    code, out = box.exec_run(["sh", "-c", cmd])
    return code, out.decode(errors="replace")


def identity(box) -> dict[str, str]:
    """sha256 of each per-VM value (never the values themselves in a test report)."""
    found = {}
    for cmd in IDENTITY:
        code, out = sh(box, cmd)
        assert code == 0 and out.strip(), (cmd, out)
        found[cmd] = hashlib.sha256(out.encode()).hexdigest()
    return found


def serving(box) -> None:
    code, out = sh(box, "curl -fsS -m 20 -o /dev/null -w '%{http_code}' -H 'Host: localhost' http://127.0.0.1/")
    assert code == 0 and out == "200", out
    code, out = sh(box, "systemctl --failed --no-legend --plain")
    assert code == 0 and out.strip() == "", f"failed units:\n{out}"


def test_reboot_keeps_serving_with_the_same_secrets(engine, built_image):
    proc, build_dir = built_image
    assert proc.returncode == 0, proc.stdout[-3000:]
    box = docker_base.start(built_id(build_dir), "test-reboot", engine, boot_timeout=300)
    try:
        serving(box)
        before = identity(box)
        sh(box, "systemctl reboot")
        box.wait(timeout=120)   # systemd stops every unit, then PID 1 exits: the machine is down
        box.start()
        state = docker_base.wait_booted(box, 300)
        assert state == "running", state
        serving(box)
        assert identity(box) == before
    finally:
        docker_base.stop(box)
