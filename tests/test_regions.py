"""Regions near users: the per-provider tables, `near:` resolution, located spec errors, `djbake regions`."""
from __future__ import annotations

import textwrap

import pytest

from builder import cli, providers, regions, spec
from builder.errors import SpecError

BASE = "name: web-app\n"


def _load(body: str):
    return spec.loads(BASE + textwrap.dedent(body), "images/x.yaml")


@pytest.mark.parametrize("name", [n for n in providers.PROVIDERS if n not in ("qemu", "docker")])
def test_every_cloud_has_a_table_with_real_continents_and_its_defaults(name):
    rows = regions.table(name)
    assert rows, name
    assert {r.continent for r in rows} <= set(regions.CONTINENTS)
    assert len({r.id for r in rows}) == len(rows), "duplicate region ids"
    cls = providers.get(name)
    p = cls(spec.loads(BASE))
    known = {r.id for r in cls.region_table(p.settings)}
    assert set(p.regions) <= known, "the provider's default region is not in its table"


def test_seed_data_centers_are_there():
    linode = {r.id: r.city for r in regions.table("linode")}
    for rid, city in {"us-east": "Newark", "us-southeast": "Atlanta", "us-central": "Dallas",
                      "us-west": "Fremont", "eu-west": "London", "ap-northeast": "Tokyo"}.items():
        assert city in linode[rid]
    assert {"DFW", "ORD", "IAD", "LON", "HKG", "SYD", "SJC3", "DFW3"} == {r.id for r in regions.table("rackspace")}
    aws = {r.id for r in regions.table("aws")}
    # the seed's nine AWS regions (GovCloud as us-gov-west-1)
    assert {"us-east-1", "us-west-2", "us-west-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1",
            "ap-southeast-2", "sa-east-1", "us-gov-west-1"} <= aws


def test_near_picks_one_region_per_continent_first_builds():
    s = _load("""
        providers:
          linode: {near: [europe, north-america, asia]}
          aws: {near: [south-america, europe]}
          gcp: {near: [europe]}
        """)
    assert providers.get("linode")(s).regions == ["eu-west", "us-east", "ap-northeast"]
    assert providers.get("aws")(s).regions == ["sa-east-1", "eu-west-1"]
    assert providers.get("gcp")(s).regions == ["europe-west1-b"]


def test_near_falls_back_to_the_nearest_continent_and_dedupes():
    s = _load("""
        providers:
          linode: {near: [africa, europe]}
          hetzner: {near: [oceania]}
        """)
    assert providers.get("linode")(s).regions == ["eu-west"]
    assert providers.get("hetzner")(s).regions == ["sin"]
    picks = regions.near(regions.table("linode"), ["africa"])
    assert picks[0].fallback and picks[0].region.continent == "europe"


def test_explicit_regions_win_over_near():
    s = _load("""
        providers:
          digitalocean: {regions: [ams3, nyc3], near: [asia]}
        """)
    assert providers.get("digitalocean")(s).regions == ["ams3", "nyc3"]


def test_template_copies_follow_resolved_regions():
    s = _load("""
        providers:
          linode: {near: [europe, asia]}
          digitalocean: {near: [north-america, europe]}
          gcp: {near: [europe, asia]}
        """)
    assert providers.get("linode")(s).extra_variables()["linode_image_regions"]["default"] == ["eu-west", "ap-northeast"]
    do = providers.get("digitalocean")(s).source()
    assert (do["region"], do["snapshot_regions"]) == ("nyc3", ["nyc3", "ams3"])
    g = providers.get("gcp")(s).source()
    assert g["zone"] == "europe-west1-b" and g["image_storage_locations"] == ["asia-northeast1", "europe-west1"]


def test_rackspace_regions_follow_identity():
    flex = _load("providers:\n  rackspace: {near: [europe]}\n")
    assert providers.get("rackspace")(flex).regions == ["SJC3"]  # Flex has US regions only
    classic = _load("providers:\n  rackspace: {identity: classic, near: [europe, oceania]}\n")
    assert providers.get("rackspace")(classic).regions == ["LON", "SYD"]
    assert providers.get("rackspace")(_load("providers:\n  rackspace: {identity: classic}\n")).regions == ["DFW"]


@pytest.mark.parametrize("body, where, message", [
    ("providers:\n  linode:\n    regions: [us-east, eu-wset]\n", "images/x.yaml:4:24: providers.linode.regions[1]",
     "linode has no region 'eu-wset'; did you mean 'eu-west'?"),
    ("providers:\n  aws:\n    regions:\n      - us-east-1\n      - eu-west-9\n",
     "images/x.yaml:6:9: providers.aws.regions[1]", "aws has no region 'eu-west-9'; did you mean 'eu-west-"),
    ("providers:\n  hetzner:\n    near: [europe, asai]\n", "images/x.yaml:4:20: providers.hetzner.near[1]",
     "'asai' is not a continent; did you mean 'asia'?"),
    ("providers:\n  rackspace:\n    regions: [LON]\n", "images/x.yaml:4:15: providers.rackspace.regions[0]",
     "LON is a Rackspace classic region; set `identity: classic`"),
    ("providers:\n  gcp:\n    regions: [us-central1]\n", "images/x.yaml:4:15: providers.gcp.regions[0]",
     "gcp has no region 'us-central1'; did you mean 'us-central1-"),
])
def test_unknown_region_is_a_located_one_line_error(body, where, message):
    with pytest.raises(SpecError) as e:
        spec.loads(BASE + body, "images/x.yaml")
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(where + ": "), text
    assert message in text


def test_regions_command(capsys):
    assert cli.main(["regions", "--provider", "linode", "--near", "europe,africa"]) == 0
    out = capsys.readouterr().out
    assert "eu-west" in out and "no linode region in africa; nearest: europe" in out
    assert cli.main(["regions", "-p", "rackspace"]) == 0
    out = capsys.readouterr().out
    assert "SJC3" in out and "DFW3" in out and "LON" not in out  # the default identity is flex
    assert cli.main(["regions", "-p", "linode", "--near", "antarctica"]) == 2
    assert "not a continent" in capsys.readouterr().err
