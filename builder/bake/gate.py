"""The image suite runner: the in-build gate, and the suite for fresh-boot verification.

    python -m builder gate --provider P (--host H --port N --user U [--key-file F]
                                         | --container ID) --log-dir DIR

Packer runs that as a shell-local provisioner after the stack scripts and
before seal.sh (builder/bake/template.py `_gate`). It runs pytest-testinfra on
tests/image/ against the build VM (paramiko, with the build key; when the
build user is not root, every command through one root process started
with sudo: builder/bake/root_shell.py) or the build container (docker backend),
writes `gate.junit.xml` and `gate.log` into DIR, and exits 1 naming every
failed check: a failed check fails the Packer build, so no image exists.
When every check passed it reads the target's package lists through the same
connection into DIR/packages.json: the image's bill of materials
(builder/bake/sbom.py).

`run_suite()` is the same runner for other phases: builder/qemu/fresh_boot.py calls
it on a freshly booted VM (`fresh_boot=True`), the docker provider on a
container of the built image.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from builder.bake import sbom
from builder.bake import skips as skip_rules
from builder.errors import BuildFailed, UserError
from builder.paths import ROOT

SUITE = ROOT / "tests" / "image"
# testinfra's scheme for builder/bake/root_shell.py's backend, which registers it when imported
# (tests/image/conftest.py does; importing it loads testinfra, which not every `djbake` command needs).
ROOT_SHELL = "djbake-root"


@dataclass(frozen=True)
class Target:
    """Where the suite runs: an SSH host or a docker container."""

    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    container: str | None = None

    def __post_init__(self):
        if bool(self.container) == bool(self.host):
            raise ValueError("a target is either a container or an SSH host")

    @property
    def backend(self) -> str:
        return "docker" if self.container else "ssh"

    def hosts_arg(self, scheme: str | None = None) -> str:
        """testinfra's --hosts value. scheme: an SSH backend other than the gate's own (the bench times
        a plain `paramiko` exec, no sudo, as its baseline); ignored for a container."""
        if self.container:
            return f"docker://{self.container}"
        # Not root: every command through one root process (builder/bake/root_shell.py) instead of
        # a channel and `sudo /bin/sh -c` each, the suite's cost under emulation.
        scheme = scheme or (ROOT_SHELL if self.needs_sudo else "paramiko")
        spec = f"{scheme}://{self.user or 'root'}@{self.host}:{self.port}?timeout=30"
        if self.key_file:
            spec += f"&ssh_identity_file={self.key_file}"
        return spec

    @property
    def needs_sudo(self) -> bool:
        return self.backend == "ssh" and (self.user or "root") != "root"

    def describe(self) -> str:
        return f"container {self.container[:12]}" if self.container else f"{self.user}@{self.host}:{self.port}"


@dataclass
class SuiteResult:
    name: str
    returncode: int
    markers: str
    passed: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)   # test ids with their first message line
    unexpected: list[str] = field(default_factory=list)  # skips no rule allows, too few passes (skips.py)
    seconds: float = 0.0
    junit: Path | None = None
    log: Path | None = None

    @property
    def ok(self) -> bool:
        # pytest: 0 all passed, 5 nothing collected (a wrong -m is an error too).
        return self.returncode == 0 and not self.failed and not self.unexpected

    @property
    def summary(self) -> str:
        head = (f"{self.name}: {self.passed} passed, {len(self.failed)} failed, {self.skipped} skipped "
                f"in {self.seconds:.0f} s (-m '{self.markers}')")
        if self.ok:
            return head
        if not self.failed and not self.unexpected:
            return f"{head}; pytest exited {self.returncode} (log: {self.log})"
        return head + "".join(f"; {what}: " + "; ".join(items) for what, items in
                              (("failed", self.failed), ("not a pass", self.unexpected)) if items)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "returncode": self.returncode, "markers": self.markers, "passed": self.passed,
                "skipped": self.skipped, "failed": self.failed, "unexpected": self.unexpected, "seconds": round(self.seconds, 1),
                "junit": str(self.junit) if self.junit else None, "log": str(self.log) if self.log else None}


# A second fresh boot of one image runs only the checks about what a boot makes for its own VM
# (marker per_vm: secrets, identity, first-boot units, services, the VM's address). The rest are about
# what the disk holds, the same bytes on both VMs, and the first boot ran them.
SECOND_BOOT = "per_vm"


def default_markers(target: Target, phase: str) -> str:
    """The phase's marker, minus `kernel` in a container (it shares the host's kernel)."""
    expr = f"{SECOND_BOOT} and fresh_boot" if phase == SECOND_BOOT else phase
    return expr if target.backend == "ssh" else f"{expr} and not kernel"


def pytest_command(target: Target, markers: str, junit: Path, record: Path | None = None,
                   modules: tuple[str, ...] = ()) -> list[str]:
    paths = [str(SUITE / m) for m in modules] or [str(SUITE)]
    cmd = [sys.executable, "-m", "pytest", *paths, f"--hosts={target.hosts_arg()}", "-m", markers,
           f"--junitxml={junit}", "-p", "no:cacheprovider", "-rfE", "--tb=short", "-q", "--color=no"]
    if record is not None:
        cmd.append(f"--record={record}")
    return cmd


def _cases(path: Path) -> list[tuple[str, ET.Element]]:
    """(module::test, its <testcase>) of a junit xml file; none when it is missing or unreadable.
    The parametrized host id ("[djbake-root://...]", "[docker://...]") is noise here and left out of the name."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError):
        return []
    return [(f"{c.get('classname', '').rsplit('.', 1)[-1]}::{c.get('name', '').split('[', 1)[0]}", c)
            for c in root.iter("testcase")]


