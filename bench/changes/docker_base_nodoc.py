"""Docker base before/after the dpkg path-excludes, in one run, under private tags; engine sizes."""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from builder import nodoc
from builder.bake import apt_cache
from builder.docker import base_image as b
from builder.docker import client as client_mod

OS = sys.argv[1] if len(sys.argv) > 1 else "debian-13"
REPO = "djbake-speed/base"
INSIDE = ("du -sk /usr/share/doc /usr/share/man /usr/share/locale /usr/share/info 2>/dev/null; "
          "echo copyright files: $(ls /usr/share/doc/*/copyright | wc -l)")

client = client_mod.connect()
res = {}
for label in ("before", "after"):
    with tempfile.TemporaryDirectory(prefix="djbake-base-bench-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        cmd = b.mmdebstrap_command(OS, tar)
        if label == "before":
            cmd = [c for c in cmd if c not in nodoc.mmdebstrap_options()]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=apt_cache.host_env(print))
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        seconds = time.monotonic() - started
        client.api.import_image(src=str(tar), repository=REPO, tag=label, changes=list(b.changes(OS)))
    img = client.images.get(f"{REPO}:{label}")
    inside = client.containers.run(img.id, entrypoint=["sh", "-c", INSIDE], remove=True).decode()
    res[label] = {"mib": round(img.attrs["Size"] / 2**20, 1), "mmdebstrap_seconds": round(seconds), "inside": inside}
    print(label, json.dumps(res[label]), flush=True)
    client.images.remove(f"{REPO}:{label}")
print("after / before:", round(res["after"]["mib"] / res["before"]["mib"], 3))
