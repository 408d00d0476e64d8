"""Which of a scan's findings docs/security.md's Exceptions table names, with its reason.

The bench reports every Lynis suggestion and warning and every failing OpenSCAP rule
on the baked image; each is either fixed (gone from the next run) or an exception a web
server needs, written in that table. This module reads the table's names so the report
can mark each finding "documented" or not, and a finding nobody wrote down stands out.
Only the Exceptions section counts: the hardening table above it names what is fixed,
and a fixed item that still shows up is a finding, not an exception.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from builder import paths

SECTION = "### Exceptions"
# SSH-7408, ACCT-9628, and the table's shorthand for siblings: DEB-0810/0811. LYNIS is Lynis's
# test of its own age.
LYNIS_ID = re.compile(r"\b([A-Z]{3,4})-(\d{4})((?:/\d{4})*)\b|\bLYNIS\b")
CODE = re.compile(r"`([^`]+)`")


def _section(text: str) -> str:
    start = text.find(SECTION)
    if start < 0:
        return ""
    rest = text[start + len(SECTION):]
    end = re.search(r"^#{1,3} ", rest, flags=re.M)
    return rest[:end.start()] if end else rest


def expand_braces(token: str) -> list[str]:
    """`sudo_add_{noexec,umask}` -> sudo_add_noexec, sudo_add_umask (as the table writes rule families)."""
    parts = re.split(r"(\{[^{}]*\})", token)
    choices = [p[1:-1].split(",") if p.startswith("{") and p.endswith("}") else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*choices)]


def documented(doc: Path | None = None) -> dict[str, set[str]]:
    """{"lynis": Lynis test IDs, "openscap": rule names} that the Exceptions section names."""
    section = _section((doc or paths.SECURITY_DOC).read_text())
    rules = {name for token in CODE.findall(section) for name in expand_braces(token)
             if re.fullmatch(r"[a-z0-9_]+", name) and "_" in name and not name.startswith("test_")}
    lynis = set()
    for m in LYNIS_ID.finditer(section):
        if m.group(1) is None:
            lynis.add(m.group(0))
            continue
        lynis.update(f"{m.group(1)}-{n}" for n in [m.group(2), *m.group(3).split("/")[1:]])
    return {"lynis": lynis, "openscap": rules}
