"""Before/after in one run: old render+validate (one after the other) vs bench_run.render_and_validate (side by side)."""
import statistics
import tempfile
import time
from pathlib import Path
from builder import providers, spec as spec_mod
from builder.bake import render, packer as pm
from builder.bench import run as bench_run
from builder.paths import ROOT
s = spec_mod.load(ROOT/"images/django-web.yaml")
pk = pm.find()
names = list(providers.PROVIDERS)
out = Path(tempfile.mkdtemp(prefix="djbake-validate-bench-"))
def before():
    t = time.monotonic()
    rs = render.render(s, names, pk, out/"render-before")
    for n, r in zip(names, rs):
        assert render.validate(s, r, n, pk).ok
    return time.monotonic() - t
rows = []
for i in range(3):
    b = before()
    f = bench_run.render_and_validate(s, out, lambda m: None, null_runs=3)
    rows.append({"before_s": round(b,2), "after_s": f.value, "baseline_9_null_s": f.baseline,
                 "before_ratio": round(b/f.baseline,2), "after_ratio": round(f.value/f.baseline,2),
                 "after_ratio_side_by_side": f.details["ratio_side_by_side"], "null_sbs": f.details["null_side_by_side_seconds"]})
    print(rows[-1], flush=True)
med = lambda k: statistics.median(r[k] for r in rows)
print("median", {k: med(k) for k in rows[0]})
