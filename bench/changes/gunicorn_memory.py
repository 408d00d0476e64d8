"""gunicorn's memory in two docker images of the default spec, booted as the docker verifier boots them.

Usage: gunicorn_memory.py IMAGE [IMAGE...]
Each image is booted once (builder/docker/base_image.RUN_KWARGS: systemd as PID 1), waited for until
nginx answers 200 for GET /, sent 20 more requests, and gunicorn's master and workers are read from
/proc/PID/smaps_rollup: their proportional set size (Pss: shared pages divided among the processes
sharing them) summed, and the workers' private dirty pages summed. Written for the row "gunicorn
preloads the app" of docs/benchmarks.md.
"""
import sys
import time

from builder.docker import base_image as b
from builder.docker import client as client_mod

CURL = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: localhost", "http://127.0.0.1/"]
# pid, Rss, Pss, Private_Dirty (KiB) of the master, then of each worker.
READ = ("main=$(systemctl show -p MainPID --value gunicorn.service); for p in $main $(pgrep -P $main); do "
        "awk -v p=$p '/^Rss:/ {r = $2} /^Pss:/ {s = $2} /^Private_Dirty:/ {d = $2} END {print p, r, s, d}' "
        "/proc/$p/smaps_rollup; done")

client = client_mod.connect()
for image in sys.argv[1:]:
    box = client.containers.run(image, detach=True, labels={b.LABEL: "bench-gunicorn-memory"}, **b.RUN_KWARGS)
    try:
        deadline = time.monotonic() + 600
        while box.exec_run(CURL)[1].decode().strip() != "200":
            if time.monotonic() > deadline:
                raise SystemExit(f"{image}: no 200 within 600 s")
            time.sleep(0.5)
        for _ in range(20):
            box.exec_run(CURL)
        rows = [[int(x) for x in line.split()] for line in box.exec_run(["sh", "-c", READ])[1].decode().splitlines()
                if line.strip()]
        pss = sum(r[2] for r in rows)
        private = sum(r[3] for r in rows[1:])
        print(f"{image}: {len(rows) - 1} workers; Pss of master and workers {pss / 1024:.1f} MiB; "
              f"the workers' private dirty pages {private / 1024:.1f} MiB")
    finally:
        b.stop(box)
