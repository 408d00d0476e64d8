"""A build's timings as the record stored in the catalog, and as a table (plain text or rich)."""
from __future__ import annotations

from builder.bake.packer_log import Timing


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


def label(item: dict) -> str:
    """A row's name; a step inside another (recorded after it) is indented under it."""
    return f"  {item['name']}" if item.get("within") else item["name"]


def timings_text(record: dict, title: str = "") -> str:
    """A plain-text table of a timings record (for logs and `djbake images --show`)."""
    if not record:
        return "no timings recorded\n"
    rows: list[tuple[str, str, str, str]] = []
    total = float(record.get("total_seconds") or 0)
    for kind, items in _sections(record):
        for item in items:
            share = f"{100 * item['seconds'] / total:.0f}%" if total else ""
            rows.append((kind, label(item), duration(item["seconds"]), share))
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
            table.add_row(kind, label(item), duration(item["seconds"]), share)
        if items:
            table.add_section()
    table.add_row("total", "", duration(total), "", style="bold")
    return table
