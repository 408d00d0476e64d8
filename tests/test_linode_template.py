"""Linode templates, checked against the linode plugin's documented keys (Debian's Packer lacks the builder)."""
from __future__ import annotations

from pathlib import Path

from builder import plugin_schema, providers, spec

SPEC = spec.load(Path(__file__).parent / "specs" / "golden.yaml")


def test_linode_source_uses_only_documented_keys_and_replicates():
    src = providers.get("linode")(SPEC).source()
    assert plugin_schema.check("linode", src) == []
    assert src["image_regions"][0] == src["region"]
    assert src["cloud_init"] is True  # metadata user-data needs a cloud-init capable image


def test_plugin_rule_image_needs_a_way_in():
    src = providers.get("linode")(SPEC).source()
    del src["root_pass"]
    assert plugin_schema.check("linode", src) == ["needs one of root_pass, authorized_keys, authorized_users"]


def test_root_pass_is_generated_per_build_not_written():
    src = providers.get("linode")(SPEC).source()
    assert src["root_pass"] == "${uuidv4()}"
