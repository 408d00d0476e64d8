"""Fresh boot to HTTP 200 of two docker images of the default spec, before and after a first-boot change.

Usage: firstboot_boot_to_200.py IMAGE_BEFORE IMAGE_AFTER [ROUNDS]
Each round boots one container of each image, alternating which goes first, as the docker verifier
does (builder/docker/base_image.RUN_KWARGS: systemd as PID 1), and times from `docker run` to the
first 200 for GET / through nginx inside the container; it also reads djbake-firstboot.service's own
start-to-exit time from systemd. Medians and the after/before ratio are printed.
"""
import statistics
import sys
import time

from builder.docker import base_image as b
from builder.docker import client as client_mod

before, after = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
CURL = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: localhost", "http://127.0.0.1/"]
UNIT = ["systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "-p", "ExecMainExitTimestampMonotonic",
        "-p", "Result", "djbake-firstboot.service"]

client = client_mod.connect()


def boot(image: str) -> tuple[float, float]:
    started = time.monotonic()
    box = client.containers.run(image, detach=True, labels={b.LABEL: "bench-firstboot"}, **b.RUN_KWARGS)
    try:
        while True:
            if time.monotonic() - started > 900:
                raise SystemExit(f"{image}: no 200 within 900 s")
            code, out = box.exec_run(CURL)
            if out.decode().strip() == "200":
                to_200 = time.monotonic() - started
                break
            time.sleep(0.5)
        props = dict(line.split("=", 1) for line in box.exec_run(UNIT)[1].decode().splitlines() if "=" in line)
        if props.get("Result") != "success":
            raise SystemExit(f"{image}: djbake-firstboot {props}")
        unit = (int(props["ExecMainExitTimestampMonotonic"]) - int(props["ExecMainStartTimestampMonotonic"])) / 1e6
        return to_200, unit
    finally:
        b.stop(box)


res: dict[str, list[tuple[float, float]]] = {before: [], after: []}
for i in range(rounds):
    for image in ((before, after) if i % 2 == 0 else (after, before)):
        to_200, unit = boot(image)
        res[image].append((to_200, unit))
        print(f"round {i + 1} {image}: HTTP 200 after {to_200:.1f} s, djbake-firstboot {unit:.1f} s", flush=True)
med = {img: (statistics.median(t for t, _ in v), statistics.median(u for _, u in v)) for img, v in res.items()}
for img, (t, u) in med.items():
    print(f"median {img}: HTTP 200 after {t:.1f} s, djbake-firstboot {u:.1f} s")
print(f"after / before: boot to 200 {med[after][0] / med[before][0]:.2f}, first boot unit {med[after][1] / med[before][1]:.2f}")
