"""Validates side by side (builder/bake/validate_all.py): the same verdicts as one after the other, in order.

With the real Packer (Debian's 1.6.6): a planted broken template fails
with its own message while the others pass, and `djbake validate` prints
each provider's line and failure in the order asked for.
"""
from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

from builder.bake import packer, render, validate_all
from builder.errors import UserError
from tests.test_cli_errors import djbake
from tests.test_validate import SPEC

pytestmark = pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make deps)")
NAMES = ["qemu", "digitalocean", "docker", "linode", "aws"]


@pytest.fixture(scope="module")
def pk():
    return packer.find()


def test_side_by_side_gives_the_verdicts_of_one_after_the_other(pk, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DIGITALOCEAN_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    rendered = render.render(SPEC, NAMES, pk, base=tmp_path)
    broken = rendered[1].directory / "django-web.pkr.json"  # digitalocean without its region
    tpl = json.loads(broken.read_text())
    del tpl["source"]["digitalocean"]["digitalocean"]["region"]
    broken.write_text(json.dumps(tpl))

    one_by_one = [render.validate(SPEC, r, n, pk) for n, r in zip(NAMES, rendered)]
    side_by_side = list(validate_all.validate_all(SPEC, NAMES, rendered, pk))

    assert [t.validation.provider for t in side_by_side] == NAMES
    for alone, timed in zip(one_by_one, side_by_side):
        v = timed.validation
        assert (v.provider, v.ok, v.how) == (alone.provider, alone.ok, alone.how)
        assert timed.seconds >= 0
    verdicts = {t.validation.provider: t.validation for t in side_by_side}
    assert not verdicts["digitalocean"].ok and "region" in verdicts["digitalocean"].output
    assert verdicts["digitalocean"].output == one_by_one[1].output
    assert all(verdicts[n].ok for n in NAMES if n != "digitalocean"), {n: verdicts[n].output for n in NAMES}


def counting_validate(monkeypatch) -> list[int]:
    """render.validate replaced by a sleeper ("a" the slowest); returns [most validates running at once]."""
    running, most = [0], [0]
    lock = threading.Lock()

    def fake(spec_, rendered, name, packer_):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3 if name == "a" else 0.05)
        with lock:
            running[0] -= 1
        return render.Validation(name, True, "fake", name)

    monkeypatch.setattr(render, "validate", fake)
    return most


def test_they_really_overlap_and_come_back_in_order(pk, monkeypatch):
    """The first provider is the slowest; it still comes first, and the others ran meanwhile."""
    most = counting_validate(monkeypatch)
    out = list(validate_all.validate_all(SPEC, ["a", "b", "c"], [None, None, None], pk, workers=3))
    assert [t.validation.provider for t in out] == ["a", "b", "c"]
    assert most[0] == 3
    assert out[0].seconds >= 0.3


def test_an_error_is_raised_in_its_turn_after_the_ones_before(pk, monkeypatch):
    def fake(spec_, rendered, name, packer_):
        if name == "b":
            raise UserError("packer init failed for b")
        time.sleep(0.1 if name == "a" else 0)
        return render.Validation(name, True, "fake", name)

    monkeypatch.setattr(render, "validate", fake)
    got = []
    with pytest.raises(UserError, match="packer init failed for b"):
        for t in validate_all.validate_all(SPEC, ["a", "b", "c"], [None, None, None], pk):
            got.append(t.validation.provider)
    assert got == ["a"]


def test_a_packer_with_plugins_validates_one_at_a_time(monkeypatch):
    """Packer 1.7+ installs plugins inside each validate (packer init): never two installs at once."""
    most = counting_validate(monkeypatch)
    newer = packer.Packer("/nonexistent/packer", (1, 11, 0))
    out = list(validate_all.validate_all(SPEC, ["a", "b", "c"], [None] * 3, newer, workers=3))
    assert [t.validation.provider for t in out] == ["a", "b", "c"] and most[0] == 1


def test_djbake_validate_prints_each_provider_and_its_failure_in_order(tmp_path):
    """A Packer that fails validate in the digitalocean directory only: that line, its message, exit 1."""
    wrapper = tmp_path / "packer"
    wrapper.write_text('#!/bin/sh\ncase "$PWD" in */digitalocean) if [ "$1" = validate ]; then\n'
                       '  echo "Error: planted failure in digitalocean" >&2; exit 1; fi;; esac\n'
                       f'exec {shutil.which("packer")} "$@"\n')
    wrapper.chmod(0o755)
    proc = djbake("validate", "-p", "qemu,digitalocean,docker,hetzner", "--out", str(tmp_path / "out"),
                  tmp=tmp_path, DJBAKE_PACKER=str(wrapper))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == \
        ["qemu", "digitalocean", "docker", "hetzner"]
    assert [line.split()[1] for line in lines if not line.startswith(" ")] == ["ok", "FAILED", "ok", "ok"]
    failed_at = next(i for i, line in enumerate(lines) if line.startswith("digitalocean"))
    assert lines[failed_at + 1] == "    Error: planted failure in digitalocean"
    assert "1 template(s) failed validation" in proc.stderr

