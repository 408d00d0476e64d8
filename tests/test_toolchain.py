"""scripts/lib.sh's with_toolchain: build tools only while something has to be compiled.

Fast, on the host: the control flow with apt and dpkg replaced by shell
functions that record their calls, and the ldd/dpkg helpers against real
shared objects of this host. The real thing (compiling tests/sample_project's
C extension in a lean image, the tools gone after) is in
tests/test_docker_loop.py, and the suite (tests/image/test_packages.py)
checks every image built.
"""
from __future__ import annotations

import glob
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from builder import tables
from builder.paths import ROOT

LIB = ROOT / "scripts" / "lib.sh"


def bash(tmp: Path, body: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = tmp / "toolchain-test.sh"
    path.write_text(f"set -euo pipefail\n. {LIB}\n" + textwrap.dedent(body))
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", **(env or {})})


# The stand-ins: dpkg's package list is a file; apt_install adds the tools, a
# compiler and a library to it; apt-mark and apt-get record what they were asked.
STUBS = """\
    calls={tmp}/calls
    printf 'libc6\\nnginx\\n' > {tmp}/db
    installed_packages() {{ sort -u {tmp}/db; }}
    apt_install() {{ echo "apt_install $*" >> $calls; printf '%s\\n' "$@" gcc libfoo1 >> {tmp}/db; }}
    apt-mark() {{ echo "apt-mark $*" >> $calls; }}
    # apt's simulated autoremove: the tools, and a package of the base the tools did not bring.
    apt-get() {{
        echo "apt-get $*" >> $calls
        if [ "$1" = -s ]; then printf 'Remv %s [1.0]\\n' build-essential gcc:amd64 libpq-dev python3-dev old-base-pkg; fi
    }}
    linked_packages() {{ printf 'libc6\\nlibfoo1\\n'; }}
    unlinked() {{ echo "unlinked $1" >> $calls; }}
    log() {{ echo "log: $*" >> $calls; }}
    # The commands: one needs no compiler, one needs the stand-in's, one always fails.
    works() {{ echo "cmd $*" >> $calls; }}
    needs_cc() {{ echo "cmd $*" >> $calls; grep -qx gcc {tmp}/db; }}
    broken() {{ echo "cmd $*" >> $calls; return 3; }}
"""
TOOLS = " ".join(tables.BUILD_TOOLS)


def run_with_toolchain(tmp: Path, cmd: str, keep: str = "0") -> tuple[subprocess.CompletedProcess, list[str]]:
    body = STUBS.format(tmp=tmp) + f"with_toolchain {cmd}\necho after >> $calls\n"
    proc = bash(tmp, body, {"DJBAKE_BUILD_TOOLS": keep, "DJBAKE_TOOLCHAIN": TOOLS})
    calls = tmp / "calls"
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_nothing_installed_when_the_command_needs_no_compiler(tmp_path):
    proc, calls = run_with_toolchain(tmp_path, "works deploy")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["cmd deploy", "after"]


def test_tools_installed_for_a_second_try_then_purged_but_the_linked_library(tmp_path):
    proc, calls = run_with_toolchain(tmp_path, "needs_cc deploy")
    assert proc.returncode == 0, proc.stderr
    added = sorted([*tables.BUILD_TOOLS, "gcc", "libfoo1"])
    assert calls == [
        "cmd deploy",
        f"log: failed without build tools: installing them ({TOOLS}) and trying again",
        f"apt_install {TOOLS}",
        "cmd deploy",
        f"apt-mark auto {' '.join(added)}",
        "apt-mark manual libfoo1",        # the compiled code loads it: kept
        "apt-get -s -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false "
        "autoremove",
        "apt-get -q -y purge build-essential gcc libpq-dev python3-dev",   # not old-base-pkg
        "log: build tools removed (4 packages); kept for the compiled code: libfoo1",
        "unlinked /srv/app/venv/",
        "after",
    ], calls


def test_a_command_that_fails_with_the_tools_too_fails_the_script(tmp_path):
    proc, calls = run_with_toolchain(tmp_path, "broken deploy")
    assert proc.returncode != 0
    assert calls == ["cmd deploy", calls[1], f"apt_install {TOOLS}", "cmd deploy"], calls
    assert "line" in proc.stderr and "failed" in proc.stderr, "the ERR trap names the failure"


def test_kept_tools_mean_one_try_and_no_purge(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    proc, calls = run_with_toolchain(tmp_path / "a", "works deploy", keep="1")
    assert proc.returncode == 0 and calls == ["cmd deploy", "after"], calls
    proc, calls = run_with_toolchain(tmp_path / "b", "broken deploy", keep="1")
    assert proc.returncode != 0, "with the tools kept a failure is the command's own"
    assert calls == ["cmd deploy"], calls


# -- the ldd/dpkg helpers, against this host's real libraries -----------------

def _system_library() -> Path:
    """A shared library every Debian and Ubuntu has (apt's own), which loads compression libraries."""
    found = sorted(p for p in glob.glob("/usr/lib/*/libapt-pkg.so.*") if not Path(p).is_symlink())
    if not found or shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian-like host")
    return Path(found[0])


def test_linked_packages_names_the_packages_of_the_loaded_libraries(tmp_path):
    venv = tmp_path / "venv" / "lib"
    venv.mkdir(parents=True)
    shutil.copy(_system_library(), venv / "mod.cpython-311-x86_64-linux-gnu.so")
    proc = bash(tmp_path, f"linked_packages {tmp_path / 'venv'}\n")
    assert proc.returncode == 0, proc.stderr
    packages = proc.stdout.split()
    assert "zlib1g" in packages and any(p.startswith("libc6") for p in packages), packages
    assert packages == sorted(set(packages))
    proc = bash(tmp_path, f"unlinked {tmp_path / 'venv'}; echo all-found\n")
    assert proc.returncode == 0 and "all-found" in proc.stdout, proc.stderr


def test_unlinked_names_a_library_that_is_gone(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler on this host")
    (tmp_path / "gone.c").write_text("int gone(void) { return 1; }\n")
    (tmp_path / "mod.c").write_text("int gone(void);\nint mod(void) { return gone(); }\n")
    venv = tmp_path / "venv"
    venv.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "libgone.so", tmp_path / "gone.c"], check=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", venv / "mod.so", tmp_path / "mod.c", f"-L{tmp_path}", "-lgone"],
                   check=True)
    (tmp_path / "libgone.so").unlink()
    # A library a wheel bundles (auditwheel's pkg.libs/): ldd of its user alone misses it, and it is there.
    (venv / "pkg.libs").mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-o", venv / "pkg.libs" / "libbundled.so", tmp_path / "gone.c"],
                   check=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", venv / "pkg.libs" / "user.so", tmp_path / "mod.c",
                    f"-L{venv / 'pkg.libs'}", "-l:libbundled.so"], check=True)
    proc = bash(tmp_path, f"unlinked {venv}\necho not-reached\n")
    assert proc.returncode == 1 and "not-reached" not in proc.stdout
    assert "compiled code needs libgone.so, which no installed package provides" in proc.stderr, proc.stderr
    assert "libbundled" not in proc.stderr
