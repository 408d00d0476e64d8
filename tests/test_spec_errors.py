"""Bad specs: each gives one line naming file:line:col and the field, exit 2, no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builder import spec
from builder.errors import SpecError

BAD = Path(__file__).parent / "specs" / "bad"

# file -> (line, column, field path, words the message must contain)
EXPECTED = {
    "app-bad-module.yaml": (4, 11, "app.module", "dotted Python module"),
    "app-missing-module.yaml": (3, 3, "app.module", "is required"),
    "aws-iops.yaml": (4, 11, "providers.aws.iops", "greater than or equal to 3000"),
    "bad-arch.yaml": (2, 7, "arch", "'sparc' is not allowed"),
    "bad-database.yaml": (3, 13, "stack.database", "'postgresql' or 'none'"),
    "bad-name.yaml": (1, 7, "name", "does not match"),
    "bad-os.yaml": (2, 5, "os", "'debian-12'"),
    "bad-package.yaml": (2, 18, "packages[1]", "not a Debian package name"),
    "disk-not-int.yaml": (2, 15, "disk_size_gb", "valid integer"),
    "disk-too-small.yaml": (2, 15, "disk_size_gb", "greater than or equal to 4"),
    "django-needs-newer-python.yaml": (4, 11, "stack.django", "needs Python >= 3.12; debian-12 ships 3.11"),
    "django-range.yaml": (3, 11, "stack.django", "exact version"),
    "duplicate-key.yaml": (3, 1, "os", "duplicate key"),
    "empty.yaml": (1, 1, "", "empty"),
    "lifetime-zero.yaml": (2, 16, "lifetime_days", "greater than or equal to 1"),
    "missing-name.yaml": (1, 1, "name", "is required"),
    "not-a-mapping.yaml": (1, 1, "", "must be a mapping"),
    "provider-unknown-key.yaml": (4, 5, "providers.aws.instance_type", "did you mean 'instance_size'?"),
    "python-mismatch.yaml": (4, 11, "stack.python", "ships Python 3.11; use `system` or `3.11`, or os: ubuntu-24.04"),
    "python-unshipped.yaml": (4, 11, "stack.python", "no supported OS ships Python 3.9"),
    "qemu-memory.yaml": (4, 16, "providers.qemu.memory_mb", "greater than or equal to 512"),
    "rackspace-identity.yaml": (4, 15, "providers.rackspace.identity", "'flex' or 'classic'"),
    "redis-not-bool.yaml": (3, 10, "stack.redis", "valid boolean"),
    "retired-os.yaml": (2, 5, "os", "'debian-13'"),
    "regions-not-list.yaml": (4, 14, "providers.linode.regions", "valid list"),
    "tags-not-strings.yaml": (5, 13, "providers.aws.tags.team", "valid string"),
    "unknown-provider.yaml": (3, 3, "providers.awz", "did you mean 'aws'?"),
    "unknown-stack-key.yaml": (3, 3, "stack.databse", "did you mean 'database'?"),
    "unknown-top-key.yaml": (2, 1, "stak", "did you mean 'stack'?"),
    "yaml-syntax.yaml": (4, 9, "", "YAML syntax"),
}


def test_every_bad_spec_has_an_expectation():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_spec_is_located(name):
    line, col, field, words = EXPECTED[name]
    with pytest.raises(SpecError) as info:
        spec.load(BAD / name)
    err = info.value
    assert (err.line, err.column, err.field) == (line, col, field)
    assert words in str(err)
    assert "\n" not in str(err)
    prefix = f"{BAD / name}:{line}:{col}: " + (f"{field}: " if field else "")
    assert str(err).startswith(prefix)


@pytest.mark.parametrize("name", ["unknown-top-key.yaml", "yaml-syntax.yaml", "bad-database.yaml"])
def test_cli_prints_one_line_and_exits_2(name, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "render", "--no-packer", "--spec", str(BAD / name), "--out", str(out)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("djbake: error: ")
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "nothing may be written for an invalid spec"


def test_missing_file_is_one_line():
    with pytest.raises(SpecError, match="no such spec file"):
        spec.load(BAD / "does-not-exist.yaml")


def test_default_spec_is_valid():
    s = spec.load(Path(__file__).parent.parent / "images" / "django-web.yaml")
    assert s.name == "django-web"
    assert s.providers_settings("qemu").source_image == "bootstrap"
