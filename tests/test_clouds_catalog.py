"""DigitalOcean, Hetzner, GCP, Azure: artifacts from Packer manifests -> catalog -> `latest` and `launch`.

The manifests are samples shaped like what Packer's manifest post-processor
writes for each builder (artifact ids as the builders' Artifact.Id() format
them; two runs, so only `last_run_uuid` counts). No cloud is contacted.
"""
from __future__ import annotations

import json
import shlex

import pytest

from builder import cli, providers, spec
from builder.bake import pipeline
from builder.catalog import store as catalog
from builder.paths import ROOT
from builder.providers.base import BuildContext

SPEC = spec.load(ROOT / "images" / "django-web.yaml")

ARTIFACT_IDS = {
    # digitalocean: "<regions joined by ,>:<snapshot id>"
    "digitalocean": ("digitalocean", "nyc3,ams3:170254317", [("nyc3", "170254317"), ("ams3", "170254317")]),
    # hcloud: the snapshot id; snapshots are global, recorded for each spec region
    "hetzner": ("hcloud", "187654321", [("fsn1", "187654321")]),
    # googlecompute: the image name
    "gcp": ("googlecompute", "django-web-1-4-0-b20261128", [("us-central1-a", "django-web-1-4-0-b20261128")]),
    # azure-arm managed image: the resource id
    "azure": ("azure-arm", "/subscriptions/0000/resourceGroups/images/providers/Microsoft.Compute/images/"
              "django-web-1.4.0-b20261128", [("eastus", "/subscriptions/0000/resourceGroups/images/providers/"
                                                         "Microsoft.Compute/images/django-web-1.4.0-b20261128")]),
}


def _manifest(tmp_path, name: str) -> list[dict]:
    builder_type, artifact_id, _ = ARTIFACT_IDS[name]
    run = {"name": name, "builder_type": builder_type, "build_time": 1764324000, "files": None,
           "artifact_id": artifact_id, "packer_run_uuid": "run-2",
           "custom_data": {"image": "django-web", "provider": name, "build_id": "b20261128",
                           "image_version": "1.4.0", "git_commit": "abc1234", "spec_hash": "0123456789abcdef",
                           "os": "debian-12"}}
    old = dict(run, artifact_id="stale", packer_run_uuid="run-1")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"builds": [old, run], "last_run_uuid": "run-2"}, indent=2))
    return pipeline.manifest_builds(path)


@pytest.mark.parametrize("name", list(ARTIFACT_IDS))
def test_artifacts_from_the_manifest(name, tmp_path):
    p = providers.get(name)(SPEC)
    found = p.artifacts(_manifest(tmp_path, name), BuildContext(tmp_path, {"build_id": "b20261128"}))
    assert found == ARTIFACT_IDS[name][2]


@pytest.mark.parametrize("name", list(ARTIFACT_IDS))
def test_latest_and_launch_command(name, tmp_path, catalog_at, monkeypatch, capsys):
    monkeypatch.setenv("DJBAKE_CATALOG", catalog_at())
    monkeypatch.setenv("GCP_PROJECT_ID", "my-project")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "images")
    p = providers.get(name)(SPEC)
    found = p.artifacts(_manifest(tmp_path, name), BuildContext(tmp_path, {}))
    catalog.Catalog().add([catalog.Entry("b20261128", "django-web", "1.4.0", name, region, art, verified=True)
                           for region, art in found])
    region, artifact = found[-1]
    assert cli.main(["latest", "--provider", name, "--region", region]) == 0
    assert capsys.readouterr().out.strip() == artifact
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text("#cloud-config\n")
    assert cli.main(["launch", "--provider", name, "--region", region, "--user-data", str(user_data)]) == 0
    cmd = shlex.split(capsys.readouterr().out.strip())
    expected = {
        "digitalocean": ["doctl", "compute", "droplet", "create", "django-web-1", "--image", artifact, "--region",
                         region, "--size", "s-1vcpu-2gb", "--wait", "--user-data-file", str(user_data)],
        "hetzner": ["hcloud", "server", "create", "--name", "django-web-1", "--image", artifact, "--type", "cx22",
                    "--location", region, "--user-data-from-file", str(user_data)],
        "gcp": ["gcloud", "compute", "instances", "create", "django-web-1", "--project", "my-project", "--zone",
                region, "--machine-type", "e2-small", "--image", artifact, "--image-project", "my-project",
                "--metadata-from-file", f"user-data={user_data}"],
        "azure": ["az", "vm", "create", "--resource-group", "images", "--name", "django-web-1", "--image", artifact,
                  "--location", region, "--size", "Standard_B1ms", "--admin-username", "azureuser",
                  "--generate-ssh-keys", "--custom-data", str(user_data)],
    }[name]
    assert cmd == expected


def test_copies_follow_regions_in_templates():
    s = spec.loads("name: django-web\nproviders:\n  digitalocean: {near: [europe, asia]}\n"
                   "  gcp: {regions: [europe-west1-b, asia-northeast1-a]}\n  azure: {near: [europe]}\n")
    assert providers.get("digitalocean")(s).source()["snapshot_regions"] == ["ams3", "sgp1"]
    assert providers.get("gcp")(s).source()["image_storage_locations"] == ["asia-northeast1", "europe-west1"]
    assert providers.get("azure")(s).source()["location"] == "westeurope"
