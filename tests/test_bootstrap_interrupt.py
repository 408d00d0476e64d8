"""An interrupted bootstrap of the QEMU base leaves no mount, no process and no work directory.

The first `make image` spends minutes in mmdebstrap, which mounts /proc,
/sys and /dev into its root file system, and the later chroot step
bind-mounts the host's /dev: a Ctrl-C there must not leave those mounted,
nor leave a work directory that a later `rm -rf` would delete through a
mount. Here mmdebstrap is a stand-in script (the real one takes minutes and
the network), which does what matters for this: mounts file systems into
the root it is given, starts a child of its own (as mmdebstrap runs apt and
dpkg), and never cleans up. Everything else is real: base_image's own
code, mounts (root only), signals, process groups.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.paths import ROOT
from builder.qemu import base_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")

# The stand-in's child sleeps this long, and is found by it (per test: no failure cascades).
MARKS = {"SIGINT": "31337", "SIGTERM": "31338"}

FAKE_MMDEBSTRAP = """#!/bin/sh
# Stand-in for mmdebstrap: mount into the root, start a child, wait forever.
for arg; do case "$arg" in */rootfs) root=$arg ;; esac; done
mkdir -p "$root/proc" "$root/dev/shm"
mount -t tmpfs djbake-test-proc "$root/proc"
mount -t tmpfs djbake-test-shm "$root/dev/shm"
sleep {mark} &
touch "$FAKE_READY"
wait
"""


def _env(tmp: Path, script: str) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "mmdebstrap"
    fake.write_text(script)
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DJBAKE_CACHE": str(tmp / "cache"),
            "FAKE_READY": str(tmp / "ready"), "DJBAKE_APT_CACHE": "0"}


def _needs_tools():
    missing = [t for t in ("qemu-img", "losetup", "partx", "mkfs.ext4") if not shutil.which(t)]
    if missing:
        pytest.skip(f"not installed: {missing} (make deps)")


def _bootstrap(env: dict[str, str]) -> subprocess.Popen:
    # With the CLI's SIGTERM handler (builder/cli.py), as `djbake image` has it.
    code = ("import signal; from builder import cli; from builder.qemu import base_image; signal.signal(signal.SIGTERM, cli._terminated); "
            "base_image.ensure_bootstrap('debian-12', log=lambda s: print(s, flush=True))")
    # SIGINT as a user's terminal delivers it, even where this test was started with it ignored
    # (a shell without job control does that to background commands, and Python keeps it).
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _mounts(under: Path) -> list[str]:
    return [str(p) for p in base_image._mounts_under(under)]


def _children(mark: str) -> list[str]:
    return subprocess.run(["pgrep", "-af", f"sleep {mark}"], capture_output=True, text=True).stdout.splitlines()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_bootstrap_leaves_nothing(tmp_path, sig):
    _needs_tools()
    mark = MARKS[sig.name]
    env = _env(tmp_path, FAKE_MMDEBSTRAP.format(mark=mark))
    cache = tmp_path / "cache"
    proc = _bootstrap(env)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the stand-in mmdebstrap never started"
            time.sleep(0.2)
        assert len(_mounts(cache)) == 2, "the stand-in did not mount"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            subprocess.run(["pkill", "-f", f"sleep {mark}"], check=False)
            for point in base_image._mounts_under(cache):
                subprocess.run(["umount", "-l", str(point)], check=False)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
    assert _mounts(cache) == [], "an interrupted bootstrap left mounts"
    assert _children(mark) == [], "mmdebstrap's child outlived the bootstrap"
    assert sorted(p.name for p in (cache / "base").iterdir()) == [".bootstrap.lock"], "work files left"


def test_a_later_bootstrap_removes_what_a_killed_one_left(tmp_path):
    """djbake itself killed (SIGKILL: no cleanup can run): the next bootstrap unmounts and deletes its leftovers."""
    _needs_tools()
    stale = tmp_path / "cache" / "base" / ".bootstrap-killed"
    (stale / "rootfs" / "proc").mkdir(parents=True)
    (stale / "rootfs" / "etc").mkdir()
    (stale / "rootfs" / "etc" / "hostname").write_text("x\n")
    subprocess.run(["mount", "-t", "tmpfs", "djbake-test-stale", str(stale / "rootfs" / "proc")], check=True)
    try:
        # This time the stand-in fails at once: the point is what happens before it runs.
        env = _env(tmp_path, "#!/bin/sh\necho 'E: stand-in failure' >&2\nexit 1\n")
        proc = _bootstrap(env)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and "stand-in failure" in err, err[-2000:]
        assert "removing .bootstrap-killed, left by an interrupted bootstrap" in out
        assert not stale.exists()
        assert _mounts(tmp_path / "cache") == []
        assert sorted(p.name for p in (tmp_path / "cache" / "base").iterdir()) == [".bootstrap.lock"]
    finally:
        for point in base_image._mounts_under(tmp_path):
            subprocess.run(["umount", "-l", str(point)], check=False)


def test_mount_points_are_read_with_their_escapes(tmp_path):
    """/proc/self/mountinfo writes a space as \\040: such a directory is still found and released."""
    where = tmp_path / "with space" / "proc"
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "djbake-test-space", str(where)], check=True)
    try:
        assert base_image._mounts_under(tmp_path) == [where]
        base_image._discard(tmp_path / "with space")
        assert not (tmp_path / "with space").exists()
    finally:
        if base_image._mounts_under(tmp_path):
            subprocess.run(["umount", "-l", str(where)], check=False)
