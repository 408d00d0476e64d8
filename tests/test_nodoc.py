"""dpkg path-excludes in the bases (builder/nodoc.py): the mmdebstrap options, the prune hook, the cache keys.

The hook runs for real on a small tree; the bases' cache keys must change
when a rule does, so a cached base made under other rules is rebuilt. That
the rules are in force in a built image is the image suite's check
(tests/image/test_packages.py: test_no_documentation_installed, test_licences_stay).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from builder import nodoc, paths
from builder.docker import base_image as docker_base
from builder.qemu import base_image as qemu_base


def test_rules_come_from_the_file_base_sh_installs():
    rules = nodoc.rules()
    assert ("path-exclude", "/usr/share/doc/*") in rules
    assert ("path-include", "/usr/share/doc/*/copyright") in rules
    assert ("path-exclude", "/usr/share/locale/*") in rules
    # an include must come after its exclude: dpkg's last match wins
    assert rules.index(("path-include", "/usr/share/doc/*/copyright")) > rules.index(("path-exclude", "/usr/share/doc/*"))
    assert "put dpkg/01-djbake-nodoc" in (paths.ROOT / "scripts" / "base.sh").read_text()


def test_both_bases_get_the_rules_before_any_package(tmp_path):
    opts = nodoc.mmdebstrap_options()
    assert "--dpkgopt=path-exclude /usr/share/man/*" in opts
    docker_cmd = docker_base.mmdebstrap_command("debian-13", tmp_path / "rootfs.tar")
    assert all(o in docker_cmd for o in opts)
    # the rules' text, never the repository's path: the key is the same in every checkout
    assert not any(str(paths.ROOT) in o for o in opts)
    assert qemu_base.inputs("debian-13")["dpkg_excludes"] == opts


def _tree(root: Path, files: list[str]) -> None:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")


def test_prune_hook_deletes_what_dpkg_deb_unpacked_and_keeps_licences_and_english(tmp_path):
    keep = ["usr/share/doc/a/copyright", "usr/share/locale/locale.alias", "usr/share/locale/en_GB/LC_MESSAGES/a.mo",
            "usr/share/locale/en/LC_MESSAGES/a.mo", "usr/share/i18n/locales/de_DE", "usr/bin/a"]
    drop = ["usr/share/doc/a/README", "usr/share/doc/a/examples/x.conf", "usr/share/man/man1/a.1.gz",
            "usr/share/info/a.info.gz", "usr/share/locale/de/LC_MESSAGES/a.mo", "usr/share/locale/en@quot/a.mo"]
    _tree(tmp_path, keep + drop)
    (tmp_path / "usr/share/doc/b").symlink_to("a")
    subprocess.run(["sh", "-c", nodoc.prune_hook(), "hook", str(tmp_path)], check=True)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir() or p.is_symlink())
    assert left == sorted(keep)
    assert not (tmp_path / "usr/share/locale/de").exists() and not (tmp_path / "usr/share/doc/a/examples").exists()


def test_prune_hook_deletes_nothing_elsewhere_when_the_rootfs_is_missing(tmp_path):
    """`cd "$1"` failing stops the hook (mmdebstrap fails): never a find relative to another directory."""
    _tree(tmp_path, ["usr/share/doc/a/README"])
    proc = subprocess.run(["sh", "-c", nodoc.prune_hook(), "hook", str(tmp_path / "missing")], cwd=tmp_path,
                          capture_output=True)
    assert proc.returncode != 0
    assert (tmp_path / "usr/share/doc/a/README").exists()


def test_a_changed_rule_changes_both_bases_keys(tmp_path, monkeypatch):
    qemu_before, docker_before = qemu_base.input_hash("debian-13"), docker_base.input_hash("debian-13")
    changed = tmp_path / "01-djbake-nodoc"
    changed.write_text(paths.NODOC_DPKG.read_text() + "path-exclude /usr/share/help/*\n")
    monkeypatch.setattr(paths, "NODOC_DPKG", changed)
    assert qemu_base.input_hash("debian-13") != qemu_before
    assert docker_base.input_hash("debian-13") != docker_before
