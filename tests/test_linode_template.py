"""Linode templates, checked against the linode plugin's documented keys (Debian's Packer lacks the builder)."""
from __future__ import annotations

from pathlib import Path

from builder import providers, spec
from builder.bake import plugin_schema

SPEC = spec.load(Path(__file__).parent / "specs" / "golden.yaml")


def test_linode_source_uses_only_documented_keys_and_replicates():
    p = providers.get("linode")(SPEC)
    src = p.source()
    assert plugin_schema.check("linode", src) == []
    assert src["image_regions"] == "${var.linode_image_regions}"
    # a plain `packer build` replicates to every region; `djbake image` builds in the first and
    # replicates after the fresh-boot verification
    assert p.extra_variables()["linode_image_regions"]["default"] == p.regions
    assert p.regions[0] == src["region"]
    assert p.packer_variables(None) == {"linode_image_regions": f'["{src["region"]}"]'}
    assert src["cloud_init"] is True  # metadata user-data needs a cloud-init capable image


def test_plugin_rule_image_needs_a_way_in():
    src = providers.get("linode")(SPEC).source()
    del src["root_pass"]
    assert plugin_schema.check("linode", src) == ["needs one of root_pass, authorized_keys, authorized_users"]


def test_root_pass_is_generated_per_build_not_written():
    src = providers.get("linode")(SPEC).source()
    assert src["root_pass"] == "${uuidv4()}"
