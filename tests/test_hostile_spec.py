"""Hostile spec values (issue 17, classes 2, 4, 5 and 8): refused by the model with a located one-line error.

Each case is a spec that `djbake check` must refuse, naming the field. In
process through builder.spec.loads for speed; a few through the real CLI
for the exit status and the single line.
"""
from __future__ import annotations

import pytest
import yaml

from builder import spec as spec_mod
from builder.bake import render
from builder.errors import SpecError, UserError
from builder.spec import loader, values as validate_values
from tests.test_cli_errors import djbake, one_line_error

BASE = "name: django-web\n"


def refused(text: str, field: str, *fragments: str) -> str:
    with pytest.raises(SpecError) as info:
        spec_mod.loads(text, "hostile.yaml")
    err = info.value
    assert err.field == field, str(err)
    assert err.line >= 1 and err.column >= 1
    message = str(err)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def with_data(**data) -> str:
    return yaml.safe_dump({"name": "django-web", **data}, sort_keys=False)


# -- class 2: Packer interpolation, refused in every field, generally --------------------------

PAYLOADS = ["${var.aws_secret_key}", '${file("/etc/shadow")}', "%{ for x in [1] }x%{ endfor }",
            "{{ build `ID` }}", "a${env(\"HOME\")}b", "{{user `x`}}"]

