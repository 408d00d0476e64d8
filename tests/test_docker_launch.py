"""The user-data parts `djbake launch --provider docker` applies, and its refusals (no container)."""
import pytest

from builder.docker import launch as docker_launch
from builder.errors import UserError


def test_supported_parts_parse():
    data = docker_launch.parse(
        "#cloud-config\nca_certs:\n  trusted: [\"-----BEGIN CERTIFICATE-----\\nx\\n\"]\n"
        "write_files:\n  - path: /root/a.env\n    content: A=1\nruncmd:\n  - [echo, hi]\n  - echo there\n", "u.yaml")
    assert data["write_files"][0]["path"] == "/root/a.env"
    assert data["runcmd"] == [["echo", "hi"], "echo there"]


@pytest.mark.parametrize("text,message", [
    ("runcmd: [\n - a\n bad", "u.yaml, line 2: not YAML"),
    ("- just a list\n", "must be a #cloud-config mapping"),
    ("packages: [nginx]\n", "packages: not applied in a docker container"),
    ("write_files:\n  - path: relative.txt\n", "write_files[0].path: an absolute path"),
    ("runcmd:\n  - {a: 1}\n", "runcmd[0]: a string or a list"),
    ("ca_certs:\n  trusted: 3\n", "ca_certs.trusted"),
])
def test_bad_user_data_names_the_file_and_field(text, message):
    with pytest.raises(UserError) as e:
        docker_launch.parse(text, "u.yaml")
    assert message in str(e.value)
