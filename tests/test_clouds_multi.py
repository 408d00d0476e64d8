"""Many providers at once (builder/multi.py) with a stand-in pipeline.

`pipeline.run` is replaced by a stand-in (not a real build): one provider
fails part-way, one succeeds cheaply, so the test shows that builds run in
parallel, a failure leaves the others to finish and clean up, and the
summary names every provider with its result, artifacts and time.
"""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from builder import cli, spec
from builder.bake import multi, pipeline, progress
from builder.errors import BuildFailed, UserError
from builder.providers.base import Verification

SPEC = spec.loads("name: django-web\n")


class StandInPipeline:
    """Stands in for builder/pipeline.run: 'aws' fails after a while, others succeed; records cleanups."""

    def __init__(self, fail=("aws",), delay=0.3):
        self.fail, self.delay = set(fail), delay
        self.running, self.peak, self.cleaned = 0, 0, []
        self.lock = threading.Lock()

    def __call__(self, spec, name, build, base_dir=None, verify=True):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            with build.step("packer build"):
                time.sleep(self.delay)
                if name in self.fail:
                    raise BuildFailed(f"packer build failed for {name}: Error launching source instance")
            return SimpleNamespace(verified=True, artifacts=[("us-east", f"{name}-image-1")],
                                   verification=Verification(True, summary="passed"))
        finally:
            with self.lock:
                self.running -= 1
                self.cleaned.append(name)  # the real pipeline's provider.cleanup runs in its finally
            build.finish(ok=name not in self.fail)


def test_parallel_failure_leaves_the_others_to_finish():
    fake = StandInPipeline(fail=("aws",))
    view = progress.Progress()
    started = time.monotonic()
    results = multi.run(SPEC, ["aws", "linode", "hetzner"], view, run_one=fake)
    elapsed = time.monotonic() - started
    assert fake.peak == 3 and elapsed < 3 * fake.delay, "builds did not overlap"
    assert sorted(fake.cleaned) == ["aws", "hetzner", "linode"]
    by = {r.provider: r for r in results}
    assert not by["aws"].ok and "Error launching source instance" in by["aws"].error
    assert by["linode"].ok and by["linode"].verified and by["linode"].artifacts == [("us-east", "linode-image-1")]
    table = multi.summary(results)
    assert table.splitlines()[0].split() == ["provider", "result", "time", "artifacts"]
    assert "aws           FAILED" in table and "linode        verified" in table and "us-east:hetzner-image-1" in table


def test_cli_runs_several_and_exits_1_with_a_summary(monkeypatch, capsys):
    fake = StandInPipeline(fail=("digitalocean",), delay=0.05)
    monkeypatch.setattr(pipeline, "run", fake)
    code = cli.main(["image", "--provider", "linode,digitalocean", "--plain"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "linode" in out and "verified" in out and "FAILED" in out
    assert "1 of 2 builds failed or were not verified: digitalocean" in err


def test_all_means_providers_with_credentials(monkeypatch):
    for name in ("LINODE_TOKEN", "HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID", "GCP_PROJECT_ID", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="no cloud credentials"):
        multi.parse("all", SPEC)
    monkeypatch.setenv("LINODE_TOKEN", "x")
    monkeypatch.setenv("HCLOUD_TOKEN", "y")
    assert multi.parse("all", SPEC) == ["linode", "hetzner"]
    assert multi.parse("aws, linode", SPEC) == ["aws", "linode"]
    with pytest.raises(UserError, match="did you mean 'linode'"):
        multi.parse("aws,linod", SPEC)
    with pytest.raises(UserError, match="twice"):
        multi.parse("aws,aws", SPEC)
