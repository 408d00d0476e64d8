"""bench/steps.png: time per step of the benchmark's full build and rebuild (matplotlib, the `bench` extra)."""
from __future__ import annotations

from pathlib import Path

from builder.errors import UserError


def rows(timings: dict) -> list[tuple[str, float]]:
    """(label, seconds) to plot from a catalog timings record: pipeline steps (one inside another named as
    part of it: its bar is part of that step's, not beside it), then per script."""
    out = [(f"step: {s['within']} > {s['name']}" if s.get("within") else f"step: {s['name']}", s["seconds"])
           for s in timings.get("steps", [])]
    out += [(f"script: {s['name']}", s["seconds"]) for s in timings.get("scripts", [])]
    return out


def write(builds: dict[str, dict], path: Path, title: str) -> Path:
    """One horizontal bar chart per build (name -> timings record), side by side."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("matplotlib is not installed (the chart needs it)",
                        hint=".venv/bin/pip install -e '.[bench]' (make bench does this)") from None
    tallest = max((len(rows(t)) for t in builds.values()), default=1)
    fig, axes = plt.subplots(1, len(builds), figsize=(7 * len(builds), 0.32 * tallest + 1.5), squeeze=False,
                             sharex=True)
    for ax, (name, timings) in zip(axes[0], builds.items()):
        data = rows(timings)
        labels = [label for label, _ in data]
        ax.barh(range(len(data)), [s for _, s in data],
                color=["tab:blue" if label.startswith("step") else "tab:orange" for label in labels])
        ax.set_yticks(range(len(data)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("seconds")
        ax.set_title(f"{name}: {timings.get('total_seconds', 0):.0f} s in total", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
