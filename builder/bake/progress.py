"""What a build is doing right now, and afterwards how long each part took.

The pipeline talks to one small interface and never prints progress itself:

    with progress.from_args(args) as view:          # Live on a terminal, Plain otherwise
        build = view.build("qemu")                  # one per provider; several may run at once
        with build.step("base image"):              # timed; shown as the current step
            ...
        runner.PackerRunner(..., on_event=build.packer_event)   # every Packer line
        timings = build.finish(result)              # runner.Result, or ok=True/False
        entry.timings = timings                     # stored in the catalog
    # leaving the `with` prints the table of time per step and per script

`Progress` (the base class) is silent and only records; `PlainProgress`
writes one line per step and per Packer step (every Packer line with
`verbose`), for CI logs and pipes; `LiveProgress` is a rich live view with
one row per build: state, current step, its elapsed time, total elapsed
time and Packer's last message. All output goes to stderr, so stdout stays
for results (an artifact id) that scripts read.

Per-script timings come from Packer's own stream, not from guessing:
Packer's shell provisioner says "Provisioning with shell script: PATH" when
a script starts, shell-local says "Running local shell script: PATH", the
file provisioner "Uploading SRC => DST". A part ends at Packer's next step
line (`==> ...`). `packer_timings()` is that pure function over
`runner.Event`s; `timings_from_log()` applies it to a build's packer.log.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

from builder.bake.runner import Event, parse_line

# -- timings from Packer's machine-readable stream (pure) ------------------

_STEP = re.compile(r"^==> (?P<target>[^:]+): (?P<text>.*)$", re.S)
_SCRIPT = re.compile(r"^Provisioning with shell script: (?P<path>.+)$")
_LOCAL = re.compile(r"^Running local shell script: (?P<path>.+)$")
_UPLOAD = re.compile(r"^Uploading (?P<src>.+?) => (?P<dst>.+)$")
_FINISHED = re.compile(r"^Build '(?P<target>[^']+)' (finished|errored)")
_INLINE = re.compile(r"(^|/)packer-shell\d+$")

# Our template runs exactly one shell-local provisioner: the in-build gate.
LOCAL_INLINE = "in-build gate (shell-local)"
INLINE = "inline commands"
PHASES = ("boot and connect", "provision", "shutdown and capture")


@dataclass
class Timing:
    name: str
    seconds: float

    def as_dict(self) -> dict:
        return {"name": self.name, "seconds": round(self.seconds, 1)}


def _part_name(text: str) -> str | None:
    """The name of the provisioning part a Packer step line starts, or None."""
    m = _SCRIPT.match(text)
    if m:
        return INLINE if _INLINE.search(m["path"]) else os.path.basename(m["path"].rstrip("/"))
    m = _LOCAL.match(text)
    if m:
        return LOCAL_INLINE if _INLINE.search(m["path"]) else "local " + os.path.basename(m["path"])
    m = _UPLOAD.match(text)
    if m:
        return "upload " + (os.path.basename(m["src"].rstrip("/")) or m["src"])
    return None


def packer_timings(events: Iterable[Event]) -> dict[str, list[Timing]]:
    """Per provisioning part and per phase durations from Packer's events.

    Returns {"scripts": [...], "phases": [...]}, both in order. A part
    starts at its own step line and ends at Packer's next step line (or
    the last event). Phases: from the first event to the first part (boot,
    wait for SSH), the parts, and from the last part to the end of the
    build (shutdown, image capture, post-processors). Durations are as
    exact as Packer's timestamps (whole seconds).
    """
    parts: list[Timing] = []
    first = last = None
    first_part = last_part_end = None
    finished = None
    open_name, open_at = None, 0
    for ev in events:
        if first is None:
            first = ev.timestamp
        last = ev.timestamp
        if ev.type != "ui" or ev.level != "say":
            continue
        text = ev.message.strip()
        fin = _FINISHED.match(text)
        step = _STEP.match(text)
        if not (step or fin):
            continue
        if open_name is not None:
            parts.append(Timing(open_name, ev.timestamp - open_at))
            last_part_end = ev.timestamp
            open_name = None
        if fin:
            finished = finished or ev.timestamp
            continue
        name = _part_name(step["text"].strip())
        if name is not None:
            open_name, open_at = name, ev.timestamp
            if first_part is None:
                first_part = ev.timestamp
    if open_name is not None and last is not None:
        parts.append(Timing(open_name, last - open_at))
        last_part_end = last
    phases: list[Timing] = []
    if first is not None and first_part is not None:
        end = finished if finished is not None else last
        phases = [
            Timing(PHASES[0], first_part - first),
            Timing(PHASES[1], last_part_end - first_part),
            Timing(PHASES[2], max(0, end - last_part_end)),
        ]
    return {"scripts": parts, "phases": phases}


def events_from_lines(lines: Iterable[str]) -> list[Event]:
    return [ev for ev in map(parse_line, lines) if ev is not None]


def timings_from_log(path: Path) -> dict[str, list[Timing]]:
    """`packer_timings` of a finished build's packer.log."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return packer_timings(events_from_lines(f))


