"""The OS table: one row of facts per OS, every provider's source image for
each, rendered into golden files, and `packer validate` on the newest Ubuntu.

Regenerate tests/golden/sources-by-os.json after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_os_table.py` and review the diff.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from builder import providers, spec, tables
from builder.bake import packer, render, template, wheelhouse
from builder.docker import base_image as docker_base
from builder.errors import SpecError
from builder.os_facts import django_python_mismatch
from builder.spec import values as validate_values
from builder.qemu import base_image

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "sources-by-os.json"
GOLDEN_SPEC = HERE / "specs" / "golden.yaml"
# Providers whose source image names the architecture (the rest are amd64 here).
ARM64 = ("aws", "gcp", "azure", "hetzner")


def spec_for(os_name: str, arch: str = "amd64") -> spec.Spec:
    """The golden spec moved to another OS: its cloud source images, the Django it can run."""
    data = yaml.safe_load(GOLDEN_SPEC.read_text())
    data["os"], data["arch"] = os_name, arch
    if django_python_mismatch(os_name, data["stack"]["django"]):
        data["stack"]["django"] = tables.DJANGO_LTS
    data["providers"]["qemu"].pop("source_image")   # the official cloud image, from the table
    if arch == "arm64":  # the spec refuses arm64 for providers whose tables have x86 images only
        data["providers"] = {k: v for k, v in data["providers"].items() if k in validate_values.ARM64}
    return spec.loads(yaml.safe_dump(data), f"golden.yaml as {os_name}/{arch}")


def sources_by_os() -> dict:
    out: dict = {}
    for os_name in tables.OPERATING_SYSTEMS:
        for arch in ("amd64", "arm64"):
            s = spec_for(os_name, arch)
            for name in providers.PROVIDERS:
                if arch == "arm64" and name not in ARM64:
                    continue
                tpl = json.loads(template.render_files(s, providers.get(name)(s, (1, 6, 6)), False)["django-web.pkr.json"])
                block = {"source": tpl["source"]}
                if name == "qemu":
                    # The template takes the disk as a variable; the table's cloud image is resolved at build time.
                    src = base_image.resolve(s, None)
                    block["cloud_image"] = {"url": src.url, "checksum": src.checksum}
                out.setdefault(os_name, {}).setdefault(arch, {})[name] = block
    return out


def test_every_os_has_a_full_row_of_facts():
    assert list(tables.OPERATING_SYSTEMS) == ["debian-13", "debian-12", "ubuntu-26.04", "ubuntu-24.04",
                                              "ubuntu-22.04"]
    for name, os_ in tables.OPERATING_SYSTEMS.items():
        assert name == os_.name and name.startswith(os_.family + "-")
        assert os_.codename and os_.kernel and os_.openssh and os_.nginx
        assert os_.python.count(".") == 1 and os_.postgresql.isdigit()
        assert os_.glibc >= (2, 35)
        assert "main" in os_.components
        assert wheelhouse.platforms(name, "amd64")[0] == f"manylinux_{os_.glibc[0]}_{os_.glibc[1]}_x86_64"
        for provider, rows in tables.SOURCE_IMAGES.items():
            assert name in rows, f"{provider} has no source image for {name}"


def test_default_os_runs_the_default_django():
    assert spec.Spec.model_fields["os"].default == tables.DEFAULT_OS == "debian-13"
    assert django_python_mismatch(tables.DEFAULT_OS, tables.PYTHON_PINS["django"]) is None
    assert spec.load(HERE.parent / "images" / "django-web.yaml").os == tables.DEFAULT_OS


@pytest.mark.parametrize("os_name, django, ok", [
    ("debian-12", "6.1.3", False), ("ubuntu-22.04", "6.0.8", False), ("ubuntu-24.04", "6.1.3", True),
    ("debian-12", tables.DJANGO_LTS, True), ("ubuntu-26.04", "6.1.3", True), ("debian-13", "7.0.1", True),
])
def test_django_series_against_the_os_python(os_name, django, ok):
    message = django_python_mismatch(os_name, django)
    assert (message is None) is ok, message
    if not ok:
        assert f"{os_name} ships {tables.OPERATING_SYSTEMS[os_name].python}" in message
        assert "debian-13" in message and tables.DJANGO_LTS in message


@pytest.mark.parametrize("asked, names", [("3.14", "ubuntu-26.04"), ("3.13", "debian-13"), ("3.12", "ubuntu-24.04")])
def test_python_error_names_the_os_that_ships_it(asked, names):
    other = "debian-12"
    with pytest.raises(SpecError) as info:
        spec.loads(f"name: web\nos: {other}\nstack:\n  python: '{asked}'\n  django: '{tables.DJANGO_LTS}'\n")
    assert f"os: {names} for Python {asked}" in str(info.value)


def test_source_images_per_os_match_the_golden_file():
    text = json.dumps(sources_by_os(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the per-OS source images differ from tests/golden/sources-by-os.json"


def test_golden_names_each_os_in_every_provider():
    golden = json.loads(GOLDEN.read_text())
    assert golden["debian-13"]["amd64"]["docker"]["source"]["docker"]["docker"]["image"] == "djbake/debian-13-base:latest"
    assert golden["ubuntu-26.04"]["amd64"]["linode"]["source"]["linode"]["linode"]["image"] == "linode/ubuntu26.04"
    aws = golden["ubuntu-26.04"]["arm64"]["aws"]["source"]["amazon-ebs"]["aws"]["source_ami_filter"]
    assert aws["filters"]["name"] == "ubuntu/images/hvm-ssd-gp3/ubuntu-resolute-26.04-arm64-server-*"
    assert "/trixie/" in golden["debian-13"]["amd64"]["qemu"]["cloud_image"]["url"]


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")
@pytest.mark.parametrize("os_name", ["ubuntu-26.04", "debian-12"])
def test_other_oses_validate(os_name, tmp_path, monkeypatch):
    """The golden spec (debian-13) is validated by test_validate.py; here the newest Ubuntu and the previous Debian."""
    for var in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    pk = packer.find()
    s = spec_for(os_name)
    names = list(providers.PROVIDERS)
    for name, rendered in zip(names, render.render(s, names, pk, base=tmp_path)):
        v = render.validate(s, rendered, name, pk)
        assert v.ok, f"{name}: {v.output}"


def test_debian_13_bases_are_built_from_trixie(tmp_path):
    """The qemu bootstrap and the docker base take the codename from the table and key their caches on it."""
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    qemu = base_image.inputs("debian-13", "amd64", apt)
    assert any(line.endswith(" trixie main") for line in qemu["sources"])
    assert any(" trixie-security main" in line for line in qemu["sources"])
    assert base_image.input_hash("debian-13", "amd64", apt) != base_image.input_hash("debian-12", "amd64", apt)
    cmd = docker_base.mmdebstrap_command("debian-13", tmp_path / "rootfs.tar")
    assert "trixie" in cmd and "bookworm" not in " ".join(cmd)
    assert docker_base.input_hash("debian-13") != docker_base.input_hash("debian-12")
    assert docker_base.reference("debian-13") == "djbake/debian-13-base:latest"
