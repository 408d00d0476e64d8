"""dpkg's path-exclude rules for docs, man pages, info and non-English translations, in the bases too.

One file holds the rules (scripts/files/dpkg/01-djbake-nodoc): base.sh
installs it in every image before it installs anything, and the two bases
built here with mmdebstrap (qemu's bootstrapped disk, the docker base) get
its lines as `--dpkgopt`, so their packages never unpack what the image
would delete later (a deleted file still fills the docker base's layer and
the base disk). mmdebstrap unpacks the Essential packages with dpkg-deb
first, which knows no path-exclude: prune_hook() deletes what those left,
by the same rules. The rules, not the file's path, go into the mmdebstrap
command: the bases' cache keys follow them wherever the repository is.
"""
from __future__ import annotations

import shlex

from builder import paths


def rules() -> list[tuple[str, str]]:
    """(path-exclude|path-include, glob), in the file's order: for dpkg the last match wins."""
    found = []
    for line in paths.NODOC_DPKG.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            found.append((words[0], words[1]))
    return found


def mmdebstrap_options() -> list[str]:
    """One --dpkgopt per rule: mmdebstrap writes them to the chroot's dpkg.cfg.d before installing a package."""
    return [f"--dpkgopt={kind} {glob}" for kind, glob in rules()] + ["--customize-hook=" + prune_hook()]


def prune_hook() -> str:
    """Shell for mmdebstrap's hooks: delete under the rootfs "$1" what the rules exclude, keep what they include.

    find's -path matches like dpkg's globs (`*` crosses `/`). An include
    counts for the excludes before it, as dpkg's last-match-wins has it.
    """
    steps = []
    listed = rules()
    for i, (kind, glob) in enumerate(listed):
        if kind != "path-exclude":
            continue
        top = "." + glob.split("*", 1)[0].rstrip("/")
        keep = " ".join(f"! -path {shlex.quote('.' + g)}" for k, g in listed[i + 1:]
                        if k == "path-include" and g.startswith(top[1:] + "/"))
        steps.append(f"{{ [ ! -d {shlex.quote(top)} ] || {{ find {shlex.quote(top)} -mindepth 1 ! -type d "
                     f"-path {shlex.quote('.' + glob)} {keep} -delete && "
                     f"find {shlex.quote(top)} -depth -mindepth 1 -type d -empty -delete; }}; }}")
    return 'cd "$1" && ' + " && ".join(steps)
