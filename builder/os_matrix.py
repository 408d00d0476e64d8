"""The OS matrix: bake, gate and fresh-boot verify the default spec on each OS in the docker loop.

`make test-matrix` runs it (`python -m builder.os_matrix [OS ...]`). The OS
list is the OS table's (tables.OPERATING_SYSTEMS, those mmdebstrap can build
here), so a new row is in the next run. Each OS gets the default spec
(images/django-web.yaml) with only `os` and `name` changed, and goes through
`djbake image --provider docker` as a user's would: base from packages,
stack scripts, the in-build gate, seal, two fresh boots. Its row in
docs/os-matrix.md says what happened, with the build time from the catalog's
timings and the committed image's size.

An OS is skipped, with the reason in its row, only for a cause outside the
project: its archive cannot be reached, or its systemd cannot run as PID 1 in
a container on this host (systemd 258 and later need cgroup v2: on a cgroup
v1 host with the unified hierarchy beside it ("hybrid", as our CI's) djbake's
init wrapper gives them one, builder/data/container-init.sh; on a pure v1
host nothing can).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from builder import distro, locks, tables
from builder.catalog import store as catalog
from builder.docker import base_image as docker_base
from builder.os_facts import django_python_mismatch
from builder.paths import ROOT

SPEC = ROOT / "images" / "django-web.yaml"
DOC = ROOT / "docs" / "os-matrix.md"
BEGIN, END = "<!-- os-matrix:begin -->", "<!-- os-matrix:end -->"
# systemd dropped cgroup v1 in release 258.
SYSTEMD_NEEDS_CGROUP2 = 258


@dataclass
class Row:
    os: str
    codename: str
    python: str
    result: str                  # verified | FAILED | skipped
    seconds: float | None = None
    size_mib: float | None = None
    systemd: str = ""
    note: str = ""
    run: str = ""                # when this row was measured (UTC), and where


def oses() -> list[str]:
    """Every OS of the table that can be built from packages here, in the table's order."""
    return [name for name, os_ in tables.OPERATING_SYSTEMS.items() if os_.bootstrappable]


def image_name(os_name: str) -> str:
    return "matrix-" + re.sub(r"[^a-z0-9]+", "-", os_name.lower())


def spec_for(os_name: str, directory: Path) -> Path:
    """The default spec on os_name, docker only (other providers' settings stay out of the way)."""
    data = yaml.safe_load(SPEC.read_text())
    data["name"] = image_name(os_name)
    data["os"] = os_name
    data["description"] = f"OS matrix: the default spec on {os_name}"
    if django_python_mismatch(os_name, str(data["stack"]["django"])):
        # The OS's Python cannot run the default Django (Debian 12, Ubuntu 22.04): the LTS, as the spec's error advises.
        data["stack"]["django"] = tables.DJANGO_LTS
    data["providers"] = {"docker": {}}
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def host_cgroups() -> str:
    """"v2" (unified), "hybrid" (v1 with cgroup2 at /sys/fs/cgroup/unified) or "v1"."""
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "v2"
    if Path("/sys/fs/cgroup/unified/cgroup.controllers").exists():
        return "hybrid"
    return "v1"


