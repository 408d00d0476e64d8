"""Step 2: validated spec + provider -> Packer template (HCL2 JSON syntax).

The build is the same for every provider: upload the payload, run the
stack scripts, run the in-build testinfra gate from the host, seal, and
write a manifest with provenance. Only the source block differs.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder import paths, safe_paths, tables
from builder.bake import apt_cache, stack
from builder.providers import base
from builder.spec import Spec, app_source
from builder.spec import values as validate_values

SCRIPTS_DIR = paths.ROOT / "scripts"

PROVENANCE_VARS = ("image_version", "build_id", "git_commit", "spec_hash")
# A layered provider's stack-layer template lives in its own directory
# (Packer builds every template of a directory together).
LAYER_DIR = "layers/stack"
PROVENANCE_FILE = "provenance.auto.pkrvars.json"
PLUGINS_FILE = "plugins.pkr.json"


@dataclass(frozen=True)
class Rendered:
    directory: Path
    template: Path
    files: dict[str, str]


def template_name(spec: Spec) -> str:
    return f"{spec.name}.pkr.json"


def _variables(provider: base.Provider) -> dict:
    variables = {
        name: {"type": "string", "default": "dev" if name != "build_id" else "0"} for name in PROVENANCE_VARS
    }
    variables["djbake_python"] = {"type": "string", "default": "python3"}
    variables.update(base.credential_variables(provider))
    variables.update(provider.extra_variables())
    if provider.uses_apt_cache:
        variables[apt_cache.VARIABLE] = {"type": "string", "default": ""}
    return variables


def _become(provider: base.Provider, source: dict) -> str:
    return "" if source.get("ssh_username") == "root" or provider.gate_transport != "ssh" else "sudo -E "


def _gate(provider: base.Provider) -> dict:
    if provider.gate_transport == "ssh":
        target = "--host ${build.Host} --port ${build.Port} --user ${build.User}"
        env = ["DJBAKE_GATE_KEY=${build.SSHPrivateKey}"]
        if "ssh_key_file" in provider.extra_variables():
            target += " --key-file ${var.ssh_key_file}"
    else:
        target = "--container ${build.ID}"
        env = []
    return {
        "shell-local": {
            "inline": [
                f"${{var.djbake_python}} -m builder gate --provider {provider.name} {target} --log-dir ${{path.root}}"
            ],
            "environment_vars": env,
        }
    }


def build_template(spec: Spec, provider: base.Provider, layer: str | None = None) -> dict:
    """The Packer template of a build, or of one layer of it.

    A provider that builds in layers (`provider.layered`) gets two: the
    stack layer (`layer="stack"`: its scripts only, no gate, no seal; a
    cached disk, never an image) and the image (`layer="image"`: the rest
    on top of that disk, then the gate and the seal). Others get one
    template with every script.
    """
    if layer is None and provider.layered:
        layer = stack.IMAGE_LAYER
    stack_layer = layer == stack.STACK_LAYER
    source = provider.layer_source() if stack_layer else provider.source()
    become = _become(provider, source)
    # The stack layer is shared by every app built on it: it must not see the app.
    env = [f"{k}={v}" for k, v in stack.environment(spec, provider.name).items()
           if not (stack_layer and k.startswith("DJBAKE_APP_"))]
    if provider.uses_apt_cache:
        # Known only when the build starts (pipeline.packer_variables), and not
        # part of what the image is: a variable, so the template stays the same.
        env.append(f"DJBAKE_APT_PROXY=${{var.{apt_cache.VARIABLE}}}")
    payload = stack.PAYLOAD_DIR
    payload_dir = "${path.root}/../../payload" if stack_layer else "${path.root}/payload"

    def run_scripts(*names: str) -> dict:
        # One provisioner for a run of scripts, not one each: Packer starts a
        # plugin process per provisioner, which made validate ~4x slower. Packer
        # still says "Provisioning with shell script: PATH" for each (timings,
        # failures). Every script of the list is uploaded to the same
        # /tmp/script_N.sh, so lib-exec.sh runs the payload's copy of it, from
        # where it finds lib.sh and files/ and is named in its errors.
        execute = f"{become}env {{{{ .Vars }}}} bash {payload}/scripts/{stack.EXEC} {{{{ .Path }}}}"
        return {"shell": {"scripts": [f"{payload_dir}/scripts/{name}" for name in names],
                          "environment_vars": env, "execute_command": execute}}

    provisioners = [
        {"shell": {"inline": [f"mkdir -p {payload}"]}},
        {"file": {"source": f"{payload_dir}/", "destination": payload}},
        run_scripts(stack.INPUTS.file, *(s.file for s in stack.scripts_for(spec, layer))),
    ]
    if not stack_layer:
        provisioners += [_gate(provider), run_scripts(stack.SEAL.file)]
    manifest = {
        "manifest": {
            "output": "${path.root}/manifest.json",
            "strip_path": True,
            "custom_data": {name: f"${{var.{name}}}" for name in PROVENANCE_VARS}
            | {"image": spec.name, "provider": provider.name, "os": spec.os}
            | ({"layer": stack.STACK_LAYER} if stack_layer else provider.manifest_data()),
        }
    }
    return {
        "variable": _variables(provider),
        "source": {provider.builder_type: {provider.name: source}},
        "build": [
            {
                "name": f"{spec.name}-{stack.STACK_LAYER}" if stack_layer else spec.name,
                "sources": [f"source.{provider.builder_type}.{provider.name}"],
                "provisioner": provisioners,
                "post-processor": [manifest] if stack_layer else [manifest, *provider.post_processors()],
            }
        ],
    }


def plugins_template(provider: base.Provider) -> dict:
    source, version = tables.PACKER_PLUGINS[provider.plugin]
    return {"packer": {"required_plugins": {provider.plugin: {"source": source, "version": version}}}}


def dumps(obj: dict) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def render_files(spec: Spec, provider: base.Provider, needs_plugins: bool) -> dict[str, str]:
    """Everything rendered for one provider, as relative path -> text."""
    files = {template_name(spec): dumps(build_template(spec, provider))}
    if provider.layered:
        files[f"{LAYER_DIR}/{template_name(spec)}"] = dumps(build_template(spec, provider, stack.STACK_LAYER))
    if needs_plugins and provider.plugin:
        files[PLUGINS_FILE] = dumps(plugins_template(provider))
        if provider.layered:
            files[f"{LAYER_DIR}/{PLUGINS_FILE}"] = files[PLUGINS_FILE]
    return files


def write(spec: Spec, provider: str, files: dict[str, str], out_dir: Path,
          provenance: dict[str, str] | None = None) -> Rendered:
    """Write render_files()'s files for `provider` and the payload into out_dir, atomically per file."""
    safe_paths.claim(out_dir, legacy_root=paths.BUILD_DIR)  # removals below only inside a directory djbake made
    for rel in (PLUGINS_FILE, f"{LAYER_DIR}/{PLUGINS_FILE}"):
        if rel not in files and (out_dir / rel).exists():
            (out_dir / rel).unlink()
    for rel, text in files.items():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(out_dir / rel, text)
    if provenance is not None:
        _atomic_write(out_dir / PROVENANCE_FILE, dumps(validate_values.provenance_for(provider, provenance)))
    _copy_payload(spec, out_dir / "payload")
    return Rendered(out_dir, out_dir / template_name(spec), files)


def _copy_payload(spec: Spec, payload: Path) -> None:
    """Copy the guest scripts this spec runs, their shared lib*.sh and files/, and a local app."""
    scripts = payload / "scripts"
    safe_paths.remove(scripts, payload.parent, owner=payload.parent)
    scripts.mkdir(parents=True)
    wanted = {s.file for s in stack.scripts_for(spec)} | {stack.INPUTS.file, stack.SEAL.file}
    for src in sorted(SCRIPTS_DIR.glob("*.sh")):
        if src.name in wanted or src.name.startswith("lib"):
            shutil.copy2(src, scripts / src.name)
    if (SCRIPTS_DIR / "files").is_dir():
        shutil.copytree(SCRIPTS_DIR / "files", scripts / "files")
    app_source.copy_into(spec, payload)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
