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

Per-script timings come from Packer's own stream (packer_log.py); the
record and its tables are timings.py.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

from builder.bake.packer_log import Timing, packer_timings
from builder.bake.runner import Event
from builder.bake.timings import duration, timings_record, timings_table, timings_text

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
        """Time one pipeline step; it is the current step while the block runs. A step started inside
        another is recorded as within it, after it (steps are listed in the order they started)."""
        outer = self.current, self.step_started
        timing = Timing(name, 0.0, within=self.current)
        self.steps.append(timing)
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
            timing.seconds = seconds
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
