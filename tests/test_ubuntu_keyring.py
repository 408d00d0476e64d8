"""Ubuntu's archive key: only the pinned fingerprint is ever trusted.

The refusals are tested on keys made here (a keyring .deb whose key is not
the pinned one must not be accepted, however it was fetched); the real
package is fetched from Ubuntu's pool when Ubuntu's archive answers.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import distro, tables, ubuntu_keyring
from builder.errors import UserError

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("dpkg-deb")), reason="needs gpg and dpkg-deb")


def _own_key(tmp: Path) -> Path:
    """A fresh key of our own, exported as a binary keyring."""
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Not Ubuntu <nobody@example.invalid>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True)
    out = tmp / "own.gpg"
    out.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    # Making a key starts a gpg-agent for this home; it would stay after the test.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
    return out


def _agents(marker: str) -> list[str]:
    """Running gpg-agent command lines whose home contains marker."""
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if line.startswith("gpg-agent") and marker in line]


def _deb(tmp: Path, keyring: Path) -> Path:
    """An ubuntu-keyring look-alike .deb carrying keyring as its archive keyring."""
    root = tmp / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: ubuntu-keyring\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.invalid>\n"
        "Description: look-alike\n")
    target = root / ubuntu_keyring.KEYRING_IN_DEB
    target.parent.mkdir(parents=True)
    shutil.copy(keyring, target)
    deb = tmp / "ubuntu-keyring_1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_a_keyring_without_the_pinned_key_is_refused(tmp_path):
    deb = _deb(tmp_path, _own_key(tmp_path))
    out = tmp_path / "out.gpg"
    with pytest.raises(UserError, match=ubuntu_keyring.FINGERPRINT):
        ubuntu_keyring.extract_pinned(deb, out)
    assert not out.exists()


def test_the_pinned_key_is_exported_without_leaving_a_gpg_agent(tmp_path, monkeypatch):
    """extract_pinned's import and export of the pinned key start no gpg-agent (one would outlive djbake)."""
    own = _own_key(tmp_path)
    fpr = ubuntu_keyring.fingerprints(own)[0][0]
    monkeypatch.setattr(ubuntu_keyring, "FINGERPRINT", fpr)   # our own key stands for Ubuntu's here
    before = _agents("djbake-keyring-")
    out = tmp_path / "out.gpg"
    ubuntu_keyring.extract_pinned(_deb(tmp_path, own), out)
    assert [f for f, _ in ubuntu_keyring.fingerprints(out)] == [fpr]
    assert _agents("djbake-keyring-") == before, "a gpg-agent was started for the keyring's home"


def test_check_refuses_any_other_key(tmp_path):
    with pytest.raises(UserError, match="not exactly the pinned archive key"):
        ubuntu_keyring.check(_own_key(tmp_path))


def test_a_tampered_cached_keyring_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_CACHE", str(tmp_path / "cache"))
    cached = ubuntu_keyring.path()
    cached.parent.mkdir(parents=True)
    shutil.copy(_own_key(tmp_path), cached)
    with pytest.raises(UserError, match="not exactly the pinned"):
        ubuntu_keyring.ensure("http://127.0.0.1:9/ubuntu")


def test_unreachable_archive_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError) as err:
        ubuntu_keyring.ensure("http://127.0.0.1:9/ubuntu")
    assert "Ubuntu's archive cannot be reached" in str(err.value) and "\n" not in str(err.value)
    assert list((tmp_path / "cache" / "keyrings").iterdir()) == []  # nothing half-written
    monkeypatch.setenv("DJBAKE_UBUNTU_MIRROR", "http://127.0.0.1:9/ubuntu")
    reason = distro.unreachable(tables.OPERATING_SYSTEMS["ubuntu-26.04"], timeout=5)
    assert reason.startswith("Ubuntu's archive cannot be reached") and "\n" not in reason


def test_sources_and_packages_per_family():
    noble = tables.OPERATING_SYSTEMS["ubuntu-24.04"]
    lines = distro.sources(noble, {"debian": "http://d/debian", "security": "http://d/debian-security"})
    assert lines[0].endswith("noble main universe") and "-security main universe" in lines[2]
    assert "security.ubuntu.com" in lines[2] or "DJBAKE" in str(distro.ubuntu_mirrors())
    bookworm = tables.OPERATING_SYSTEMS["debian-12"]
    assert distro.sources(bookworm, {"debian": "http://d/debian", "security": "http://d/sec"}) == [
        "deb http://d/debian bookworm main", "deb http://d/debian bookworm-updates main",
        "deb http://d/sec bookworm-security main"]
    base = ("linux-image-cloud-amd64", "systemd-resolved", "sudo")
    assert distro.packages(bookworm, base) == base
    assert distro.packages(noble, base) == ("linux-image-virtual", "systemd-resolved", "sudo")
    assert distro.packages(tables.OPERATING_SYSTEMS["ubuntu-22.04"], base) == ("linux-image-virtual", "sudo")
    assert distro.keyring_options(bookworm) == []
    assert distro.keyring_options(noble)[0].startswith("--keyring=")


def test_the_real_package_from_ubuntus_pool(tmp_path, monkeypatch):
    reason = distro.unreachable(tables.OPERATING_SYSTEMS["ubuntu-26.04"])
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("DJBAKE_CACHE", str(tmp_path / "cache"))
    path = ubuntu_keyring.ensure(distro.ubuntu_mirrors()["ubuntu"], log=lambda s: None)
    assert [f for f, _ in ubuntu_keyring.fingerprints(path)] == [ubuntu_keyring.FINGERPRINT]
    assert path.stat().st_mode & 0o044 == 0o044  # apt's _apt user reads it
    # Cached: the second call fetches nothing (an unreachable mirror is not asked).
    assert ubuntu_keyring.ensure("http://127.0.0.1:9/ubuntu") == path
