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
from builder.paths import ROOT

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
    for script in ("app.sh", "gunicorn.sh", "ssh.sh", "upgrades.sh", "firstboot.sh", "backup.sh", "seal.sh"):
        assert rendered_key(tmp_path, edit=append(script)) == k, script
    # Files only the image layer installs (the first-boot tool, the welcome project, sshd's config).
    for name in ("files/djbake/djbake-firstboot", "files/welcome/welcome/settings.py", "files/ssh/10-djbake.conf",
                 "files/systemd/gunicorn.service"):
        assert rendered_key(tmp_path, edit=append(name)) == k, name
    with_app = SPEC_TEXT + "app:\n  source: https://example.com/app.tar.gz\n  module: mysite.wsgi\n"
    assert rendered_key(tmp_path, with_app) == k


def test_the_split_an_app_change_reruns_only_the_app_scripts(tmp_path):
    """The stack layer runs everything up to the app; the image layer the app and what must follow it."""
    import json

    from builder.bake import stack, template

    s = spec.load(HERE / "specs" / "golden.yaml")
    (r,) = render.render(s, ["qemu"], None, base=tmp_path)

    def scripts_of(path: Path) -> list[str]:
        build = json.loads(path.read_text())["build"][0]["provisioner"]
        return [Path(s).name for p in build for s in p.get("shell", {}).get("scripts", [])]

    stack_run = scripts_of(r.directory / template.LAYER_DIR / template.template_name(s))
    image_run = scripts_of(r.directory / template.template_name(s))
    assert stack_run == ["inputs.sh", "base.sh", "python.sh", "postgresql.sh", "nginx.sh", "certbot.sh",
                         "firewall.sh", "harden.sh", "fail2ban.sh"]
    assert image_run[:-1] == ["inputs.sh", "app.sh", "gunicorn.sh", "ssh.sh", "upgrades.sh", "firstboot.sh",
                              "backup.sh"]
    assert image_run[-1] == "seal.sh"
    # Every provider runs the one order: the layers' concatenation is the unlayered run.
    whole = [x.file for x in stack.scripts_for(s)]
    assert whole == stack_run[1:] + image_run[1:-1]


def test_key_follows_everything_the_stack_layer_reads(tmp_path):
    k = rendered_key(tmp_path)
    assert rendered_key(tmp_path, edit=append("base.sh")) != k
    assert rendered_key(tmp_path, edit=append("lib.sh")) != k
    # A file base.sh installs with `put`.
    assert rendered_key(tmp_path, edit=append("files/dpkg/01-djbake-nodoc")) != k


LATE_STACK_SCRIPTS = ("nginx.sh", "certbot.sh", "firewall.sh", "harden.sh", "fail2ban.sh")


@pytest.mark.parametrize("script", LATE_STACK_SCRIPTS)
def test_key_follows_each_moved_script_and_every_file_it_reads(tmp_path, script):
    """The late scripts moved into the stack layer: a change to any of them, or to any file of
    scripts/files/ it installs or reads (found by layers.files_read), is a new layer."""
    k = rendered_key(tmp_path)
    assert rendered_key(tmp_path, edit=append(script)) != k
    read = [rel for rel, by in layers.files_read([ROOT / "scripts" / script]).items() if by == script]
    assert read or script == "certbot.sh", f"{script} reads no file? {read}"
    assert None not in read
    for rel in read:
        assert rendered_key(tmp_path, edit=append(f"files/{rel}")) != k, rel


def test_a_literal_files_path_is_read_and_a_directory_keys_its_files(tmp_path):
    k = rendered_key(tmp_path)
    # nginx.sh fills /etc/nginx/djbake/app-files.conf from "$FILES/nginx/app-files.conf.in".
    assert layers.files_read([ROOT / "scripts" / "nginx.sh"])["nginx/app-files.conf.in"] == "nginx.sh"
    assert rendered_key(tmp_path, edit=append("files/nginx/app-files.conf.in")) != k

    def copies_a_dir(scripts: Path) -> None:
        with open(scripts / "harden.sh", "a") as f:
            f.write('cp -a "$FILES/login/." /tmp/x\n')
    with_dir = rendered_key(tmp_path, edit=copies_a_dir)
    assert with_dir != k

    def and_changes_a_file_in_it(scripts: Path) -> None:
        copies_a_dir(scripts)
        append("files/login/issue")(scripts)
    assert rendered_key(tmp_path, edit=and_changes_a_file_in_it) != with_dir


def test_key_names_a_put_of_a_missing_file(tmp_path):
    def edit(scripts: Path) -> None:
        with open(scripts / "postgresql.sh", "a") as f:
            f.write("put redis/nowhere.conf /etc/redis/x.conf 0644\n")
    with pytest.raises(BuildFailed, match=r"postgresql.sh: `put redis/nowhere.conf` names no file"):
        rendered_key(tmp_path, edit=edit)


@pytest.mark.parametrize("line", ['name=welcome; cp "$FILES/$name/x" /tmp/x',   # a path made at run time
                                  'cp "$FILES/welcome/x" /tmp/x'])              # a literal path not there
def test_a_script_reading_files_otherwise_keys_all_of_them(tmp_path, line):
    def reads(scripts: Path) -> None:
        with open(scripts / "python.sh", "a") as f:
            f.write(line + "\n")
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


