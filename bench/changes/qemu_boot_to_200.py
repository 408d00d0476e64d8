"""Fresh boot to HTTP 200 of two qemu images (qcow2), before and after a boot change, alternated.

Usage: qemu_boot_to_200.py BEFORE.qcow2 AFTER.qcow2 [ROUNDS]
Each round boots each image once as `make bench` boots the baked image (builder/bench/targets.py:
a throw-away `-snapshot` VM, 1 vCPU, a NoCloud seed like a user's), alternating which goes first,
and times from QEMU's start to the first HTTP 200 through nginx. From the booted VM it also reads
systemd's userspace time to multi-user.target and the units that took longest (systemd-analyze).
Medians and the after/before ratio are printed. Nothing else should run QEMU meanwhile.
"""
import statistics
import sys
import tempfile
from pathlib import Path

from builder.bench import targets

before, after = Path(sys.argv[1]), Path(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
# The units that used the most CPU time since boot (systemd's per-unit accounting): on a 1-vCPU
# VM under emulation, CPU spent by any unit before the site answers delays it.
CPU_BY_UNIT = ("systemctl show -p Id -p CPUUsageNSec $(systemctl list-units --type=service --all --no-legend "
               "--plain | awk '{print $1}') | awk 'BEGIN {RS = \"\"; FS = \"\\n\"} {id = cpu = \"\"; "
               "for (i = 1; i <= NF; i++) {split($i, a, \"=\"); if (a[1] == \"Id\") id = a[2]; "
               "if (a[1] == \"CPUUsageNSec\") cpu = a[2]} "
               "if (cpu ~ /^[0-9]+$/) printf \"%6.1f s cpu %s\\n\", cpu / 1e9, id}' | sort -rn | head -12")
ANALYZE = ("systemd-analyze time | head -1; systemd-analyze critical-chain --no-pager gunicorn.service "
           "| tail -n +3; " + CPU_BY_UNIT)


def boot(target: targets.QemuTarget, disk: Path) -> float:
    with target.baked(str(disk)) as (seconds, session):
        code, out = session.run(ANALYZE, timeout=300)
        print(f"  {disk.name}: HTTP 200 after {seconds:.1f} s\n" + "".join(f"    {line}\n" for line in
                                                                         out.splitlines()), flush=True)
        return seconds


with tempfile.TemporaryDirectory(prefix="djbake-boot-ab-") as work:
    target = targets.QemuTarget(Path(work))
    res: dict[Path, list[float]] = {before: [], after: []}
    for i in range(rounds):
        print(f"round {i + 1}", flush=True)
        for disk in ((before, after) if i % 2 == 0 else (after, before)):
            res[disk].append(boot(target, disk))
med = {disk: statistics.median(v) for disk, v in res.items()}
for disk, v in res.items():
    print(f"median {disk}: HTTP 200 after {med[disk]:.1f} s ({', '.join(f'{s:.1f}' for s in v)})")
print(f"after / before: boot to HTTP 200 {med[after] / med[before]:.2f}")
