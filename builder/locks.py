"""A lock file per cached artifact, so concurrent builds on one host make it once.

flock(2): released by the kernel when the holder exits, however it exits, so a
killed build never leaves a lock behind.
"""
from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def exclusive(path: Path, waiting: str, log: Callable[[str], None]) -> Iterator[None]:
    """Hold path's lock; if another process holds it, say `waiting` and wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(waiting)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