def parse_junit(path: Path) -> tuple[int, int, list[str]]:
    """(passed, skipped, failed ids with reasons) from a junit xml file."""
    passed = skipped = 0
    failed: list[str] = []
    for name, case in _cases(path):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            reason = (problem.get("message") or "").strip().splitlines()
            failed.append(f"{name} ({reason[0][:160]})" if reason else name)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, skipped, failed


def skipped_checks(path: Path) -> list[tuple[str, str]]:
    """(module::test, skip message) of every skipped test case in a junit xml file."""
    return [(name, (case.find("skipped").get("message") or "").strip())
            for name, case in _cases(path) if case.find("skipped") is not None]


def check_times(path: Path) -> list[tuple[str, float]]:
    """(check, seconds) of every test case in a junit xml file, slowest first."""
    times = [(name, float(case.get("time") or 0)) for name, case in _cases(path)]
    return sorted(times, key=lambda t: t[1], reverse=True)


# The suites' pytest processes now running (fresh-boot verification runs two at once, each waited for in a
# worker thread). A signal reaches the main thread only, and a thread pool's exit waits for its workers:
# without stopping these children first, an interrupted `djbake image` waited up to the suite's timeout.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


def stop_running_suites() -> None:
    """Terminate every suite process run_suite is waiting for (each waiter then returns at once)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        proc.terminate()


def run_suite(target: Target | None = None, markers: str | None = None, extra_env: dict[str, str] | None = None,
              log_dir: Path | str | None = None, *, name: str | None = None, record: Path | str | None = None,
              host: str | None = None, port: int = 22, user: str | None = None, key_file: str | None = None,
              container: str | None = None, fresh_boot: bool = False, second_boot: bool = False,
              timeout: int = 1800, modules: tuple[str, ...] = ()) -> SuiteResult:
    """Run tests/image against target; never raises for failing checks (see SuiteResult.ok).

    markers default to the phase: `gate`, `fresh_boot` with fresh_boot=True, or the per-VM
    fresh-boot checks with second_boot=True (SECOND_BOOT); `and not kernel` in a container. extra_env reaches the tests (e.g.
    DJBAKE_BUILD_USER); record is a JSON file the
    fresh-boot tests write per-VM identity values to (compare_boots()).
    modules (file names in tests/image) run only those, e.g. where a planted fault's checks live;
    such a run is not held to the phase's minimum pass count.
    """
    if target is None:
        target = Target(host=host, port=port, user=user, key_file=key_file, container=container)
    phase = SECOND_BOOT if second_boot else "fresh_boot" if fresh_boot else "gate"
    markers = markers or default_markers(target, phase)
    name = name or phase
    out_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"djbake-{name}-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = out_dir / f"{name}.junit.xml"
    log = out_dir / f"{name}.log"
    junit.unlink(missing_ok=True)
    env = {**os.environ, **(extra_env or {}), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = pytest_command(target, markers, junit, Path(record) if record else None, modules)
    started = time.monotonic()
    with open(log, "w") as fh:
        fh.write(f"# {target.describe()}: {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        with _running_lock:
            _running.add(proc)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            fh.write(f"\n# timed out after {timeout} s\n")
            code = 124
        except BaseException:   # interrupted in the main thread: the suite goes too
            proc.kill()
            proc.wait()
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
    passed, skipped, failed = parse_junit(junit)
    unexpected = (skip_rules.problems(markers, passed, skipped_checks(junit), complete=not modules)
                  if junit.exists() else [])
    return SuiteResult(name, code, markers, passed, skipped, failed, unexpected, time.monotonic() - started,
                       junit, log)


def compare_boots(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """Problems between the --record files of two fresh boots of one image (empty: they differ as they must)."""
    problems = []
    # A database password exists only with a local PostgreSQL (`database: none` has none): compared when
    # either boot recorded one (the suite records no hash of a missing secret).
    optional = [k for k in ("db_password_sha256",) if k in a or k in b]
    for key in ("ssh_host_keys", "machine_id", "secret_key_sha256", *optional):
        va, vb = a.get(key), b.get(key)
        if not va or not vb:
            problems.append(f"{key}: not recorded by both boots")
        elif va == vb:
            problems.append(f"{key}: the same on both boots (must be made per VM)")
    return problems


# -- the command -------------------------------------------------------------

def _key_file(args, stack: list) -> str | None:
    """--key-file, or DJBAKE_GATE_KEY (Packer's generated key) in a 0600 temp file."""
    if args.key_file:
        return args.key_file
    key = os.environ.get("DJBAKE_GATE_KEY", "")
    if not key.strip():
        return None
    fd, path = tempfile.mkstemp(prefix="djbake-gate-", suffix=".key")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key if key.endswith("\n") else key + "\n")
    stack.append(path)
    return path


