"""Local container image (Packer builder docker): the fast loop for script authors.

The build container runs systemd as PID 1 (the base image from
builder/docker/base_image.py), so the stack scripts enable and start services as
on a VM and the in-build gate tests a running system. Verification runs the
committed image three ways: without booting (the `sealed` tests: nothing
per-VM in the image), and as two freshly booted containers (`fresh_boot`
tests minus `kernel`; the two must differ in host keys, machine-id and
secrets).
"""
from __future__ import annotations

import json
import time

from builder.bake import gate
from builder.docker import base_image as docker_base
from builder.docker import client as docker_client
from builder.providers import base


class Provider(base.Provider):
    name = "docker"
    title = "Docker (local container, systemd)"
    builder_type = "docker"
    plugin = "docker"
    gate_transport = "docker"
    uses_apt_cache = True

    def source(self) -> dict:
        return {
            "image": self.settings.source_image or self.os_image()["image"],
            "pull": False,
            "commit": True,
            # Not `privileged`: see docker_base.RUN_ARGS. systemd boots as PID 1
            # (Packer's default entrypoint would be /bin/sh).
            "run_command": ["-d", *docker_base.RUN_ARGS, f"--entrypoint={docker_base.init_path(self.spec.os)}", "--",
                            "{{.Image}}"],
            # `docker commit` accepts no STOPSIGNAL: stop such containers with
            # SIGRTMIN+3 (docker_base.stop()).
            "changes": [
                f'ENTRYPOINT ["{docker_base.init_path(self.spec.os)}"]',
                "ENV container=docker",
                f'LABEL djbake.image="{self.spec.name}" djbake.build-id="${{var.build_id}}"',
            ],
        }

    def post_processors(self) -> list[dict]:
        return [{"docker-tag": {"repository": f"djbake/{self.spec.name}", "tags": ["${var.image_version}", "latest"]}}]

    def validate_placeholders(self) -> dict[str, str]:
        return {}

    # -- build hooks ------------------------------------------------------
    def prepare(self, ctx: base.BuildContext) -> None:
        """The base image must exist locally: no registry can be reached."""
        if self.settings.source_image:
            ctx.facts["parent"] = {"source_image": self.settings.source_image}
            return  # the user's own image; Packer says so if it is missing
        t = time.monotonic()
        img = docker_base.ensure(self.spec.os, log=ctx.note)
        ctx.facts["base_image"] = {"reference": img.reference, "input_hash": img.input_hash}
        ctx.note(f"docker base {img.reference} ({img.input_hash}): "
                 f"{'built' if img.built else 'reused'} in {time.monotonic() - t:.0f} s")

    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        # The committed image's id (sha256:...), not a region:id list.
        return [("local", str(b["artifact_id"])) for b in builds if b.get("artifact_id")]

    def verify(self, artifacts: list[tuple[str, str]], ctx: base.BuildContext) -> base.Verification:
        started = time.monotonic()
        checks: dict = {}
        for _, image in artifacts:
            checks.update(verify_image(image, ctx.build_dir / "verify", ctx.note))
        failed = [k for k, v in checks.items() if isinstance(v, dict) and not v.get("ok")]
        passed = bool(checks) and not failed
        summary = "sealed image and two fresh boots passed" if passed else "failed: " + ", ".join(failed)
        return base.Verification(passed, summary=summary, checks=checks, seconds=time.monotonic() - started)


def verify_image(image: str, workdir, note=print) -> dict[str, dict]:
    """Sealed checks, then two fresh boots of image (one at a time: 2 cores), then their comparison.

    The first boot runs every fresh-boot check, the second the per-VM ones (gate.SECOND_BOOT): the
    rest are about the image's files, the same bytes in both containers."""
    workdir.mkdir(parents=True, exist_ok=True)
    client = docker_client.connect()
    checks: dict[str, dict] = {}

    # 1. The image as captured: PID 1 is not systemd, nothing has booted.
    sealed = client.containers.run(image, ["sleep", "infinity"], entrypoint=[], detach=True,
                                   labels={docker_base.LABEL: "verify-sealed"})
    try:
        r = gate.run_suite(gate.Target(container=sealed.id), "sealed", log_dir=workdir, name="sealed")
    finally:
        sealed.remove(force=True)
    checks["sealed"] = {"ok": r.ok, "detail": r.summary}
    note(f"verify: {r.summary}")

    # 2. Two fresh boots, each recording what must differ between VMs.
    records = []
    for label in ("a", "b"):
        record = workdir / f"boot-{label}.json"
        record.unlink(missing_ok=True)
        try:
            box = docker_base.start(image, f"verify-{label}", client)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            checks[f"boot_{label}"] = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
            continue
        try:
            r = gate.run_suite(gate.Target(container=box.id), None, log_dir=workdir, name=f"fresh-boot-{label}",
                               fresh_boot=True, second_boot=label == "b", record=record)
        finally:
            docker_base.stop(box)
        checks[f"fresh_boot_{label}"] = {"ok": r.ok, "detail": r.summary}
        note(f"verify: {r.summary}")
        records.append(json.loads(record.read_text()) if record.exists() else {})
    if len(records) == 2:
        problems = gate.compare_boots(*records)
        compared = "host keys, machine-id, SECRET_KEY" + (
            " and DB password" if any("db_password_sha256" in r for r in records) else " (no database password)")
        checks["boots_differ"] = {"ok": not problems, "detail": "; ".join(problems) or f"{compared} differ"}
    return checks