# -- the stack's packages, preinstalled in a base made here (stack.preinstall) --

def _apt_install_words(script: Path) -> set[str]:
    """The literal package names of a script's apt_install lines (continuations joined; variables left out)."""
    text = script.read_text().replace("\\\n", " ")
    words: set[str] = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("apt_install "):
            words.update(w for w in line.split()[1:] if "$" not in w)
    return words


def _spec(tmp_path: Path, **stack) -> spec.Spec:
    import yaml

    data = yaml.safe_load(SPEC_TEXT)
    data["stack"].update(stack)
    path = tmp_path / f"spec-{len(list(tmp_path.glob('spec-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return spec.load(path)


def test_each_stack_scripts_packages_are_its_apt_install_lines(tmp_path):
    """The table (stack.Script.packages) and the scripts must not drift apart: a package a script
    installs and the table leaves out costs minutes of the build VM under TCG again."""
    from builder import tables
    from builder.bake import stack

    everything = _spec(tmp_path, redis=True, build_tools=True, database="postgresql")
    for script in stack.scripts_for(everything, stack.STACK_LAYER):
        listed = set(script.packages(everything))
        if script.file == "python.sh":   # the toolchain reaches it as ${DJBAKE_TOOLCHAIN}
            assert set(tables.BUILD_TOOLS) <= listed
            listed -= set(tables.BUILD_TOOLS)
        assert listed == _apt_install_words(ROOT / "scripts" / script.file), script.file


def test_the_image_layer_installs_nothing_the_stack_did_not_preinstall(tmp_path):
    """An app-only rebuild's image layer runs no apt: what its scripts install is already there."""
    from builder.bake import stack

    s = _spec(tmp_path)
    preinstalled = set(stack.preinstall(s))
    for script in stack.scripts_for(s, stack.IMAGE_LAYER):
        assert _apt_install_words(ROOT / "scripts" / script.file) <= preinstalled, script.file


def test_preinstall_follows_the_spec(tmp_path):
    from builder import tables
    from builder.bake import stack

    default = stack.preinstall(_spec(tmp_path))
    assert "postgresql" in default and "nginx" in default and "redis-server" not in default
    assert len(default) == len(set(default))
    assert not set(tables.BUILD_TOOLS) & set(default)
    external = stack.preinstall(_spec(tmp_path, database="none", nginx=False, certbot=False))
    assert "postgresql-client" in external and "postgresql" not in external and "s3cmd" not in external
    assert "nginx" not in external and "certbot" not in external
    assert "redis-server" in stack.preinstall(_spec(tmp_path, redis=True))
    # the spec's own packages are base.sh's to check against the archive, not mmdebstrap's
    assert "htop" not in default


def test_the_bootstrapped_base_is_keyed_by_the_stack_packages(tmp_path):
    from builder.qemu import base_image

    plain = base_image.input_hash("debian-13")
    with_stack = base_image.input_hash("debian-13", extra=("nginx", "postgresql"))
    assert plain != with_stack
    # order and repeats do not make another base
    assert with_stack == base_image.input_hash("debian-13", extra=("postgresql", "nginx", "nginx"))
    assert "nginx" in base_image.inputs("debian-13", extra=("nginx",))["packages"]


def test_the_build_resolves_the_stacked_base_and_the_bench_floor_the_bare_one(tmp_path, monkeypatch):
    """`bootstrap` gives the build a base holding stack.preinstall; bare=True (the bench's floor,
    builder/bench/targets.py) one of PACKAGES only. ensure_bootstrap is recorded, not run: its
    bootstrap is the QEMU end-to-end test's."""
    from builder.bake import stack
    from builder.qemu import base_image

    asked = []
    monkeypatch.setattr(base_image, "ensure_bootstrap", lambda os_name, arch, rebuild, log, extra: asked.append(extra))
    s = _spec(tmp_path)
    base_image.resolve(s, "bootstrap")
    base_image.resolve(s, "bootstrap", bare=True)
    assert asked == [stack.preinstall(s), ()]
    assert asked[0]


def test_base_prune_keeps_the_newest_of_an_os_and_the_one_just_made(tmp_path):
    from builder.qemu import base_image

    made = []
    for i in range(5):
        stem = f"debian-13-{i:016x}"
        for suffix in (".qcow2", ".sha256", ".json", ".vmlinuz", ".initrd"):
            (tmp_path / (stem + suffix)).write_text("x")
            os.utime(tmp_path / (stem + suffix), (1000 + i, 1000 + i))
        made.append(tmp_path / (stem + ".qcow2"))
    (tmp_path / "debian-12-00000000000000aa.qcow2").write_text("other OS")
    (tmp_path / ".bootstrap.lock").write_text("")
    base_image._prune_old(made[0], newest=3)   # the oldest was just made (a cached one reused elsewhere)
    left = sorted(p.name for p in tmp_path.glob("debian-13-*.qcow2"))
    assert left == [m.name for m in (made[0], made[3], made[4])]
    assert not list(tmp_path.glob(made[1].stem + ".*")) and not list(tmp_path.glob(made[2].stem + ".*"))
    assert (tmp_path / "debian-12-00000000000000aa.qcow2").exists() and (tmp_path / ".bootstrap.lock").exists()
