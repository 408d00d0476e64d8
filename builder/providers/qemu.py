"""Local QEMU image (Packer builder qemu): a qcow2 from a cloud image or a bootstrapped base.

The default provider: it needs no cloud account. prepare() gets the base
disk (builder/qemu/base_image.py), makes a per-build SSH key pair and the NoCloud
seed that lets cloud-init create the build user with it, and picks the
accelerator (builder/qemu/accel.py). After the build the qcow2 is moved out of
the build directory into build/images/, booted fresh twice and tested
(builder/fresh_boot.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field

from builder import paths, tables
from builder.providers import base
from builder.qemu import accel, base_image, fresh_boot, overlay, vm

BUILD_USER = "djbake"
KEY_FILE = "build_key"
SEED_DIR = "seed"
# The image layer's source: an overlay over this build's own name for the cached stack disk.
LAYER_PIN = "stack-layer.qcow2"
LAYER_OVERLAY = "image-layer.qcow2"


_PLACEHOLDERS: dict[str, str] = {}


def _placeholders() -> dict[str, str]:
    """Empty files in a temporary directory (removed at exit), made once per process."""
    if not _PLACEHOLDERS:
        import atexit
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="djbake-validate-"))
        atexit.register(shutil.rmtree, tmp, True)
        (tmp / "seed").mkdir()

        for name in ("seed/user-data", "seed/meta-data", "base.qcow2"):
            (tmp / name).touch()
        vm.new_key(tmp / KEY_FILE, comment="djbake-validate")  # Packer parses it; a throwaway
        empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        _PLACEHOLDERS.update({"qemu_source": str(tmp / "base.qcow2"), "qemu_source_checksum": empty,
                              "qemu_seed_dir": str(tmp / "seed"), "ssh_key_file": str(tmp / KEY_FILE)})
    return dict(_PLACEHOLDERS)


class Settings(base.ProviderSettings):
    cpus: int = Field(2, ge=1, le=64, description="vCPUs of the build VM.")
    memory_mb: int = Field(2048, ge=512, le=65536, description="Memory of the build VM in MiB.")


class Provider(base.Provider):
    name = "qemu"
    title = "QEMU (local qcow2)"
    builder_type = "qemu"
    plugin = "qemu"
    Settings = Settings
    layered = True
    uses_apt_cache = True

    def extra_variables(self) -> dict[str, dict]:
        return {
            # auto: djbake probes KVM by really booting; DJBAKE_ACCELERATOR overrides.
            "qemu_accelerator": {"type": "string", "default": "tcg"},
            # vCPUs of the build VM: the spec's under KVM, one under TCG (see vcpus()).
            "qemu_cpus": {"type": "number", "default": self.settings.cpus},
            # Filled per build: the base image (a cloud image URL or a bootstrapped qcow2).
            "qemu_source": {"type": "string", "default": ""},
            "qemu_source_checksum": {"type": "string", "default": "none"},
            # The per-build key pair; the public half goes into the NoCloud seed.
            "ssh_key_file": {"type": "string", "default": KEY_FILE},
            # The NoCloud seed (user-data, meta-data) made by prepare().
            "qemu_seed_dir": {"type": "string", "default": SEED_DIR},
        }

    @property
    def uses_bootstrap(self) -> bool:
        return self.settings.source_image == "bootstrap"

    def source(self) -> dict:
        s = self.settings
        return {
            "disk_image": True,
            "iso_url": "${var.qemu_source}",
            "iso_checksum": "${var.qemu_source_checksum}",
            "accelerator": "${var.qemu_accelerator}",
            "format": "qcow2",
            "disk_size": f"{self.spec.disk_size_gb}G",
            "disk_compression": True,
            "qemu_img_args": {"convert": ["-o", f"compression_type={tables.QCOW2_COMPRESSION}"]},
            "disk_interface": "virtio",
            # The guest's fstrim (seal.sh) and zeros it writes free the blocks in
            # the qcow2, so the compaction after the build leaves them out.
            "disk_discard": "unmap",
            "disk_detect_zeroes": "unmap",
            "net_device": "virtio-net",
            "cpus": "${var.qemu_cpus}",
            "memory": s.memory_mb,
            "headless": True,
            "qemuargs": [["-cpu", "max"], ["-serial", "file:${path.root}/serial.log"]],
            "cd_files": ["${var.qemu_seed_dir}/meta-data", "${var.qemu_seed_dir}/user-data"],
            "cd_label": "cidata",
            "ssh_username": "djbake",
            "ssh_private_key_file": "${var.ssh_key_file}",
            "ssh_timeout": "20m",
            "shutdown_command": "sudo shutdown -P now",
            "output_directory": "${path.root}/output",
            "vm_name": f"{self.spec.name}.qcow2",
        }

    def layer_source(self) -> dict:
        # Kept on this host and copied by every build on it: no compression, no compaction.
        source = {k: v for k, v in self.source().items() if k != "qemu_img_args"}
        return {**source, "disk_compression": False, "skip_compaction": True}

    def validate_placeholders(self) -> dict[str, str]:
        """Stand-ins for what prepare() makes: `packer validate` stats the key, the seed and the disk."""
        return _placeholders()

    # -- build hooks -----------------------------------------------------
    def prepare(self, ctx: base.BuildContext) -> None:
        with ctx.step("base image"):
            source = base_image.resolve(self.spec, self.settings.source_image, log=ctx.note)
        ctx.state["source"] = source
        ctx.facts["base_image"] = {"source": source.url, "checksum": source.checksum,
                                   "bootstrapped": source.bootstrapped, "input_hash": source.input_hash,
                                   "built_now": source.built}
        key = ctx.build_dir / KEY_FILE
        public = vm.new_key(key, comment=f"djbake-build-{ctx.provenance.get('build_id', '')}")
        ctx.state["key"] = key
        ctx.secrets.append(key.read_text())
        vm.write_seed_dir(ctx.build_dir / SEED_DIR, vm.cloud_config_text(vm.user_config(BUILD_USER, public)),
                          instance_id=f"djbake-build-{ctx.provenance.get('build_id', 'x')}",
                          hostname=f"{self.spec.name}-build")
        with ctx.step("accelerator"):
            choice = accel.resolve()
        ctx.state["accelerator"] = choice.accelerator
        ctx.facts["accelerator"] = {"build": choice.accelerator, "why": choice.reason}
        ctx.note(f"accelerator: {choice.accelerator} ({choice.reason})")

    def use_layer(self, ctx: base.BuildContext, disk: Path) -> None:
        # Packer copies its source disk whole before it boots it; given an overlay it copies a few
        # hundred KiB, and its capture reads through to the stack disk (builder/qemu/overlay.py).
        pin = overlay.pinned(disk, ctx.build_dir / LAYER_PIN)
        ctx.state["layer"] = overlay.create(pin, ctx.build_dir / LAYER_OVERLAY)

    def vcpus(self, accelerator: str) -> int:
        """One vCPU under TCG: Debian 13's kernel patches its own code live (static keys, text_poke
        with int3), and across two multi-threaded TCG vCPUs a vCPU ran into the temporary int3 as
        the firewall loaded nf_conntrack: a kernel panic mid-build (CI run of 2026-11-30). The
        fresh-boot VMs already run one vCPU under TCG (builder/qemu/vm.py)."""
        return self.settings.cpus if accelerator == "kvm" else 1

    def packer_variables(self, ctx: base.BuildContext) -> dict[str, str]:
        source = ctx.state["source"]
        layer = ctx.state.get("layer")
        return {
            # The image layer starts from the stack layer's disk (our own cache,
            # written atomically: no checksum to check against), that one from the base.
            "qemu_source": str(layer) if layer else source.url,
            "qemu_source_checksum": "none" if layer else source.checksum,
            "qemu_accelerator": ctx.state["accelerator"],
            "qemu_cpus": str(self.vcpus(ctx.state["accelerator"])),
            "ssh_key_file": str(ctx.state["key"]),
            "qemu_seed_dir": str(ctx.build_dir / SEED_DIR),
        }

    def artifacts(self, builds: list[dict], ctx: base.BuildContext) -> list[tuple[str, str]]:
        """Move each run's qcow2 out of the build directory into paths.images_dir(); the path is the id."""
        out = []
        for build in builds:
            for f in build.get("files") or []:
                name = Path(f["name"]).name
                produced = ctx.build_dir / "output" / name
                if not produced.exists():
                    continue
                version = ctx.provenance.get("image_version", "dev")
                build_id = ctx.provenance.get("build_id", "0")
                dest = paths.images_dir() / self.spec.name / f"{self.spec.name}-{version}-{build_id}.qcow2"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(produced), dest)
                out.append((self.regions[0], str(dest)))
        return out

    def verify(self, artifacts: list[tuple[str, str]], ctx: base.BuildContext) -> base.Verification:
        (region, path), = artifacts
        return fresh_boot.fresh_boot(Path(path), self.spec, ctx.build_dir / "verify",
                                 accelerator=ctx.state.get("accelerator"), note=ctx.note)

    def cleanup(self, ctx: base.BuildContext) -> None:
        vm.delete_key(ctx.build_dir / KEY_FILE)
        # The capture has read them (or the build failed): the stack disk's space is the cache's again.
        for name in (LAYER_OVERLAY, LAYER_PIN):
            (ctx.build_dir / name).unlink(missing_ok=True)
