"""Before/after in one run: render+validate of the nine providers with one shell provisioner per
script (BEFORE, a checkout of the commit before) and with one for all the scripts (this tree),
each measured by bench_run.render_and_validate with its own null baseline, alternated.

Usage: python bench/changes/validate_one_provisioner.py BEFORE_CHECKOUT [ROUNDS]
(BEFORE_CHECKOUT has its own .venv; `make deps` there).
"""
import json
import statistics
import subprocess
import sys
from pathlib import Path

FIGURE = """
import json, tempfile
from pathlib import Path
from builder import spec
from builder.bench import run
from builder.paths import ROOT
f = run.render_and_validate(spec.load(ROOT / "images/django-web.yaml"), Path(tempfile.mkdtemp()), lambda m: None,
                            null_runs=3)
print(json.dumps({"seconds": f.value, "null": f.baseline, "ratio": round(f.value / f.baseline, 2),
                  "ratio_side_by_side": f.details["ratio_side_by_side"]}))
"""


def measure(tree: Path) -> dict:
    out = subprocess.run([str(tree / ".venv/bin/python"), "-c", FIGURE], cwd=tree, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


before, here = Path(sys.argv[1]).resolve(), Path(__file__).resolve().parents[2]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
rows = []
for _ in range(rounds):
    rows.append({"before": measure(before), "after": measure(here)})
    print(json.dumps(rows[-1]), flush=True)
for side in ("before", "after"):
    print(side, {k: statistics.median(r[side][k] for r in rows) for k in rows[0][side]})