def systemd_version(image: str) -> str:
    """The systemd package version in a docker image ("" when it cannot be read)."""
    proc = subprocess.run(["docker", "run", "--rm", "--entrypoint", "dpkg-query", image, "-W", "-f", "${Version}",
                           "systemd"], capture_output=True, text=True, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def cannot_boot_here(systemd: str, cgroups: str) -> str:
    """Why systemd of this version cannot be PID 1 in a container on this host, or ""."""
    match = re.match(r"(\d+)", systemd)
    if cgroups == "v1" and match and int(match.group(1)) >= SYSTEMD_NEEDS_CGROUP2:
        return (f"systemd {match.group(1)} needs cgroup v2 and this host has no unified cgroup hierarchy: "
                f"it cannot boot in a container here (QEMU is unaffected)")
    return ""


def skip_reason(os_name: str, log=print) -> tuple[str, str]:
    """(reason to skip or "", systemd version): checked before the bake, base built if needed."""
    os_ = tables.OPERATING_SYSTEMS[os_name]
    reason = distro.unreachable(os_)
    if reason:
        return reason, ""
    base = docker_base.ensure(os_name, log=log)
    systemd = systemd_version(base.reference)
    return cannot_boot_here(systemd, host_cgroups()), systemd


def image_size_mib(reference: str) -> float | None:
    proc = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", reference], capture_output=True, text=True)
    return round(int(proc.stdout.strip()) / 2**20, 1) if proc.returncode == 0 and proc.stdout.strip() else None


def bake(os_name: str, work: Path, log=print) -> Row:
    """Run one OS through `djbake image -p docker`; its row for the table."""
    os_ = tables.OPERATING_SYSTEMS[os_name]
    row = Row(os_name, os_.codename, os_.python, "skipped")
    reason, row.systemd = skip_reason(os_name, log)
    if reason:
        row.note = reason
        log(f"{os_name}: skipped: {reason}")
        return row
    spec = spec_for(os_name, work)
    started = time.time()
    log(f"{os_name}: djbake image -p docker --spec {spec}")
    proc = subprocess.run([sys.executable, "-m", "builder", "image", "-p", "docker", "--spec", str(spec),
                           "--out", str(work / "build"), "--plain"], cwd=ROOT, capture_output=True, text=True)
    (work / f"{image_name(os_name)}.log").write_text(proc.stdout + proc.stderr)
    entry = catalog.Catalog().latest("docker", image=image_name(os_name))
    fresh = entry is not None and entry.created_at >= started
    if proc.returncode == 0 and "(verified," in proc.stdout and fresh and entry.verified:
        row.result = "verified"
        django = yaml.safe_load(spec.read_text())["stack"]["django"]
        if django == tables.DJANGO_LTS:
            row.note = f"Django {django} (LTS): this OS's Python cannot run the default Django"
        row.seconds = entry.timings.get("total_seconds")
        row.size_mib = image_size_mib(entry.artifact)
    else:
        row.result = "FAILED"
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        row.note = (lines[-1] if lines else f"exit {proc.returncode}")[:300]
    log(f"{os_name}: {row.result} {row.note}")
    return row


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"


HEADER = "| OS | codename | python3 | systemd | result | build time | image size | run | note |"


def table(rows: list[str], when: dt.datetime) -> str:
    lines = [
        f"Last written {when:%Y-%m-%d %H:%M} UTC by `make test-matrix` (docker loop: bake, in-build gate, "
        "seal, two fresh boots); each row says when and where it was measured.",
        "",
        HEADER,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    return "\n".join(lines)


def row_line(r: Row) -> str:
    size = f"{r.size_mib:.0f} MiB" if r.size_mib is not None else "-"
    note = r.note.replace("|", "\\|")
    return (f"| {r.os} | {r.codename} | {r.python} | {r.systemd or '-'} | {r.result} | {minutes(r.seconds)} | "
            f"{size} | {r.run} | {note} |")


def _existing_rows(block: str) -> dict[str, str]:
    """The table lines already in the doc, by OS (a run of some OSes keeps the others' rows)."""
    found = {}
    for line in block.splitlines():
        cells = line.split("|")
        if line.startswith("| ") and len(cells) > 2 and cells[1].strip() in tables.OPERATING_SYSTEMS:
            found[cells[1].strip()] = line
    return found


def write_doc(rows: list[Row], doc: Path = DOC, when: dt.datetime | None = None) -> None:
    """Put rows into the table between the markers of doc; other OSes' rows and the prose stay."""
    when = when or dt.datetime.now(dt.timezone.utc)
    where = f"{os.cpu_count()} cores, cgroups {host_cgroups()}"
    for r in rows:
        r.run = r.run or f"{when:%Y-%m-%d %H:%M}, {where}"
    # Several runs (OSES=...) may finish at once: one writer at a time.
    with locks.exclusive(ROOT / "build" / ".os-matrix.lock", "waiting for another matrix run to write", print):
        text = doc.read_text() if doc.exists() else f"# OS matrix\n\n{BEGIN}\n{END}\n"
        if BEGIN not in text or END not in text:
            raise ValueError(f"{doc}: the markers {BEGIN} and {END} are missing")
        head, rest = text.split(BEGIN, 1)
        block, tail = rest.split(END, 1)
        lines = _existing_rows(block)
        lines.update({r.os: row_line(r) for r in rows})
        order = [n for n in tables.OPERATING_SYSTEMS if n in lines] + [n for n in lines if n not in tables.OPERATING_SYSTEMS]
        tmp = doc.with_suffix(".tmp")
        tmp.write_text(f"{head}{BEGIN}\n{table([lines[n] for n in order], when)}\n{END}{tail}")
        os.replace(tmp, doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.os_matrix", description=__doc__.split("\n")[0])
    parser.add_argument("oses", nargs="*", help=f"OSes to run (default: all of the table's: {' '.join(oses())})")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the results table")
    args = parser.parse_args(argv)
    unknown = [o for o in args.oses if o not in tables.OPERATING_SYSTEMS]
    if unknown:
        print(f"os_matrix: unknown OS {unknown[0]!r}; known: {', '.join(tables.OPERATING_SYSTEMS)}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="djbake-matrix-") as tmp:
        for name in args.oses or oses():
            rows.append(bake(name, Path(tmp)))
            write_doc([rows[-1]], args.doc)   # each row as it is measured: a later failure keeps it
            logs = Path(tmp) / f"{image_name(name)}.log"
            if rows[-1].result == "FAILED" and logs.exists():
                keep = ROOT / "build" / "matrix"
                keep.mkdir(parents=True, exist_ok=True)
                (keep / logs.name).write_text(logs.read_text())
                rows[-1].note += f" (log: build/matrix/{logs.name})"
    print(json.dumps([r.__dict__ for r in rows], indent=2))
    return 1 if any(r.result == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
