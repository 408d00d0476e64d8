"""`djbake bench`: the benchmark report (builder/bench/run.py measures, builder/bench/report.py reports)."""
from __future__ import annotations

import json
from pathlib import Path

from builder.bake import progress
from builder.bench import chart as bench_chart
from builder.bench import report as bench
from builder.bench import run as bench_run
from builder.commands.args import spec_path
from builder.errors import UserError
from builder.paths import ROOT

PROVIDERS = ("qemu", "docker")


def write_outputs(doc: dict, directory: Path) -> list[Path]:
    """results.json, steps.png and report.md from a results document."""
    builds = {name: b["timings"] for name, b in (doc.get("builds") or {}).items() if b.get("timings")}
    written = []
    if builds:
        chart = bench_chart.write(builds, directory / "steps.png", f"djbake bench ({doc['provider']}): time per step")
        doc["chart"] = chart.name
        written.append(chart)
    bench.write_results(doc, directory / "results.json")
    (directory / "report.md").write_text(bench.report(doc))
    return [directory / "results.json", directory / "report.md", *written]


def cmd_bench(args) -> int:
    directory = Path(args.out)
    if args.report_only:
        path = directory / "results.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"no {path} to report from", hint="make bench") from None
        except ValueError as e:
            raise UserError(f"{path}: not JSON: {e}") from None
    else:
        with progress.from_args(args) as view:
            doc = bench_run.run(spec_path(args), args.provider, directory / "out", view.build,
                                audit=not args.no_audit)
    for path in write_outputs(doc, directory):
        print(path)
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "bench", cmd_bench, "measure build, rebuild, boot, size, gate and validate times against "
                                     "same-run baselines; write bench/results.json, report.md, steps.png")
    spec_args(p)
    p.add_argument("--provider", "-p", default="qemu", choices=PROVIDERS, help="provider to measure (default: qemu)")
    p.add_argument("--out", default=str(ROOT / "bench"), help="output directory (default: bench/)")
    p.add_argument("--no-audit", action="store_true",
                   help="leave out Lynis and OpenSCAP (about 50 min of a qemu run under TCG); the times are "
                        "measured the same")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite report.md and steps.png from the existing results.json")
    progress.add_arguments(p)