def _record_packages(target: Target, log_dir: Path) -> None:
    """The bill of materials' raw lists (sbom.record), read through the suite's own transport."""
    import testinfra   # loads pytest's plugin machinery: only here, not for every `djbake` command

    from builder.bake import root_shell  # noqa: F401  (registers the backend hosts_arg names)

    host = testinfra.get_host(target.hosts_arg())

    def run(command: str) -> str:
        out = host.run(command)
        if out.rc != 0:
            raise sbom.SbomError(f"`{command.split()[0]}` exited {out.rc}: {out.stderr.strip()[:200]}")
        return out.stdout

    try:
        path = sbom.record(run, log_dir)
    except sbom.SbomError as e:
        raise BuildFailed(f"in-build gate: the package lists for the bill of materials: {e}") from None
    print(f"djbake gate: package lists for the bill of materials in {path}")


def cmd_gate(args) -> int:
    if bool(args.container) == bool(args.host):
        raise UserError("give either --container ID or --host H (with --port, --user)")
    cleanup: list[str] = []
    try:
        if args.container:
            target = Target(container=args.container)
        else:
            target = Target(host=args.host, port=args.port, user=args.user, key_file=_key_file(args, cleanup))
        print(f"djbake gate: testing {target.describe()} ({args.provider}) ...", flush=True)
        result = run_suite(target, args.markers, log_dir=args.log_dir, name="gate")
        if result.ok:
            _record_packages(target, Path(args.log_dir))
    finally:
        for path in cleanup:
            Path(path).unlink(missing_ok=True)
    print(f"djbake gate: {result.summary}")
    print(f"djbake gate: report {result.junit}, log {result.log}")
    if not result.ok:
        for failure in result.failed:
            print(f"djbake gate: FAILED {failure}", file=sys.stderr)
        for problem in result.unexpected:
            print(f"djbake gate: NOT A PASS {problem}", file=sys.stderr)
        named = [f.split(' (')[0] for f in result.failed] + [u.split(':')[0] for u in result.unexpected]
        raise BuildFailed(f"in-build gate failed: {len(named) or 'the suite'} check(s) "
                          f"({', '.join(named) or f'exit {result.returncode}'})")
    return 0
