"""Step 7: run `packer build`, streaming its machine-readable output.

Not packer-py: that blocks until Packer exits and sends the template on
stdin, where Packer reads it as legacy JSON. This runner reads each line
as it comes, turns it into events, writes a secret-filtered log, and
forwards SIGINT/SIGTERM to Packer so Packer cleans up what it created.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

COMMA = "%!(PACKER_COMMA)"
# What scripts/lib.sh's ERR trap (and its die()) print when a guest script fails.
SCRIPT_FAILED = re.compile(r"djbake: (scripts/[\w.-]+\.sh line \d+ failed: .*?)\s*$")
SCRIPT_DIED = re.compile(r"\[djbake ([\w.-]+)\] ERROR: (.*?)\s*$")
PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
REDACTED = "[redacted]"


@dataclass
class Event:
    timestamp: int
    target: str
    type: str
    data: list[str]

    @property
    def message(self) -> str:
        """The text of a ui line (say/message/error)."""
        return self.data[1] if self.type == "ui" and len(self.data) > 1 else ""

    @property
    def level(self) -> str:
        return self.data[0] if self.type == "ui" and self.data else ""


@dataclass
class Artifact:
    target: str
    index: int
    fields: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.fields.get("id", "")


def _unescape(text: str) -> str:
    return text.replace(COMMA, ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> Event | None:
    """One machine-readable line: timestamp,target,type,data..."""
    parts = line.rstrip("\n").split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return Event(int(parts[0]), parts[1], parts[2], [_unescape(p) for p in parts[3:]])


def script_failure(message: str) -> str | None:
    """The first guest script failure named in a line of output, if any."""
    for line in message.splitlines():
        m = SCRIPT_FAILED.search(line)
        if m:
            return m.group(1)
        m = SCRIPT_DIED.search(line)
        if m:
            return f"scripts/{m.group(1)}.sh failed: {m.group(2)}"
    return None


class ArtifactCollector:
    """Assembles `artifact` events into Artifact records."""

    def __init__(self) -> None:
        self.artifacts: list[Artifact] = []
        self._open: dict[tuple[str, int], Artifact] = {}

    def feed(self, ev: Event) -> None:
        if ev.type != "artifact" or len(ev.data) < 2:
            return
        index = int(ev.data[0])
        key = (ev.target, index)
        art = self._open.get(key)
        if art is None:
            art = self._open[key] = Artifact(ev.target, index)
        kind = ev.data[1]
        if kind == "end":
            self.artifacts.append(self._open.pop(key))
        elif kind == "file" and len(ev.data) >= 4:
            art.files.append(ev.data[3])
        elif len(ev.data) >= 3:
            art.fields[kind] = ",".join(ev.data[2:])


class SecretFilter:
    """Replaces known secret values and any private key block with [redacted]."""

    def __init__(self, secrets: Iterable[str]):
        # Longest first, so a secret containing another is removed whole.
        # Each secret also in Packer's machine-readable escaping of commas/newlines.
        forms = {f for s in secrets if s and len(s) >= 4
                 for f in (s, s.replace(",", COMMA).replace("\n", "\\n"))}
        self.secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return PEM.sub(REDACTED, text)


@dataclass
class Result:
    returncode: int
    artifacts: list[Artifact]
    errors: list[str]
    log_path: Path
    interrupted: bool = False
    # "scripts/<name>.sh line N failed: <command> (exit N)" when a guest script failed.
    script_failure: str | None = None


class PackerRunner:
    def __init__(self, packer_path: str, log_path: Path, secrets: Iterable[str] = (),
                 on_event: Callable[[Event], None] | None = None, env: dict[str, str] | None = None):
        self.packer_path = packer_path
        self.log_path = log_path
        self.filter = SecretFilter(secrets)
        self.on_event = on_event or (lambda ev: None)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.interrupted = False

    def _forward(self, signum, frame) -> None:
        self.interrupted = True
        if self.proc and self.proc.poll() is None:
            # To Packer's whole process group, as a terminal's Ctrl-C would:
            # Packer cleans up (VMs, instances, key pairs), and a shell-local
            # step it is waiting for stops too.
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def build(self, directory: Path, variables: dict[str, str] | None = None,
              extra_args: Iterable[str] = ()) -> Result:
        args = [self.packer_path, "build", "-machine-readable", "-color=false", *extra_args]
        for key, value in sorted((variables or {}).items()):
            args += ["-var", f"{key}={value}"]
        args.append(str(directory))
        return self.run(args, cwd=directory)

    def run(self, args: list[str], cwd: Path | None = None) -> Result:
        collector = ArtifactCollector()
        errors: list[str] = []
        failure: str | None = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PACKER_NO_COLOR", "1")
        env.setdefault("CHECKPOINT_DISABLE", "1")
        # Packer's own scratch directory inside the caller's TMPDIR, removed whatever happens:
        # a cancelled shell-local step (post-processors in 1.6) leaves its script file behind.
        # Packer puts its plugins' unix sockets there too (108 bytes at most for the path):
        # under a very deep TMPDIR, leave TMPDIR as it is.
        scratch = tempfile.mkdtemp(prefix="djb-", dir=env.get("TMPDIR") or None)
        if len(scratch) + len("/packer-plugin1234567890") < 100:
            env["TMPDIR"] = scratch
        in_main = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._forward)
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                # Own session: a terminal's Ctrl-C reaches Packer once, through us.
                self.proc = subprocess.Popen(
                    args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    bufsize=1, env=env, start_new_session=True,
                )
                assert self.proc.stdout is not None
                for raw in self.proc.stdout:
                    line = self.filter(raw)
                    log.write(line if line.endswith("\n") else line + "\n")
                    log.flush()
                    ev = parse_line(line)
                    if ev is None:
                        ev = Event(int(time.time()), "", "ui", ["message", line.rstrip("\n")])
                    collector.feed(ev)
                    if ev.type == "ui" and ev.level == "error":
                        errors.append(ev.message)
                    if ev.type == "ui" and failure is None:
                        failure = script_failure(ev.message)
                    self.on_event(ev)
                returncode = self.proc.wait()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(scratch, ignore_errors=True)
        return Result(returncode, collector.artifacts, errors, self.log_path, self.interrupted,
                      failure if returncode != 0 else None)