def timings_record(steps: list[Timing], packer: dict[str, list[Timing]], total: float,
                   ok: bool = True) -> dict:
    """The JSON-able record stored as catalog Entry.timings (lists keep their order)."""
    return {
        "total_seconds": round(total, 1),
        "ok": ok,
        "steps": [t.as_dict() for t in steps],
        "packer": [t.as_dict() for t in packer.get("phases", [])],
        "scripts": [t.as_dict() for t in packer.get("scripts", [])],
    }


def duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s"


def _sections(record: dict) -> list[tuple[str, list[dict]]]:
    return [(title, record.get(key) or []) for title, key in
            (("step", "steps"), ("packer phase", "packer"), ("script", "scripts"))]


def timings_text(record: dict, title: str = "") -> str:
    """A plain-text table of a timings record (for logs and `djbake images --show`)."""
    if not record:
        return "no timings recorded\n"
    rows: list[tuple[str, str, str, str]] = []
    total = float(record.get("total_seconds") or 0)
    for kind, items in _sections(record):
        for item in items:
            share = f"{100 * item['seconds'] / total:.0f}%" if total else ""
            rows.append((kind, item["name"], duration(item["seconds"]), share))
    rows.append(("total", "", duration(total), ""))
    widths = [max(len(r[i]) for r in rows + [("", "", "", "")]) for i in range(4)]
    widths[0] = max(widths[0], len("kind"))
    widths[1] = max(widths[1], len("name"))
    lines = [title] if title else []
    head = ("kind", "name", "time", "share")
    for r in [head] + rows:
        lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{max(widths[2], 4)}}  {r[3]:>5}".rstrip())
    return "\n".join(lines) + "\n"