FIELDS = [  # (data, the field the error must name)
    (lambda v: {"providers": {"aws": {"tags": {"team": v}}}}, "providers.aws.tags.team"),
    (lambda v: {"providers": {"aws": {"tags": {v: "x"}}}}, None),
    (lambda v: {"providers": {"aws": {"instance_size": v}}}, "providers.aws.instance_size"),
    (lambda v: {"providers": {"aws": {"source_image": v}}}, "providers.aws.source_image"),
    (lambda v: {"providers": {"aws": {"volume_type": v}}}, "providers.aws.volume_type"),
    (lambda v: {"providers": {"rackspace": {"networks": [v]}}}, "providers.rackspace.networks[0]"),
    (lambda v: {"providers": {"gcp": {"tags": {"team": v}}}}, "providers.gcp.tags.team"),
    (lambda v: {"providers": {"hetzner": {"tags": {"team": v}}}}, "providers.hetzner.tags.team"),
    (lambda v: {"app": {"source": f"https://example.com/{v}.tar.gz", "module": "m.wsgi"}}, "app.source"),
    (lambda v: {"app": {"source": "https://example.com/a.tgz", "module": "m.wsgi", "settings": v}}, "app.settings"),
    (lambda v: {"app": {"source": "https://example.com/a.tgz", "module": "m.wsgi", "requirements": v}},
     "app.requirements"),
    (lambda v: {"description": v}, "description"),
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("make, field", FIELDS)
def test_packer_syntax_is_refused_in_every_field(make, field, payload):
    with pytest.raises(SpecError) as info:
        spec_mod.loads(with_data(**make(payload)), "hostile.yaml")
    message = str(info.value)
    assert "Packer template syntax" in message, message
    if field is not None:
        assert info.value.field == field, message


def test_every_string_field_of_the_model_is_walked():
    """The check is general: a string at any depth of the model, keys included, is seen."""
    spec = spec_mod.loads(with_data(providers={"aws": {"tags": {"team": "web"}}}))
    found = list(validate_values._strings(spec, ()))
    assert (("providers", "aws", "tags", "team"), "team") in found  # the key
    assert (("providers", "aws", "tags", "team"), "web") in found   # its value
    assert (("stack", "django"), spec.stack.django) in found and (("name",), "django-web") in found


def test_control_characters_and_surrogates_are_refused():
    refused(with_data(description="a\x1b[31mred"), "description", "control character")
    refused('name: django-web\ndescription: "a\\udcffb"\n', "description", "surrogate")


# -- class 4: provenance forged from the spec -----------------------------------------------

@pytest.mark.parametrize("key", ["djbake:verified", "djbake:build-id", "djbake:image", "DJBAKE:image",
                                 "aws:cloudformation:stack", "djbake_verified"])
def test_reserved_tag_prefixes_are_refused(key):
    refused(with_data(providers={"aws": {"tags": {key: "true"}}}), loader._dotted(("providers", "aws", "tags", key)),
            "reserved")


# -- class 5: apt operators and regular expressions --------------------------------------------

@pytest.mark.parametrize("name", ["apparmor-", "openssh-server+", "zstd.", "zstd.*", "a..b", "lib.+", "^zstd",
                                  "zst?d", "nginx=1.0", "nginx/bookworm", "Nginx", "-x", "x", "nginx:amd64"])
def test_apt_operators_and_regexes_are_refused(name):
    refused(with_data(packages=["htop", name]), "packages[1]")


@pytest.mark.parametrize("name", ["g++", "libstdc++6", "python3.11", "gir1.2-glib-2.0", "htop", "libc6-dev", "0ad"])
def test_real_debian_names_pass(name):
    assert spec_mod.loads(with_data(packages=[name])).packages == [name]


def test_a_package_twice_is_refused():
    refused(with_data(packages=["htop", "curl", "htop"]), "packages[2]", "twice")


@pytest.mark.parametrize("url, fragment", [
    ("git+--upload-pack=/tmp/pwned", "option"),
    ("git+https://example.com/a b.git", "spaces"),
    ("git+https://ghp_abcdef123456@github.com/me/app.git", "deploy key"),
    ("https://user:secret@example.com/app.tar.gz", "deploy key"),
    ("git+https://github.com/me/app.git@--upload-pack=x", "reference"),
    ("ssh://-oProxyCommand=x/app.git", "option"),
])
def test_hostile_urls_are_refused(url, fragment):
    refused(with_data(app={"source": url, "module": "m.wsgi"}), "app.source", fragment)


def test_ssh_deploy_key_urls_pass():
    for url in ("git@github.com:me/app.git", "ssh://git@github.com/me/app.git", "git+https://github.com/me/app.git"):
        assert spec_mod.loads(with_data(app={"source": url, "module": "m.wsgi"})).app.source == url


# -- class 8: values that would fail late at the cloud -------------------------------------------

@pytest.mark.parametrize("data, field", [
    ({"lifetime_days": True}, "lifetime_days"),
    ({"disk_size_gb": "20"}, "disk_size_gb"),
    ({"disk_size_gb": 20.0}, "disk_size_gb"),
    ({"providers": {"qemu": {"cpus": True}}}, "providers.qemu.cpus"),
    ({"providers": {"aws": {"iops": "3000"}}}, "providers.aws.iops"),
    ({"stack": {"redis": 1}}, "stack.redis"),
    ({"stack": {"nginx": "yes"}}, "stack.nginx"),
])
def test_no_type_coercion(data, field):
    refused(with_data(**data), field)


def test_duplicate_regions_and_continents_are_refused():
    refused(with_data(providers={"aws": {"regions": ["us-east-1", "eu-west-1", "us-east-1"]}}),
            "providers.aws.regions[2]", "twice")
    refused(with_data(providers={"hetzner": {"near": ["Europe", "Europe"]}}), "providers.hetzner.near[1]", "twice")


@pytest.mark.parametrize("provider", ["linode", "rackspace", "digitalocean", "docker"])
def test_arm64_with_an_x86_only_provider_is_refused(provider):
    refused(with_data(arch="arm64", providers={provider: {}}), f"providers.{provider}", "arm64")
    spec = spec_mod.loads(with_data(arch="arm64"))
    with pytest.raises(UserError, match="arm64"):
        render.render(spec, [provider], None)


@pytest.mark.parametrize("version", ["A" * 60, "1" * 40])
def test_versions_are_checked_against_every_providers_names(version):
    """GCE names have 63 characters for name, version and build id together."""
    refused(with_data(version=version), "version", "image name")


def test_a_plus_version_is_mapped_not_passed_raw():
    """`1.0+rc1` was an invalid AMI name and docker tag; mapped, every provider's name rule holds."""
    spec = spec_mod.loads(with_data(version="1.0+rc1"))
    for provider in validate_values.NAME_RULES:
        assert validate_values.name_problem(provider, spec.name, spec.version) is None
    assert validate_values.provider_version("docker", "1.0+rc1") == "1.0-rc1"


def test_versions_are_mapped_per_provider():
    """The default version (git describe) is mapped, not refused: GCE names have no dots, AMI names no `+`."""
    assert validate_values.provider_version("gcp", "v1.2.3-4-gABC") == "v1-2-3-4-gabc"
    assert validate_values.provider_version("aws", "1.0+local") == "1.0-local"
    assert validate_values.name_problem("gcp", "django-web", "1.2.3") is None
    assert validate_values.name_problem("docker", "django-web", "1.2.3") is None


def test_rendered_provenance_carries_the_mapped_version(tmp_path):
    import json

    spec = spec_mod.loads(with_data())
    (gcp,) = render.render(spec, ["gcp"], None, tmp_path, provenance={
        "image_version": "1.2.3+dirty", "build_id": "20260101000000-abcdef", "git_commit": "abc", "spec_hash": "0"})
    assert json.loads((gcp.directory / "provenance.auto.pkrvars.json").read_text())["image_version"] == "1-2-3-dirty"


@pytest.mark.parametrize("provider, key, value", [
    ("gcp", "Team", "web"), ("gcp", "team", "Web Team"), ("gcp", "team", "x" * 64),
    ("aws", "k" * 129, "v"), ("aws", "team", "v" * 257), ("aws", "team", "a;b"),
    ("hetzner", "team", "a b"), ("azure", "a/b", "v"), ("azure", "team", "v" * 257),
    ("digitalocean", "team", "a b"), ("linode", "team", "web"),
])
def test_tags_outside_each_providers_limits_are_refused(provider, key, value):
    with pytest.raises(SpecError) as info:
        spec_mod.loads(with_data(providers={provider: {"tags": {key: value}}}), "hostile.yaml")
    assert info.value.field.startswith(f"providers.{provider}.tags"), str(info.value)


def test_cli_check_is_one_line_exit_2_and_names_the_field(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE + "providers:\n  aws:\n    tags:\n      team: ${var.aws_secret_key}\n")
    line = one_line_error(djbake("check", "--spec", str(spec), tmp=tmp_path), f"{spec}:5:", "providers.aws.tags.team")
    assert "Packer" in line


@pytest.mark.skipif(not __import__("shutil").which("apt-cache"), reason="no apt-cache on this host")
@pytest.mark.parametrize("packages, ok", [("htop g++ python3.11", True), ("htop zstd.", False),
                                          ("apparmor-", False), ("nosuchpackage-djbake", False)])
def test_guest_insists_on_exact_archive_names(packages, ok):
    """scripts/base.sh's own check, run against this host's apt (Debian, as in the image)."""
    import subprocess
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "scripts" / "base.sh").read_text()
    loop = text[text.index("    for pkg in $DJBAKE_PACKAGES"):text.index("    done\n") + len("    done\n")]
    script = "set -euo pipefail\ndie() { echo \"$*\" >&2; exit 1; }\n" + loop
    proc = subprocess.run(["bash", "-c", script], env={"DJBAKE_PACKAGES": packages, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 0) == ok, proc.stderr
