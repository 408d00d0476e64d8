"""Rendering: golden templates per provider, Packer-version adaptation, no credentials in files.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_render.py` and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder import packer, providers, render, spec, stack, template

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
SPEC = spec.load(HERE / "specs" / "golden.yaml")
PACKER_166 = packer.Packer("/usr/bin/packer", (1, 6, 6))
PACKER_111 = packer.Packer("/usr/bin/packer", (1, 11, 2))


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the golden file"


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_golden_template_packer_16(name):
    p = providers.get(name)(SPEC, PACKER_166.version)
    files = template.render_files(SPEC, p, needs_plugins=False)
    assert set(files) == {"django-web.pkr.json"}
    _check_golden(f"{name}.pkr.json", files["django-web.pkr.json"])


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_golden_template_current_packer(name):
    p = providers.get(name)(SPEC, PACKER_111.version)
    files = template.render_files(SPEC, p, needs_plugins=True)
    assert set(files) == {"django-web.pkr.json", "plugins.pkr.json"}
    plugins = json.loads(files["plugins.pkr.json"])
    (plugin,) = plugins["packer"]["required_plugins"].values()
    assert plugin["source"].startswith("github.com/")
    _check_golden(f"{name}.packer-1.11.pkr.json", files["django-web.pkr.json"])


def test_current_packer_gets_imdsv2_and_16_does_not():
    new = json.loads(template.render_files(SPEC, providers.get("aws")(SPEC, (1, 11, 2)), True)["django-web.pkr.json"])
    old = json.loads(template.render_files(SPEC, providers.get("aws")(SPEC, (1, 6, 6)), False)["django-web.pkr.json"])
    assert new["source"]["amazon-ebs"]["aws"]["metadata_options"]["http_tokens"] == "required"
    assert "metadata_options" not in old["source"]["amazon-ebs"]["aws"]


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_credentials_only_as_sensitive_env_variables(name, monkeypatch):
    cls = providers.get(name)
    for cred in cls.credentials:
        monkeypatch.setenv(cred.env, f"SECRET-{cred.env}-VALUE")
    text = template.render_files(SPEC, cls(SPEC), False)["django-web.pkr.json"]
    assert "SECRET-" not in text
    variables = json.loads(text)["variable"]
    for cred in cls.credentials:
        var = variables[cred.variable]
        assert var["default"] == f'${{env("{cred.env}")}}'
        assert var["sensitive"] is cred.secret


def test_template_order_gate_before_seal():
    t = template.build_template(SPEC, providers.get("qemu")(SPEC))
    provs = t["build"][0]["provisioner"]
    kinds = [next(iter(p)) for p in provs]
    n = len(stack.scripts_for(SPEC))
    assert kinds == ["shell", "file", *["shell"] * n, "shell-local", "shell"]
    assert "builder gate" in provs[-2]["shell-local"]["inline"][0]
    assert provs[-1]["shell"]["script"].endswith("/seal.sh")
    # each script runs from the uploaded payload, beside lib.sh and files/
    for p in provs[2:2 + n] + provs[-1:]:
        name = p["shell"]["script"].rsplit("/", 1)[1]
        assert (p["shell"]["remote_folder"], p["shell"]["remote_file"]) == ("/tmp/djbake/scripts", name)


def test_render_writes_self_contained_dir(tmp_path):
    (r,) = render.render(SPEC, ["qemu"], PACKER_166, base=tmp_path, provenance={"build_id": "b1"})
    assert r.directory == tmp_path / "django-web" / "qemu"
    assert (r.directory / "django-web.pkr.json").exists()
    assert not (r.directory / "plugins.pkr.json").exists()
    assert json.loads((r.directory / template.PROVENANCE_FILE).read_text()) == {"build_id": "b1"}
    assert (r.directory / "payload" / "scripts").is_dir()


def test_render_for_new_packer_then_old_removes_plugins_file(tmp_path):
    render.render(SPEC, ["docker"], PACKER_111, base=tmp_path)
    assert (tmp_path / "django-web" / "docker" / "plugins.pkr.json").exists()
    render.render(SPEC, ["docker"], PACKER_166, base=tmp_path)
    assert not (tmp_path / "django-web" / "docker" / "plugins.pkr.json").exists()


def test_schema_committed_matches_model():
    committed = json.loads((HERE.parent / "schema" / "image-spec.json").read_text())
    assert committed == spec.json_schema(), "run: djbake schema -o schema/image-spec.json"


def test_specs_in_images_carry_schema_line_and_validate():
    for path in (HERE.parent / "images").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schema/image-spec.json")
        spec.load(path)