def timings_table(record: dict, title: str = ""):
    """The same table as a rich Table."""
    from rich.table import Table

    table = Table(title=title or None, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("kind", style="dim")
    table.add_column("name")
    table.add_column("time", justify="right")
    table.add_column("share", justify="right", style="dim")
    total = float(record.get("total_seconds") or 0)
    for kind, items in _sections(record):
        for item in items:
            share = f"{100 * item['seconds'] / total:.0f}%" if total else ""
            table.add_row(kind, item["name"], duration(item["seconds"]), share)
        if items:
            table.add_section()
    table.add_row("total", "", duration(total), "", style="bold")
    return table


# -- one build ---------------------------------------------------------------

@dataclass
class Build:
    """The progress of one build (one provider). Created by `Progress.build()`."""

    name: str
    view: "Progress"
    clock: object = time.monotonic
    started: float = 0.0
    steps: list[Timing] = field(default_factory=list)
    current: str | None = None
    step_started: float = 0.0
    last_message: str = ""
    state: str = "running"      # running | ok | failed
    summary: str = ""
    record: dict | None = None
    _events: list[Event] = field(default_factory=list)
    _ended: float | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return (self._ended if self._ended is not None else self.clock()) - self.started

    @property
    def step_elapsed(self) -> float:
        return self.clock() - self.step_started if self.current else 0.0

    @contextmanager
    def step(self, name: str) -> Iterator["Build"]:
        """Time one pipeline step; it is the current step while the block runs."""
        outer = self.current, self.step_started
        self.current, self.step_started = name, self.clock()
        self.view._step_started(self, name)
        ok = False
        try:
            yield self
            ok = True
        except BaseException as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.summary = self.summary or f"{name}: {reason}"
            raise
        finally:
            seconds = self.clock() - self.step_started
            self.steps.append(Timing(name, seconds))
            self.current, self.step_started = outer
            self.view._step_done(self, name, seconds, ok)

    def packer_event(self, ev: Event) -> None:
        """Feed every runner.Event here (PackerRunner's on_event)."""
        if ev.type == "ui":
            text = ev.message.strip()
            if ev.level == "say":
                self._events.append(ev)
            if text:
                self.last_message = text.splitlines()[0]
        elif ev.type == "artifact":
            self._events.append(ev)
        self.view._packer_event(self, ev)

    def note(self, text: str) -> None:
        """A message from the pipeline itself (e.g. "KVM not usable: TCG")."""
        self.last_message = text
        self.view._note(self, text)

    def finish(self, result: object = None, ok: bool | None = None, summary: str = "") -> dict:
        """End this build; returns the timings record for catalog Entry.timings.

        `result` may be a runner.Result (ok = returncode 0 and not
        interrupted), anything with `ok`, or None (then `ok` decides;
        default True).
        """
        if ok is None:
            if hasattr(result, "returncode"):
                ok = result.returncode == 0 and not getattr(result, "interrupted", False)
            elif hasattr(result, "ok"):
                ok = bool(result.ok)
            else:
                ok = True
        if self._ended is None:
            self._ended = self.clock()
        self.state = "ok" if ok else "failed"
        self.summary = summary or (self.summary if not ok else "")
        self.record = timings_record(self.steps, packer_timings(self._events), self.elapsed, ok)
        self.view._finished(self)
        return self.record

    @property
    def timings(self) -> dict:
        if self.record is not None:
            return self.record
        return timings_record(self.steps, packer_timings(self._events), self.elapsed, self.state != "failed")


# -- views -----------------------------------------------------------------------

class Progress:
    """Records builds and prints nothing: the default when no view is wanted."""

    def __init__(self, stream: IO[str] | None = None, verbose: bool = False, summary: bool = True,
                 clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.verbose = verbose
        self.show_summary = summary
        self.builds: list[Build] = []
        self.lock = threading.RLock()

    # the pipeline's side
    def build(self, name: str) -> Build:
        with self.lock:
            b = Build(name, self, self.clock)
            self.builds.append(b)
        self._started(b)
        return b

    def __enter__(self) -> "Progress":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        pass

    def close(self) -> None:
        for b in self.builds:
            if b.state == "running":
                b.finish(ok=False, summary=b.summary or "did not finish")
        self.stop()
        if self.show_summary:
            self.summary()

    def stop(self) -> None:
        pass

    def summary(self) -> None:
        pass

    # the view's side: override what you show
    def _started(self, b: Build) -> None:
        pass

    def _step_started(self, b: Build, name: str) -> None:
        pass

    def _step_done(self, b: Build, name: str, seconds: float, ok: bool) -> None:
        pass

    def _packer_event(self, b: Build, ev: Event) -> None:
        pass

    def _note(self, b: Build, text: str) -> None:
        pass

    def _finished(self, b: Build) -> None:
        pass


def _shows(ev: Event, verbose: bool) -> bool:
    """Which Packer lines a non-verbose view prints: Packer's steps and errors."""
    if ev.type != "ui" or not ev.message.strip():
        return False
    return verbose or ev.level in ("say", "error")


class PlainProgress(Progress):
    """One line per event, prefixed with the build and its elapsed time (CI logs, pipes)."""

    def _line(self, b: Build, text: str) -> None:
        with self.lock:
            for part in text.splitlines() or [""]:
                self.stream.write(f"[{b.name} {duration(b.elapsed):>7}] {part}\n")
            self.stream.flush()

    def _started(self, b: Build) -> None:
        self._line(b, "build started")

    def _step_started(self, b: Build, name: str) -> None:
        self._line(b, f"> {name}")

    def _step_done(self, b: Build, name: str, seconds: float, ok: bool) -> None:
        self._line(b, f"{'ok' if ok else 'FAILED'} {name} ({duration(seconds)})")

    def _packer_event(self, b: Build, ev: Event) -> None:
        if _shows(ev, self.verbose):
            self._line(b, ("packer error: " if ev.level == "error" else "packer: ") + ev.message.strip("\n").rstrip())

    def _note(self, b: Build, text: str) -> None:
        self._line(b, text)

    def _finished(self, b: Build) -> None:
        tail = f": {b.summary}" if b.summary else ""
        self._line(b, f"build {'succeeded' if b.state == 'ok' else 'FAILED'} after {duration(b.elapsed)}{tail}")

    def summary(self) -> None:
        with self.lock:
            for b in self.builds:
                self.stream.write(timings_text(b.timings, f"timings for {b.name} ({b.state}):"))
            self.stream.flush()


class LiveProgress(Progress):
    """A rich live view: one row per build, redrawn four times a second."""

    ICONS = {"running": "[yellow]…[/]", "ok": "[green]✓[/]", "failed": "[red]✗[/]"}

    def __init__(self, stream: IO[str] | None = None, verbose: bool = False, summary: bool = True,
                 console=None, clock=time.monotonic):
        super().__init__(stream, verbose, summary, clock)
        from rich.console import Console

        self.console = console or Console(file=self.stream, stderr=stream is None)
        self.live = None

    def start(self) -> None:
        from rich.live import Live

        self.live = Live(_Renderable(self), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def render(self):
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, pad_edge=False, box=None, expand=True)
        table.add_column("", width=1)
        table.add_column("build", no_wrap=True)
        table.add_column("step", no_wrap=True)
        table.add_column("step time", justify="right", no_wrap=True)
        table.add_column("total", justify="right", no_wrap=True)
        table.add_column("packer says", ratio=1, no_wrap=True, overflow="ellipsis")
        with self.lock:
            for b in self.builds:
                step = b.current or (b.summary if b.state != "running" else "")
                table.add_row(self.ICONS[b.state], b.name, step,
                              duration(b.step_elapsed) if b.current else "",
                              duration(b.elapsed), Text(b.last_message, style="dim"))
        return table

    def _print(self, b: Build, text: str, style: str = "") -> None:
        from rich.text import Text

        self.console.print(Text(f"{b.name}: ", style="bold") + Text(text, style=style), highlight=False)

    def _step_done(self, b: Build, name: str, seconds: float, ok: bool) -> None:
        self._print(b, f"{'✓' if ok else '✗'} {name} ({duration(seconds)})", "" if ok else "red")

    def _packer_event(self, b: Build, ev: Event) -> None:
        if self.verbose and _shows(ev, True):
            self._print(b, ev.message.rstrip(), "red" if ev.level == "error" else "dim")
        elif ev.level == "error" and ev.message.strip():
            self._print(b, ev.message.strip(), "red")

    def _note(self, b: Build, text: str) -> None:
        self._print(b, text)

    def summary(self) -> None:
        for b in self.builds:
            self.console.print(timings_table(b.timings, f"{b.name}: {b.state} in {duration(b.elapsed)}"))


class _Renderable:
    def __init__(self, view: LiveProgress):
        self.view = view

    def __rich__(self):
        return self.view.render()


def make(plain: bool = False, verbose: bool = False, stream: IO[str] | None = None,
         summary: bool = True) -> Progress:
    """Live on a terminal; Plain with `plain`, on a pipe, in CI, or with TERM=dumb."""
    stream = stream if stream is not None else sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"
    if plain or not interactive or os.environ.get("CI"):
        return PlainProgress(stream, verbose, summary)
    return LiveProgress(stream, verbose, summary)


def add_arguments(parser) -> None:
    """--plain and --verbose for a command that builds."""
    parser.add_argument("--plain", action="store_true",
                        help="line-by-line progress instead of the live view (default when not on a terminal)")
    parser.add_argument("--verbose", "-v", action="store_true", help="show every Packer line")


def from_args(args, stream: IO[str] | None = None) -> Progress:
    return make(plain=getattr(args, "plain", False), verbose=getattr(args, "verbose", False), stream=stream)
