"""How long each part of a Packer build took, read from Packer's machine-readable stream (pure).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from builder.bake.runner import Event, parse_line

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
    # The step this one ran inside (qemu's "base image" inside "prepare"): its seconds are part of that
    # step's, so a sum over steps counts only the outermost ones.
    within: str | None = None

    def as_dict(self) -> dict:
        d = {"name": self.name, "seconds": round(self.seconds, 1)}
        if self.within:
            d["within"] = self.within
        return d


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
