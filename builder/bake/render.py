"""`djbake render` and `djbake validate`: spec -> templates -> packer validate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder import paths, providers
from builder.bake import packer as packer_mod
from builder.bake import plugin_schema, template
from builder.errors import UserError
from builder.providers.base import Provider
from builder.spec import Spec
from builder.spec import values as validate_values


def out_dir(spec: Spec, provider: str, base: Path | None = None) -> Path:
    return (base or paths.BUILD_DIR) / spec.name / provider


def render(spec: Spec, provider_names: list[str], packer: packer_mod.Packer | None,
           base: Path | None = None, provenance: dict[str, str] | None = None) -> list[template.Rendered]:
    version = packer.version if packer else (1, 6, 6)
    provs = [providers.get(name)(spec, version) for name in provider_names]
    return render_providers(spec, provs, packer, base, provenance)


def render_providers(spec: Spec, provs: list[Provider], packer: packer_mod.Packer | None,
                     base: Path | None = None, provenance: dict[str, str] | None = None) -> list[template.Rendered]:
    """render() for provider objects already made (`djbake image` makes its one provider once)."""
    needs_plugins = bool(packer and packer.needs_plugins)
    for p in provs:  # what the spec's own providers section would have refused (arch, version)
        validate_values.require_renderable(spec, p.name)
    # Render every template in memory first: nothing is written if one fails.
    files = [template.render_files(spec, p, needs_plugins) for p in provs]
    return [template.write(spec, p.name, f, out_dir(spec, p.name, base), provenance) for p, f in zip(provs, files)]


@dataclass
class Validation:
    provider: str
    ok: bool
    how: str
    output: str


def validate(spec: Spec, rendered: template.Rendered, provider: str | Provider,
             packer: packer_mod.Packer) -> Validation:
    """`packer validate` (or the plugin schema check) of one rendered provider, given by name or as the object."""
    if isinstance(provider, str):
        provider = providers.get(provider)(spec, packer.version)
    provider_name = provider.name
    if packer.version < packer_mod.BUILTINS_UNTIL and provider.plugin and not _builtin(packer, provider):
        # Debian's Packer lacks this builder and cannot install plugins.

        problems = plugin_schema.check(provider.builder_type, provider.source())
        return Validation(provider_name, not problems, "plugin schema (no builder in this Packer)",
                          "; ".join(problems) or "ok")
    packer_mod.init(packer, rendered.directory)
    if provider.validate_needs_account and not provider.has_credentials():
        ok, output = packer_mod.validate(packer, rendered.directory, provider.validate_placeholders(),
                                         syntax_only=True)
        return Validation(provider_name, ok, f"packer {packer.version_text} validate -syntax-only "
                          "(the builder signs in while validating; set its credentials for a full check)", output)
    ok, output = packer_mod.validate(packer, rendered.directory, provider.validate_placeholders())
    if ok and provider.layered:
        layer = rendered.directory / template.LAYER_DIR
        packer_mod.init(packer, layer)
        ok, more = packer_mod.validate(packer, layer, provider.validate_placeholders())
        output = f"{output}\nstack layer: {more}"
    return Validation(provider_name, ok, f"packer {packer.version_text} validate", output)


def _builtin(packer: packer_mod.Packer, provider) -> bool:
    if packer.needs_plugins:
        return True  # `packer init` installs it
    return provider.builder_type in packer_mod.builtin_builders(packer)


def require_known(names: list[str]) -> list[str]:
    for n in names:
        providers.get(n)
    if not names:
        raise UserError("no provider given")
    return names
