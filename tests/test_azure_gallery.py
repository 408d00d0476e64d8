"""Azure: one region is a managed image; more regions publish to an Azure Compute Gallery and replicate.

Templates are checked by rendering and by the real `packer validate` of the
installed Packer (Debian's 1.6.6 here). The manifests are samples shaped like
what Packer's manifest post-processor writes for azure-arm: its artifact id
is the managed image's resource id whenever a managed image is made
(Artifact.Id() prefers it), the gallery image version id only when the
plugin publishes without one. No Azure API is contacted.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import pytest

from builder import cli, providers, spec
from builder.bake import packer, pipeline, render
from builder.catalog import store as catalog
from builder.paths import ROOT
from builder.providers import azure
from builder.providers.base import BuildContext, Verification

SUB = "3f2b0c2e-8d1e-4c7a-9a51-0c6f7d1e2a10"
BUILD_ID = "20261128120000-a1b2c3"
# 2026-11-28 12:00:00 UTC in seconds since 2020-01-01 UTC
PATCH = 218030400


def _spec(azure_yaml: str) -> spec.Spec:
    return spec.loads(f"name: django-web\nversion: 1.4.0\nproviders:\n  azure: {azure_yaml}\n")


def _source(s: spec.Spec, packer_version=(1, 6, 6)) -> dict:
    return providers.get("azure")(s, packer_version).source()


# -- rendering -------------------------------------------------------------------

def test_one_region_is_a_managed_image_without_gallery():
    p = providers.get("azure")(_spec("{regions: [westeurope]}"))
    src = p.source()
    assert src["location"] == "westeurope"
    assert src["managed_image_name"] == "django-web-${var.image_version}-${var.build_id}"
    assert "shared_image_gallery_destination" not in src
    assert p.extra_variables() == {}


def test_one_region_with_a_gallery_asked_for():
    src = _source(_spec("{regions: [westeurope], gallery: web_images}"))
    sig = src["shared_image_gallery_destination"]
    # Packer 1.6.6 rejects an empty list, so the build location is listed itself.
    assert sig["gallery_name"] == "web_images" and sig["replication_regions"] == ["westeurope"]


def test_several_regions_replicate_from_the_first():
    src = _source(_spec("{near: [north-america, europe, asia]}"))
    assert src["location"] == "eastus"
    assert src["shared_image_gallery_destination"] == {
        "resource_group": "${var.azure_resource_group}",
        "gallery_name": "djbake",
        "image_name": "django-web",
        "image_version": "${var.azure_gallery_image_version}",
        "replication_regions": ["eastus", "westeurope", "japaneast"],
    }
    # The managed image is still made: 1.6.6 publishes to a gallery only from one.
    assert src["managed_image_resource_group_name"] == "${var.azure_resource_group}"


def test_storage_account_type_only_for_packer_17_and_newer():
    s = _spec("{regions: [eastus, westeurope], storage_account_type: Standard_ZRS}")
    assert "storage_account_type" not in _source(s, (1, 6, 6))["shared_image_gallery_destination"]
    assert _source(s, (1, 11, 2))["shared_image_gallery_destination"]["storage_account_type"] == "Standard_ZRS"
    default = _spec("{regions: [eastus, westeurope]}")
    assert _source(default, (1, 11, 2))["shared_image_gallery_destination"]["storage_account_type"] == "Standard_LRS"


def test_gallery_names_from_the_spec():
    s = _spec("{regions: [eastus, westeurope], gallery: corp.images, gallery_resource_group: rg-shared,"
              " gallery_image: django-web-prod}")
    sig = _source(s)["shared_image_gallery_destination"]
    assert (sig["gallery_name"], sig["resource_group"], sig["image_name"]) == (
        "corp.images", "rg-shared", "django-web-prod")


@pytest.mark.parametrize("field, value", [("gallery", "my-gallery"), ("gallery_image", "-web"),
                                          ("storage_account_type", "Premium_ZRS")])
def test_bad_gallery_settings_are_located_errors(tmp_path, field, value):
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: django-web\nproviders:\n  azure:\n    regions: [eastus, westeurope]\n"
                    f"    {field}: {value}\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "builder", "render", "--spec", str(path), "-p", "azure",
                           "--out", str(out), "--no-packer"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}:5:" in lines[0] and f"providers.azure.{field}" in lines[0]
    assert "Traceback" not in proc.stderr and not out.exists()


# -- the gallery image version ----------------------------------------------------

@pytest.mark.parametrize("version, expected", [
    ("1.4.0", f"1.4.{PATCH}"),
    ("v2.3.1-4-gdeadbee-dirty", f"2.3.{PATCH}"),   # `git describe` between tags
    ("7", f"7.0.{PATCH}"),
    ("deadbee", f"0.0.{PATCH}"),                   # a bare commit: no tag yet
])
def test_gallery_version_is_major_minor_and_build_time(version, expected):
    assert azure.gallery_version(version, BUILD_ID) == expected


def test_gallery_versions_never_collide_and_grow_with_time():
    first = azure.gallery_version("1.4.0", BUILD_ID)
    rebuild = azure.gallery_version("1.4.0", "20261128120001-ffffff")
    assert rebuild != first
    assert [int(x) for x in rebuild.split(".")] > [int(x) for x in first.split(".")]
    # Azure: each part a 32-bit integer
    assert int(azure.gallery_version("1.4.0", "20880101000000-000000").split(".")[2]) < 2**31


def test_build_gets_the_gallery_version_as_a_packer_variable(tmp_path):
    p = providers.get("azure")(_spec("{regions: [eastus, westeurope]}"))
    ctx = BuildContext(tmp_path, {"image_version": "1.4.0", "build_id": BUILD_ID})
    assert p.packer_variables(ctx) == {"azure_gallery_image_version": f"1.4.{PATCH}"}
    assert providers.get("azure")(_spec("{regions: [eastus]}")).packer_variables(ctx) == {}


# -- the catalog from the manifest ---------------------------------------------------

MANAGED = (f"/subscriptions/{SUB}/resourceGroups/djbake-images/providers/Microsoft.Compute/images/"
           f"django-web-1.4.0-{BUILD_ID}")
VERSION_ID = (f"/subscriptions/{SUB}/resourceGroups/djbake-images/providers/Microsoft.Compute/galleries/djbake/"
              f"images/django-web/versions/1.4.{PATCH}")


def _manifest(tmp_path, artifact_id: str) -> list[dict]:
    run = {"name": "azure", "builder_type": "azure-arm", "build_time": 1795867200, "files": None,
           "artifact_id": artifact_id, "packer_run_uuid": "5f0e1c1a-6a3e-4b7e-9d0a-2c1f0f3e7b11",
           "custom_data": {"image": "django-web", "provider": "azure", "build_id": BUILD_ID,
                           "image_version": "1.4.0", "git_commit": "abc1234def56", "spec_hash": "0123456789abcdef",
                           "os": "debian-12"}}
    old = dict(run, artifact_id=MANAGED.replace("1.4.0", "1.3.0"), packer_run_uuid="an-earlier-run")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"builds": [old, run], "last_run_uuid": run["packer_run_uuid"]}, indent=2))
    return pipeline.manifest_builds(path)


def test_one_entry_per_replicated_region(tmp_path):
    p = providers.get("azure")(_spec("{near: [north-america, europe, asia]}"))
    ctx = BuildContext(tmp_path, {})
    found = p.artifacts(_manifest(tmp_path, MANAGED), ctx)
    assert found == [("eastus", VERSION_ID), ("westeurope", VERSION_ID), ("japaneast", VERSION_ID)]
    assert ctx.facts["azure_managed_image"] == MANAGED


def test_gallery_in_its_own_resource_group(tmp_path):
    p = providers.get("azure")(_spec("{regions: [eastus, westeurope], gallery_resource_group: rg-shared}"))
    (region, artifact), _ = p.artifacts(_manifest(tmp_path, MANAGED), BuildContext(tmp_path, {}))
    assert artifact == VERSION_ID.replace("/resourceGroups/djbake-images/", "/resourceGroups/rg-shared/")


def test_plugin_build_without_managed_image_names_the_version(tmp_path):
    p = providers.get("azure")(_spec("{regions: [eastus, westeurope]}"))
    assert p.artifacts(_manifest(tmp_path, VERSION_ID), BuildContext(tmp_path, {})) == [
        ("eastus", VERSION_ID), ("westeurope", VERSION_ID)]


def test_one_region_records_the_managed_image(tmp_path):
    p = providers.get("azure")(_spec("{regions: [eastus]}"))
    assert p.artifacts(_manifest(tmp_path, MANAGED), BuildContext(tmp_path, {})) == [("eastus", MANAGED)]


def test_latest_and_launch_per_region_from_the_catalog(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DJBAKE_CATALOG", str(tmp_path / "catalog.sqlite"))
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "web")
    spec_file = tmp_path / "django-web.yaml"
    spec_file.write_text("name: django-web\nversion: 1.4.0\nproviders:\n  azure: {near: [north-america, europe]}\n")
    s = spec.load(spec_file)
    found = providers.get("azure")(s).artifacts(_manifest(tmp_path, MANAGED), BuildContext(tmp_path, {}))
    catalog.Catalog().add([catalog.Entry(BUILD_ID, "django-web", "1.4.0", "azure", region, art, verified=True)
                           for region, art in found])
    for region in ("eastus", "westeurope"):
        assert cli.main(["latest", "--provider", "azure", "--region", region]) == 0
        assert capsys.readouterr().out.strip() == VERSION_ID
    assert cli.main(["latest", "--provider", "azure", "--region", "japaneast"]) == 2
    capsys.readouterr()
    assert cli.main(["launch", "--provider", "azure", "--region", "westeurope", "--spec", str(spec_file)]) == 0
    assert shlex.split(capsys.readouterr().out.strip()) == [
        "az", "vm", "create", "--resource-group", "web", "--name", "django-web-1", "--image", VERSION_ID,
        "--location", "westeurope", "--size", "Standard_B1ms", "--admin-username", "azureuser",
        "--generate-ssh-keys"]


# -- the real Packer ----------------------------------------------------------------

@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")
# Several regions: the golden spec's template (tests/test_validate.py).
@pytest.mark.parametrize("azure_yaml", ["{regions: [eastus]}", "{regions: [eastus], gallery: web_images}"])
def test_packer_validates_the_template(tmp_path, azure_yaml):
    pk = packer.find()
    s = _spec(azure_yaml)
    (rendered,) = render.render(s, ["azure"], pk, base=tmp_path)
    result = render.validate(s, rendered, "azure", pk)
    assert result.ok, result.output
    assert result.how == f"packer {pk.version_text} validate"


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")
def test_packer_166_would_reject_what_the_template_leaves_out(tmp_path):
    """Why 1.6.6 gets no storage_account_type and never an empty replication_regions."""
    pk = packer.find()
    if pk.version >= azure.STORAGE_ACCOUNT_TYPE_SINCE:
        pytest.skip("this Packer has storage_account_type")
    s = _spec("{regions: [eastus, westeurope]}")
    (rendered,) = render.render(s, ["azure"], pk, base=tmp_path)
    template = rendered.template
    variables = providers.get("azure")(s).validate_placeholders()
    good = template.read_text()
    for change, message in ((lambda d: d.update(storage_account_type="Standard_LRS"), "storage_account_type"),
                            (lambda d: d.update(replication_regions=[]), "replication_regions")):
        data = json.loads(good)
        change(data["source"]["azure-arm"]["azure"]["shared_image_gallery_destination"])
        template.write_text(json.dumps(data))
        ok, output = packer.validate(pk, rendered.directory, variables)
        assert not ok and message in output
    template.write_text(good)
    assert packer.validate(pk, rendered.directory, variables)[0]


def test_pipeline_records_every_replica_with_the_managed_image(tmp_path, monkeypatch):
    """artifacts_step + record_step as `djbake image` runs them after `packer build`."""
    monkeypatch.setenv("DJBAKE_CATALOG", str(tmp_path / "catalog.sqlite"))
    s = _spec("{regions: [eastus, westeurope]}")
    p = providers.get("azure")(s)
    prov = {"image_version": "1.4.0", "build_id": BUILD_ID, "git_commit": "abc1234def56",
            "spec_hash": s.spec_hash()}
    ctx = BuildContext(tmp_path, prov)
    # The version Packer was given is the one the catalog names.
    assert VERSION_ID.endswith("/versions/" + p.packer_variables(ctx)["azure_gallery_image_version"])
    _manifest(tmp_path, MANAGED)
    job = pipeline.Job(s, p, packer.Packer("/usr/bin/packer", (1, 6, 6)), ctx)
    found = pipeline.artifacts_step(job)
    skipped = Verification(False, skipped=True, summary="no fresh-boot verification for azure yet")
    pipeline.record_step(job, found, skipped, {})
    entries = catalog.Catalog().query(provider="azure")
    assert sorted((e.region, e.artifact) for e in entries) == [("eastus", VERSION_ID), ("westeurope", VERSION_ID)]
    assert all(e.extra["azure_managed_image"] == MANAGED and not e.verified for e in entries)
