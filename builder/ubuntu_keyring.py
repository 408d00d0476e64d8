"""Ubuntu's archive signing key, for bootstrapping Ubuntu on a Debian host.

Debian ships no ubuntu-keyring package, so the key comes from Ubuntu's own
pool: the ubuntu-keyring .deb is fetched over http, its archive keyring is
opened, and only the key whose fingerprint is pinned below is exported into
a keyring of its own. Nothing is trusted on first use: the pin is the trust
anchor, the download only has to produce a key that matches it. A keyring
without the pinned key, or with it expired, is an error; the verified
keyring is cached (by fingerprint), so later bootstraps fetch nothing.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from builder.errors import UserError
from builder.paths import cache_root

# "Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>": signs
# the Release files of every supported Ubuntu release (22.04 to 26.04).
FINGERPRINT = "F6ECB3762474EDA9D21B7022871920D1991BC93C"
# The package in Ubuntu's pool (it stays there while any release ships it:
# this one is noble's, 24.04 LTS, supported until 2029).
DEB_PATH = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
KEYRING_IN_DEB = "usr/share/keyrings/ubuntu-archive-keyring.gpg"
TIMEOUT = 30


def cache_dir() -> Path:
    return cache_root() / "keyrings"


def path() -> Path:
    """Where the verified keyring lives (whether or not it is there yet)."""
    return cache_dir() / f"ubuntu-archive-{FINGERPRINT[-16:]}.gpg"


def fingerprints(keyring: Path) -> list[tuple[str, str]]:
    """(fingerprint, validity) of each primary key in keyring; validity 'e' means expired."""
    proc = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys", str(keyring)],
                          capture_output=True, text=True)
    found, validity = [], ""
    for line in proc.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            validity = fields[1]
        elif fields[0] == "fpr" and validity is not None:
            found.append((fields[9], validity))
            validity = None
    return found


def check(keyring: Path) -> None:
    """The keyring holds exactly the pinned key, unexpired; anything else raises UserError."""
    keys = fingerprints(keyring)
    if [fpr for fpr, _ in keys] != [FINGERPRINT]:
        raise UserError(f"Ubuntu keyring {keyring} holds {[f for f, _ in keys] or 'no key'}, "
                        f"not exactly the pinned archive key {FINGERPRINT}")
    if keys[0][1] in ("e", "r"):
        raise UserError(f"Ubuntu's archive key {FINGERPRINT} is expired or revoked in {keyring}")


def extract_pinned(deb: Path, out: Path) -> None:
    """From an ubuntu-keyring .deb, export only the pinned key to out (binary keyring)."""
    with tempfile.TemporaryDirectory(prefix="djbake-keyring-") as tmp:
        root = Path(tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "deb")], check=True, capture_output=True)
        archive = root / "deb" / KEYRING_IN_DEB
        if not archive.is_file():
            raise UserError(f"{deb.name} has no {KEYRING_IN_DEB}: not an ubuntu-keyring package")
        if FINGERPRINT not in [fpr for fpr, _ in fingerprints(archive)]:
            raise UserError(f"{deb.name}'s archive keyring does not hold the pinned key {FINGERPRINT}")
        home = root / "gnupg"
        home.mkdir(mode=0o700)
        # Public keys only: no gpg-agent is needed, and one started here would outlive the call.
        gpg = ["gpg", "--batch", "--quiet", "--no-autostart", "--homedir", str(home)]
        subprocess.run([*gpg, "--import", str(archive)], check=True, capture_output=True)
        exported = subprocess.run([*gpg, "--export", FINGERPRINT], check=True, capture_output=True).stdout
        if not exported:
            raise UserError(f"could not export the pinned key {FINGERPRINT} from {deb.name}")
        out.write_bytes(exported)
    check(out)


def ensure(mirror: str, log=print) -> Path:
    """The verified keyring's path: from the cache, or fetched from mirror's pool and checked."""
    target = path()
    if target.is_file():
        check(target)
        return target
    url = f"{mirror.rstrip('/')}/{DEB_PATH}"
    log(f"fetching Ubuntu's archive keyring from {url} (pinned key {FINGERPRINT})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".ubuntu-keyring-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    deb = tmp.with_suffix(".deb")
    try:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r:   # noqa: S310 - http is fine: the key is pinned
                deb.write_bytes(r.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise UserError(f"Ubuntu's archive cannot be reached: {url}: {getattr(e, 'reason', e)}",
                            hint="set DJBAKE_UBUNTU_MIRROR to a reachable Ubuntu mirror") from e
        extract_pinned(deb, tmp)
        # apt verifies signatures as its unprivileged _apt user: it must read the keyring.
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, deb):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return target
