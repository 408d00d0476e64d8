"""The docker verifier's second fresh boot, running every fresh-boot check (before) or the per-VM ones (after).

Usage: second_boot_split.py IMAGE [ROUNDS]
Each round starts two containers of IMAGE one after the other, as builder/providers/docker.py does,
alternating which selection goes first, and runs the image suite on each through builder.bake.gate
(`fresh_boot=True`: every fresh-boot check, as both boots did before; `second_boot=True`: the
`per_vm` checks, as the second boot does now). It times each from the container's start to the
suite's end and prints medians and the after/before ratio. Both selections must pass.
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

from builder.bake import gate
from builder.docker import base_image as b
from builder.docker import client as client_mod

image = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
client = client_mod.connect()
work = Path(tempfile.mkdtemp(prefix="djbake-second-boot-"))


def boot(second_boot: bool, n: int) -> tuple[float, gate.SuiteResult]:
    started = time.monotonic()
    box = b.start(image, f"bench-second-boot-{n}", client)
    try:
        r = gate.run_suite(gate.Target(container=box.id), None, log_dir=work, name=f"run-{n}",
                           fresh_boot=True, second_boot=second_boot, record=work / f"run-{n}.json")
    finally:
        b.stop(box)
    if not r.ok:
        raise SystemExit(f"run {n}: {r.summary} (log: {r.log})")
    return time.monotonic() - started, r


res: dict[str, list[float]] = {"every check": [], "per_vm": []}
n = 0
for i in range(rounds):
    for second in ((False, True) if i % 2 == 0 else (True, False)):
        n += 1
        seconds, r = boot(second, n)
        label = "per_vm" if second else "every check"
        res[label].append(seconds)
        print(f"round {i + 1} {label}: {seconds:.1f} s, {r.summary}", flush=True)
med = {label: statistics.median(v) for label, v in res.items()}
for label, m in med.items():
    print(f"median {label}: {m:.1f} s")
print(f"after / before (second boot, start to suite end): {med['per_vm'] / med['every check']:.2f}")
