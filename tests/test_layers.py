"""The stack-layer cache (builder/layers.py): what invalidates it, what does not, and how it is kept.

The key is computed from really rendered build directories. The Packer run
that makes a layer is swapped for a function writing a small file where
Packer's qemu builder writes its disk: the real run is exercised by the
QEMU end-to-end test and `make bench`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder import spec
from builder.bake import layers, render
from builder.errors import BuildFailed

HERE = Path(__file__).parent
SPEC_TEXT = (HERE / "specs" / "golden.yaml").read_text()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def rendered_key(tmp_path: Path, text: str = SPEC_TEXT, base: str = "sha256:aa", wheels: str = "w1",
                 edit=None) -> str:
    path = tmp_path / f"spec-{abs(hash((text, str(edit)))) % 10**8}.yaml"
    path.write_text(text)
    s = spec.load(path)
    (r,) = render.render(s, ["qemu"], None, base=tmp_path / path.stem)
    if edit:
        edit(r.directory / "payload" / "scripts")
    return layers.key(r.directory, s, base, wheels)


def append(name):
    def edit(scripts: Path) -> None:
        with open(scripts / name, "a") as f:
            f.write("\n# changed\n")
    return edit


def test_key_ignores_the_app_layer_and_late_scripts(tmp_path):
    k = rendered_key(tmp_path)
    assert rendered_key(tmp_path) == k
    assert rendered_key(tmp_path, edit=append("nginx.sh")) == k
    assert rendered_key(tmp_path, edit=append("seal.sh")) == k
    # Files only the image layer installs (the first-boot unit, nginx's config).
    assert rendered_key(tmp_path, edit=append("files/djbake/djbake-firstboot")) == k
    assert rendered_key(tmp_path, edit=append("files/nginx/django.conf")) == k
    with_app = SPEC_TEXT + "app:\n  source: https://example.com/app.tar.gz\n  module: mysite.wsgi\n"
    assert rendered_key(tmp_path, with_app) == k


def test_key_follows_everything_the_stack_layer_reads(tmp_path):
    k = rendered_key(tmp_path)
    assert rendered_key(tmp_path, edit=append("base.sh")) != k
    assert rendered_key(tmp_path, edit=append("lib.sh")) != k
    # A file base.sh installs with `put`.
    assert rendered_key(tmp_path, edit=append("files/dpkg/01-djbake-nodoc")) != k


def test_key_names_a_put_of_a_missing_file(tmp_path):
    def edit(scripts: Path) -> None:
        with open(scripts / "postgresql.sh", "a") as f:
            f.write("put redis/nowhere.conf /etc/redis/x.conf 0644\n")
    with pytest.raises(BuildFailed, match=r"postgresql.sh: `put redis/nowhere.conf` names no file"):
        rendered_key(tmp_path, edit=edit)


def test_a_script_reading_files_otherwise_keys_all_of_them(tmp_path):
    def reads(scripts: Path) -> None:
        with open(scripts / "python.sh", "a") as f:
            f.write('cp "$FILES/welcome/x" /tmp/x\n')
    k = rendered_key(tmp_path, edit=reads)
    assert rendered_key(tmp_path, edit=lambda s: (reads(s), append("files/djbake/djbake-firstboot")(s))) != k
    assert rendered_key(tmp_path, base="sha256:bb") != k
    assert rendered_key(tmp_path, wheels="w2") != k
    assert rendered_key(tmp_path, SPEC_TEXT.replace("packages: [htop, curl]", "packages: [htop]")) != k


def fake_packer(calls: list):
    """Writes a disk where Packer's qemu builder does (output/<name>.qcow2)."""
    def run(layer_dir: Path) -> None:
        calls.append(layer_dir)
        (layer_dir / "output").mkdir(parents=True)
        (layer_dir / "output" / "django-web.qcow2").write_bytes(b"disk %d" % len(calls))
    return run


def test_ensure_builds_once_then_reuses(tmp_path, cache):
    calls = []
    first = layers.ensure("k1", tmp_path / "layer", fake_packer(calls), facts={"image": "django-web"})
    assert first.built and first.path == cache / "layers" / "stack-k1.qcow2" and first.path.read_bytes() == b"disk 1"
    assert not (tmp_path / "layer" / "output").exists()
    again = layers.ensure("k1", tmp_path / "layer", fake_packer(calls))
    assert (again.built, again.path, len(calls)) == (False, first.path, 1)


def test_a_failed_layer_build_caches_nothing(tmp_path, cache):
    def failing(layer_dir: Path) -> None:
        (layer_dir / "output").mkdir(parents=True)
        (layer_dir / "output" / "half.qcow2").write_bytes(b"half")
        raise BuildFailed("scripts/base.sh line 3 failed")

    from builder import safe_paths

    safe_paths.make(tmp_path)  # the rendered directory holding the layer (djbake's, as template.write makes it)
    with pytest.raises(BuildFailed):
        layers.ensure("k2", tmp_path / "layer", failing)
    assert layers.cached("k2") is None
    calls = []
    assert layers.ensure("k2", tmp_path / "layer", fake_packer(calls)).built   # leftovers cleared, then built


def test_prune_keeps_the_newest(tmp_path, cache):
    for i in range(5):
        layer = layers.ensure(f"k{i}", tmp_path / f"l{i}", fake_packer([]))
        os.utime(layer.path, (1000 + i, 1000 + i))
    layers.prune(keep=2)
    assert sorted(p.name for p in (cache / "layers").glob("*.qcow2")) == ["stack-k3.qcow2", "stack-k4.qcow2"]
    assert sorted(p.name for p in (cache / "layers").glob("*.json")) == ["stack-k3.json", "stack-k4.json"]


def test_two_builds_of_one_layer_at_once_make_it_once(tmp_path, cache):
    """The second build waits for the first (a lock per key) and takes its layer instead of building it again."""
    import threading

    started, release = threading.Event(), threading.Event()
    first_calls, second_calls, notes, results = [], [], [], {}

    def slow(layer_dir: Path) -> None:
        started.set()
        assert release.wait(10)
        fake_packer(first_calls)(layer_dir)

    first = threading.Thread(target=lambda: results.update(a=layers.ensure("k9", tmp_path / "a", slow)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.update(
        b=layers.ensure("k9", tmp_path / "b", fake_packer(second_calls), note=notes.append)))
    second.start()
    deadline = time.monotonic() + 10
    while not notes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert notes == ["stack layer k9: another build is making it; waiting"], notes
    release.set()
    first.join(10), second.join(10)
    assert results["a"].built and not results["b"].built and results["b"].path == results["a"].path
    assert (len(first_calls), len(second_calls)) == (1, 0)
