"""`packer validate` on every rendered template, with the real Packer.

Debian's Packer 1.6.6 has every builder but linode built in; linode
templates are checked against the plugin's documented keys
(builder/data/plugin-keys.json). Rackspace's openstack builder signs in
while validating: without credentials djbake checks syntax only (the full
check against a local Keystone stand-in is in the rackspace tests).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builder import providers, spec
from builder.bake import packer, plugin_schema, render

HERE = Path(__file__).parent
SPEC = spec.load(HERE / "specs" / "golden.yaml")
pytestmark = pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")


@pytest.fixture(scope="module")
def pk():
    return packer.find()


@pytest.fixture(scope="module")
def rendered(pk, tmp_path_factory):
    base = tmp_path_factory.mktemp("validate")
    names = list(providers.PROVIDERS)
    return dict(zip(names, render.render(SPEC, names, pk, base=base)))


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_template_validates(name, pk, rendered, monkeypatch):
    for var in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    v = render.validate(SPEC, rendered[name], name, pk)
    assert v.ok, v.output
    if name == "linode" and not pk.needs_plugins:
        assert v.how.startswith("plugin schema")
    elif name == "rackspace" and not pk.needs_plugins:
        assert "-syntax-only" in v.how
    else:
        assert v.how == f"packer {pk.version_text} validate"


def test_debian_packer_lacks_only_linode(pk):
    if pk.needs_plugins:
        pytest.skip("this Packer installs plugins with packer init")
    have = packer.builtin_builders(pk)
    types = {cls.builder_type for cls in providers.PROVIDERS.values()}
    assert types - have == {"linode"}


def test_packer_validate_catches_a_broken_template(pk, rendered):
    d = rendered["digitalocean"].directory
    tpl = json.loads((d / "django-web.pkr.json").read_text())
    del tpl["source"]["digitalocean"]["digitalocean"]["region"]
    broken = d.parent / "broken-do"
    shutil.copytree(d, broken)
    (broken / "django-web.pkr.json").write_text(json.dumps(tpl))
    ok, output = packer.validate(pk, broken, {"digitalocean_token": "placeholder"})
    assert not ok and "region" in output


def test_plugin_schema_catches_unknown_and_missing_keys():
    source = providers.get("linode")(SPEC).source()
    assert plugin_schema.check("linode", source) == []
    bad = dict(source, image_regionz=["us-east"])
    del bad["region"]
    assert plugin_schema.check("linode", bad) == ["unknown key 'image_regionz'", "missing required key 'region'"]
