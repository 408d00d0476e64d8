"""Rendering: golden templates per provider, Packer-version adaptation, no credentials in files.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_render.py` and review the diff.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder import providers, spec
from builder.bake import packer, render, stack, template
from builder.providers.base import BuildContext

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
    layer = f"{template.LAYER_DIR}/django-web.pkr.json"
    assert set(files) == {"django-web.pkr.json"} | ({layer} if p.layered else set())
    _check_golden(f"{name}.pkr.json", files["django-web.pkr.json"])
    if p.layered:
        _check_golden(f"{name}.stack-layer.pkr.json", files[layer])


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_golden_template_current_packer(name):
    p = providers.get(name)(SPEC, PACKER_111.version)
    files = template.render_files(SPEC, p, needs_plugins=True)
    layered = {f"{template.LAYER_DIR}/django-web.pkr.json", f"{template.LAYER_DIR}/plugins.pkr.json"}
    assert set(files) == {"django-web.pkr.json", "plugins.pkr.json"} | (layered if p.layered else set())
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
    t = template.build_template(SPEC, providers.get("docker")(SPEC))
    provs = t["build"][0]["provisioner"]
    kinds = [next(iter(p)) for p in provs]
    assert kinds == ["shell", "file", "shell", "shell-local", "shell"]
    # one provisioner runs inputs.sh and every script in order (one plugin process, not one each)
    names = [s.rsplit("/", 1)[1] for s in provs[2]["shell"]["scripts"]]
    assert names == ["inputs.sh", *(s.file for s in stack.scripts_for(SPEC))]
    assert "builder gate" in provs[-2]["shell-local"]["inline"][0]
    assert provs[-1]["shell"]["scripts"] == [provs[2]["shell"]["scripts"][0].replace("inputs.sh", "seal.sh")]
    # each script runs as the payload's copy of it, beside lib.sh and files/ (scripts/lib-exec.sh)
    for p in (provs[2], provs[-1]):
        assert p["shell"]["execute_command"].endswith("bash /tmp/djbake/scripts/lib-exec.sh {{ .Path }}")


def test_lib_exec_runs_the_payloads_copy_under_its_name(tmp_path):
    """Packer uploads each script of a list to one /tmp/script_N.sh: lib-exec.sh runs the same
    script from the payload, so $0 (lib.sh's SCRIPT_NAME, error lines) is its real name."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy2(template.SCRIPTS_DIR / "lib-exec.sh", scripts)
    for name in ("a.sh", "b.sh"):
        (scripts / name).write_text(f'#!/usr/bin/env bash\necho "$(basename "$0") {name} $DJB_X"\n')
    uploaded = tmp_path / "script_42.sh"
    shutil.copy2(scripts / "b.sh", uploaded)
    run = subprocess.run(["bash", str(scripts / "lib-exec.sh"), str(uploaded)], capture_output=True, text=True,
                         env={**os.environ, "DJB_X": "env-kept"})
    assert (run.returncode, run.stdout) == (0, "b.sh b.sh env-kept\n"), run.stderr
    uploaded.write_text("echo not in the payload\n")
    run = subprocess.run(["bash", str(scripts / "lib-exec.sh"), str(uploaded)], capture_output=True, text=True)
    assert run.returncode == 2 and "none of the scripts" in run.stderr and not run.stdout


def test_layered_templates_run_every_script_once_in_order():
    """qemu: the stack layer (cached disk) then the image layer; gate and seal only in the image."""
    p = providers.get("qemu")(SPEC)
    layer = template.build_template(SPEC, p, stack.STACK_LAYER)
    image = template.build_template(SPEC, p)

    def scripts(t):
        return [s.rsplit("/", 1)[1] for x in t["build"][0]["provisioner"]
                for s in x.get("shell", {}).get("scripts", [])]

    # each run first records its own inputs (the suite reads them)
    assert scripts(layer)[0] == scripts(image)[0] == "inputs.sh"
    assert scripts(layer)[1:] + scripts(image)[1:] == [s.file for s in stack.scripts_for(SPEC)] + ["seal.sh"]
    assert scripts(layer) and all(s.layer == stack.STACK_LAYER for s in stack.scripts_for(SPEC)
                                  if s.file in scripts(layer))
    assert not any("shell-local" in x for x in layer["build"][0]["provisioner"])
    assert "builder gate" in image["build"][0]["provisioner"][-2]["shell-local"]["inline"][0]
    # the layer is shared by every app built on it: it never sees the app
    layer_env = layer["build"][0]["provisioner"][2]["shell"]["environment_vars"]
    assert not any(v.startswith("DJBAKE_APP_") for v in layer_env)
    assert any(v.startswith("DJBAKE_APP_") for v in image["build"][0]["provisioner"][2]["shell"]["environment_vars"])
    assert layer["source"]["qemu"]["qemu"]["disk_compression"] is False
    assert image["source"]["qemu"]["qemu"]["disk_compression"] is True


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


def test_a_failed_runs_output_is_cleared_before_the_next_build(tmp_path):
    """Packer refuses to validate or build while a previous run's output directory exists."""
    from builder import safe_paths
    from builder.bake import pipeline

    safe_paths.make(tmp_path / "django-web" / "qemu")  # made by the earlier (failed) run
    for rel in ("output", f"{template.LAYER_DIR}/output"):
        (tmp_path / "django-web" / "qemu" / rel).mkdir(parents=True)
        (tmp_path / "django-web" / "qemu" / rel / "django-web.qcow2").write_bytes(b"half")
    ctx = BuildContext(render.out_dir(SPEC, "qemu", tmp_path), {"build_id": "b2"})
    job = pipeline.Job(SPEC, providers.get("qemu")(SPEC, PACKER_166.version), PACKER_166, ctx, base_dir=tmp_path)
    rendered = pipeline.render_step(job)
    assert not (rendered.directory / "output").exists()
    assert not (rendered.directory / template.LAYER_DIR / "output").exists()
    assert (rendered.directory / template.LAYER_DIR / "django-web.pkr.json").exists()
