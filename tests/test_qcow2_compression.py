"""The qemu image's qcow2 compression (tables.QCOW2_COMPRESSION) as Packer's own capture step applies it.

Real Packer (Debian's 1.6.6) runs its qemu builder with the capture
settings the qemu provider renders; real qemu-img copies, resizes and
converts the disk. The one stand-in is the VM: a script in place of
qemu-system-x86_64 that exits after a moment, as a VM that shut down
(booting one belongs to the QEMU end-to-end test). This host's qemu-img then
reads the result back and compares it with the disk that went in.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder import spec, tables
from builder.paths import ROOT
from builder.providers import base as provider_base
from builder.providers import qemu as qemu_provider

pytestmark = pytest.mark.skipif(not (shutil.which("packer") and shutil.which("qemu-img") and shutil.which("qemu-io")),
                                reason="packer and qemu-utils are needed (make deps)")
CAPTURE_KEYS = ("disk_image", "format", "disk_compression", "skip_compaction", "qemu_img_args")
FAKE_QEMU = """#!/bin/sh
# Stands in for the VM only: a version when asked, else 'runs' 2 s and exits like a VM that shut down.
case "$*" in *-version*) echo "QEMU emulator version 7.2.0"; exit 0;; esac
sleep 2
"""


def disk_with_data(path: Path) -> Path:
    """A 1 GiB qcow2 with 64 MiB written."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1G"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x61 0 64M", str(path)], check=True, capture_output=True)
    return path


def capture(tmp_path: Path, source: dict, disk: Path | None = None) -> Path:
    """Packer's qemu builder on `disk` (default: a new 1 GiB disk with 64 MiB written, in.qcow2), the VM
    stood in for; the qcow2 it leaves. Packer's log is kept in packer.log."""
    disk = disk or disk_with_data(tmp_path / "in.qcow2")
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text(FAKE_QEMU)
    fake.chmod(0o755)
    settings = {k: source[k] for k in CAPTURE_KEYS if k in source}
    settings.update({"iso_url": str(disk), "iso_checksum": "none", "communicator": "none", "headless": True,
                     "disable_vnc": True, "qemu_binary": str(fake), "accelerator": "tcg",
                     "output_directory": "out", "vm_name": "image.qcow2", "disk_size": "1G"})
    (tmp_path / "capture.pkr.json").write_text(json.dumps(
        {"source": {"qemu": {"capture": settings}}, "build": [{"sources": ["source.qemu.capture"]}]}))
    proc = subprocess.run(["packer", "build", "."], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PACKER_LOG": "1", "PACKER_LOG_PATH": str(tmp_path / "packer.log")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp_path / "out" / "image.qcow2"


def info(path: Path) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)


def test_the_image_is_compressed_as_the_table_says_and_this_qemu_reads_it(tmp_path):
    s = spec.load(ROOT / "images" / "django-web.yaml")
    source = qemu_provider.Provider(s).source()
    assert source["qemu_img_args"] == {"convert": ["-o", f"compression_type={tables.QCOW2_COMPRESSION}"]}
    out = capture(tmp_path, source)
    meta = info(out)
    assert meta["format-specific"]["data"]["compression-type"] == tables.QCOW2_COMPRESSION
    # compressed: 64 MiB of one byte take a small fraction of it on disk
    assert meta["actual-size"] < 16 * 2**20, meta["actual-size"]
    same = subprocess.run(["qemu-img", "compare", str(tmp_path / "in.qcow2"), str(out)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr


def test_the_stack_layer_stays_uncompressed_without_convert_arguments(tmp_path):
    s = spec.load(ROOT / "images" / "django-web.yaml")
    layer = qemu_provider.Provider(s).layer_source()
    assert "qemu_img_args" not in layer and layer["disk_compression"] is False and layer["skip_compaction"] is True
    out = capture(tmp_path, layer)
    assert info(out)["format-specific"]["data"]["compression-type"] == "zlib"  # qcow2's default: nothing converted
    assert info(out)["actual-size"] > 64 * 2**20


def test_the_image_layer_boots_an_overlay_and_its_capture_is_standalone(tmp_path):
    """The image layer's source is an overlay over a hard link of the cached stack disk
    (builder/qemu/overlay.py): Packer 1.6.6 copies only the overlay, and its capture reads
    through it and writes one standalone, compressed image with what the VM saw."""
    (tmp_path / "cache").mkdir()
    stack = disk_with_data(tmp_path / "cache" / "stack-x.qcow2")
    build = tmp_path / "build"
    build.mkdir()
    s = spec.load(ROOT / "images" / "django-web.yaml")
    provider = qemu_provider.Provider(s)
    ctx = provider_base.BuildContext(build_dir=build, provenance={})
    provider.use_layer(ctx, stack)
    source_disk = ctx.state["layer"]
    pin = build / qemu_provider.LAYER_PIN
    assert pin.stat().st_ino == stack.stat().st_ino       # a hard link: no bytes copied
    assert info(source_disk)["full-backing-filename"] == str(pin.resolve())
    assert source_disk.stat().st_size < 2 * 2**20         # the overlay, not the layer's data
    # What the image layer's VM writes lands in the overlay (as a stand-in for the VM's writes).
    subprocess.run(["qemu-io", "-c", "write -P 0x62 128M 8M", str(source_disk)], check=True, capture_output=True)
    out = capture(tmp_path, provider.source(), disk=source_disk)
    log = (tmp_path / "packer.log").read_text()
    assert f"Copying {source_disk} to " in log            # what Packer copied whole is the overlay
    meta = info(out)
    assert "backing-filename" not in meta, meta           # standalone: the capture flattened the chain
    assert meta["format-specific"]["data"]["compression-type"] == tables.QCOW2_COMPRESSION
    same = subprocess.run(["qemu-img", "compare", str(source_disk), str(out)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    # The stack disk was only read, and the build's names for it go at cleanup; the cache's stays.
    assert subprocess.run(["qemu-img", "compare", str(stack), str(disk_with_data(tmp_path / "fresh.qcow2"))],
                          capture_output=True).returncode == 0
    provider.cleanup(ctx)
    assert not pin.exists() and not source_disk.exists() and stack.stat().st_nlink == 1
