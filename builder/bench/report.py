"""Benchmark figures: each measured value next to its baseline from the same run, as a ratio.

The build machines are noisy (2 cores, other builds running), so an
absolute number from one run says little; a value divided by a baseline
measured minutes earlier on the same machine says more. This module holds
no measuring: builder/bench/run.py measures, this module turns the numbers
into bench/results.json and bench/report.md (the chart: bench_chart.py).
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder import tables
from builder.bench import exceptions

MIB = 1024 * 1024


@dataclass
class Figure:
    key: str
    title: str
    value: float
    unit: str
    baseline_title: str
    baseline: float | None
    why: str = ""            # why this baseline, and any substitution made for this provider
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": None if self.ratio is None else round(self.ratio, 3)}


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when there is no usable baseline (missing, zero)."""
    if value is None or not baseline:
        return None
    return value / baseline


# -- turning measurements into figures (pure) ----------------------------------

def build_seconds(timings: dict, leave_out: tuple[str, ...] = ("fresh-boot verify", "publish")) -> float:
    """A build's time from its catalog timings record, without the steps after capture.

    From the total, not a sum of steps: a provider's sub-steps (qemu's
    "base image" inside "prepare", marked `within`) are part of their step's
    seconds, and records made before 2026-12-02 list them without the mark.
    """
    after = sum(s["seconds"] for s in timings.get("steps", []) if s["name"] in leave_out)
    return max(0.0, timings.get("total_seconds", 0.0) - after)


def full_build(full: dict, floor_seconds: float, bootstrap_seconds: float, provider: str) -> Figure:
    """Bootstrap + render ... capture (from the catalog) against booting the base and installing the packages."""
    steps = build_seconds(full)
    return Figure(
        "full_build", "full local build (bootstrap, provision, gate, capture)", round(steps + bootstrap_seconds, 1),
        "s", "floor: boot the same base, install the same packages with a plain script", round(floor_seconds, 1),
        why=("The floor is what any tool must spend: the same base booted and the same apt packages and wheels "
             "installed by one shell script. The ratio is djbake's price for its scripts' extra work, the gate, "
             "sealing and capture."),
        # The base's bootstrap is either the target's own step before the build (docker's base image) or a
        # step inside the build (qemu's "base image": mmdebstrap, or the cache's copy); the value counts each
        # once, and the details name both so a 0 for one is not read as "no bootstrap".
        details={"bootstrap_before_build_seconds": round(bootstrap_seconds, 1),
                 "base_image_step_seconds": round(sum(s["seconds"] for s in full.get("steps", [])
                                                      if s["name"] == "base image"), 1),
                 "catalog_steps_seconds": round(steps, 1), "provider": provider})


def end_to_end(full: dict, floor_seconds: float, bare_boot_seconds: float, bootstrap_seconds: float) -> Figure:
    """`make image` as a user waits for it: bootstrap and the whole recorded build, fresh-boot verification
    included, against the floor plus one bare boot to SSH (the least any verification costs)."""
    total = bootstrap_seconds + build_seconds(full, leave_out=("publish",))
    return Figure(
        "end_to_end", "`make image` end to end (bootstrap, build, gate, capture, fresh-boot verification)",
        round(total, 1), "s", "the floor plus one boot of the bare base", round(floor_seconds + bare_boot_seconds, 1),
        why=("What a user waits for from `make image` to a verified image, against what any tool must spend to "
             "install the same packages and boot the result once. Verification boots the image twice and runs "
             "the suite on each; the ratio shows what that thoroughness costs."),
        details={"verify_seconds": round(sum(s["seconds"] for s in full.get("steps", [])
                                             if s["name"] == "fresh-boot verify"), 1)})


def rebuild(rebuilt: dict, full: dict, change: str) -> Figure:
    return Figure("rebuild", f"rebuild after changing only {change}", round(build_seconds(rebuilt), 1), "s",
                  "the full build of the same run (without bootstrap)", round(build_seconds(full), 1),
                  why="A rebuild should cost only what the change touches: the lower the ratio, the better "
                      "the layering/caching.",
                  details={"change": change})


def boot(baked_http_seconds: float, base_ready_seconds: float, base_ready_what: str) -> Figure:
    return Figure("boot", "boot of the baked image to HTTP 200 through nginx", round(baked_http_seconds, 1), "s",
                  f"boot of the bare base image to {base_ready_what}", round(base_ready_seconds, 1),
                  why="What the image adds to boot time (first-boot secrets, database, services) over the "
                      "bare base becoming reachable.")


def image_size(image_bytes: int, installed_kib: int, what: str) -> list[Figure]:
    """The image against the installed size of its packages, and against Ubuntu 24.04 minimal."""
    mib = image_bytes / MIB
    return [
        Figure("size_vs_packages", f"image size ({what})", round(mib, 1), "MiB",
               "installed size of its packages (dpkg-query Installed-Size sum)", round(installed_kib / 1024, 1),
               why="Below 1: compression wins over what is installed; above 1: the image carries more than "
                   "its packages (logs, caches, the venv, the app)."),
        Figure("size_vs_ubuntu_minimal", f"image size ({what})", round(mib, 1), "MiB",
               "Ubuntu 24.04 minimal cloud image, as published", tables.UBUNTU_MINIMAL_MIB,
               why="A well-known lean reference: the smallest general-purpose cloud image of a major "
                   "distribution (without our Django stack)."),
    ]


def suite_per_check(suite_seconds: float, checks: int, round_trip_seconds: float, transport: str,
                    slowest: list[tuple[str, float]]) -> Figure:
    per_check = suite_seconds / checks if checks else 0.0
    how = "one exec on the SSH connection as the login user, no sudo" if transport == "ssh" else "docker exec"
    return Figure("suite_per_check", f"in-build gate suite time per check ({checks} checks)", round(per_check, 3),
                  "s", f"one {transport} round trip: `true` through testinfra on an open connection ({how})",
                  round(round_trip_seconds, 3),
                  why="A check cannot be faster than one command round trip to the target; the ratio is how many "
                      "round trips a check costs on average (pytest's start and collection included). The gate's "
                      "own transport (details: gate_transport_seconds) can be cheaper than the baseline: over SSH "
                      "it runs every command through one root process, without a new channel each.",
                  details={"suite_seconds": round(suite_seconds, 1), "checks": checks,
                           "slowest": [{"check": n, "seconds": round(s, 2)} for n, s in slowest]})


def render_validate(render_seconds: float, validate: dict[str, float], null_validate_seconds: float,
                    validate_wall_seconds: float | None = None,
                    null_side_by_side_seconds: float | None = None) -> Figure:
    """Render plus validate as the user waits for it (wall clock when run side by side), against n null validates.

    The baseline stays n null validates one after the other (the floor as
    defined before validates ran side by side); the same n null validates
    run side by side are in the details, for the like-for-like ratio.
    """
    waited = validate_wall_seconds if validate_wall_seconds is not None else sum(validate.values())
    total = render_seconds + waited
    n = len(validate)
    details = {"render_seconds": round(render_seconds, 2),
               "validate_seconds": {k: round(v, 2) for k, v in validate.items()},
               "validate_sum_seconds": round(sum(validate.values()), 2),
               "null_validate_seconds": round(null_validate_seconds, 2)}
    if validate_wall_seconds is not None:
        details["validate_wall_seconds"] = round(validate_wall_seconds, 2)
    if null_side_by_side_seconds:
        details["null_side_by_side_seconds"] = round(null_side_by_side_seconds, 2)
        details["ratio_side_by_side"] = round(total / null_side_by_side_seconds, 2)
    return Figure("render_validate", f"render and validate, all {n} providers", round(total, 2), "s",
                  f"{n} x `packer validate` of a minimal null-builder template, one after the other",
                  round(n * null_validate_seconds, 2),
                  why="Packer's own start-up and parsing is the floor of any validate call; the ratio is "
                      "what djbake's templates (and Packer's per-builder checks) add on top. A bare "
                      "`packer version` would leave out the template parsing every validate pays. The "
                      "providers validate side by side (wall clock); per-provider seconds overlap.",
                  details=details)


# -- the results document and the report ---------------------------------------

def machine() -> dict:
    """What the numbers were measured on (they hold for this machine only)."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def document(provider: str, figures: list[Figure], security: dict, commit: str, extra: dict | None = None,
             now: float | None = None) -> dict:
    return {
        "provider": provider,
        "git_commit": commit,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time())),
        "machine": machine(),
        "figures": [f.as_dict() for f in figures],
        "security": security,
        **(extra or {}),
    }


def write_results(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def report(doc: dict) -> str:
    """bench/report.md from a results document."""
    m = doc["machine"]
    lines = [
        f"# djbake bench: {doc['provider']}",
        "",
        f"Commit {doc['git_commit']}, {doc['timestamp']}; {m.get('cpus')} CPUs ({m.get('cpu', '?')}), "
        f"{m.get('memory_gib', '?')} GiB, load average at the end {m.get('load_average')}.",
        "Every figure is divided by a baseline measured in the same run on the same machine.",
        "",
        "| figure | value | baseline | baseline value | ratio |",
        "|---|---:|---|---:|---:|",
    ]
    for f in doc["figures"]:
        lines.append(f"| {f['title']} | {_num(f['value'], f['unit'])} | {f['baseline_title']} | "
                     f"{_num(f['baseline'], f['unit'])} | {_num(f['ratio'])} |")
    lines += ["", "## Why these baselines", ""]
    lines += [f"- **{f['key']}**: {f['why']}" for f in doc["figures"] if f.get("why")]
    subs = doc.get("substitutions") or []
    if subs:
        lines += ["", f"## Substitutions for the {doc['provider']} provider", ""]
        lines += [f"- {s}" for s in subs]
    lines += _security_lines(doc.get("security") or {})
    lines += _cache_lines(doc.get("package_cache") or {})
    suite = next((f for f in doc["figures"] if f["key"] == "suite_per_check"), None)
    if suite and suite["details"].get("slowest"):
        lines += ["", "## Slowest checks of the gate", "", "| check | seconds |", "|---|---:|"]
        lines += [f"| {c['check']} | {c['seconds']:.2f} |" for c in suite["details"]["slowest"]]
        d = suite["details"]
        if "gate_transport_seconds" in d:
            lines += ["", f"One `true` through the gate's own transport: {d['gate_transport_seconds']:.3f} s; "
                          f"the baseline's plain round trip: {suite['baseline']:.3f} s"
                      + (f"; a new SSH login per `true`: {d['login_round_trip_seconds']:.3f} s."
                         if "login_round_trip_seconds" in d else ".")]
    rv = next((f for f in doc["figures"] if f["key"] == "render_validate"), None)
    if rv:
        lines += ["", "## Validate per provider", "", "| provider | seconds |", "|---|---:|"]
        lines += [f"| {p} | {s:.2f} |" for p, s in rv["details"]["validate_seconds"].items()]
        d = rv["details"]
        if "validate_wall_seconds" in d:
            lines += ["", f"The validates ran side by side: {d['validate_wall_seconds']:.2f} s wall clock for "
                          f"{d['validate_sum_seconds']:.2f} s of per-provider time."]
        if "ratio_side_by_side" in d:
            lines += [f"Against the same null validates run side by side ({d['null_side_by_side_seconds']:.2f} s): "
                      f"ratio {d['ratio_side_by_side']:.2f}."]
    if doc.get("chart"):
        lines += ["", "## Time per step", "", f"![time per step]({doc['chart']})"]
    return "\n".join(lines) + "\n"


def _security_lines(sec: dict) -> list[str]:
    if not sec:
        return []
    lines = ["", "## Hardening and listening ports", ""]
    if sec.get("audited") is False:
        lines.append("- Lynis and OpenSCAP: not run (`djbake bench --no-audit`).")
    known = exceptions.documented()
    lyn = sec.get("lynis") or {}
    if lyn:
        lines.append(f"- Lynis {lyn.get('version', '?')} hardening index: baked image **{lyn.get('baked')}**, "
                     f"bare base {lyn.get('base')} (difference {_signed(lyn.get('baked'), lyn.get('base'))}).")
        lines += _lynis_findings_lines(lyn.get("findings") or {}, known["lynis"])
    lines += _openscap_lines(sec.get("openscap") or {}, known["openscap"])
    ports = sec.get("ports") or {}
    if ports:
        if ports.get("ok"):
            verdict = f"exactly {ports.get('want')}, as required"
        else:
            verdict = f"NOT exactly {ports.get('want')}"
            if ports.get("missing"):
                verdict += f"; not listening: {ports['missing']}"
            verdict += ("; nothing else listens publicly" if ports.get("none_beyond")
                        else "; MORE than the allowed ports listen publicly")
        lines.append(f"- Listening on public addresses (TCP): {ports.get('public_tcp')}: {verdict}.")
        if ports.get("public_udp"):
            lines.append(f"- UDP on public addresses: {ports.get('public_udp')}.")
        if ports.get("dhcp_client"):
            lines.append(f"- The DHCP client's UDP {ports['dhcp_client']} (receives the lease; the firewall "
                         "admits only a DHCP server's replies), not a service.")
        if ports.get("local"):
            lines.append(f"- Loopback only: {ports.get('local')}.")
    return lines


def _cache_lines(cache: dict) -> list[str]:
    if not cache:
        return []
    if not cache.get("proxy"):
        return ["", "## Package cache", "", "- No host package cache ran (`make apt-cache`): every build fetched "
                "its packages from the mirror."]
    lines = ["", "## Package cache", "", f"Builds fetched through the host's apt-cacher-ng ({cache['proxy']}).", "",
             "| build | fetched from the mirror | .deb fetched | served by the cache | .deb served |",
             "|---|---:|---:|---:|---:|"]
    for name in ("full", "rebuild"):
        t = cache.get(name) or {}
        lines.append(f"| {name} | {t.get('fetched', 0) / 2**20:.1f} MiB | {t.get('packages_fetched', 0)} | "
                     f"{t.get('served', 0) / 2**20:.1f} MiB | {t.get('packages_served', 0)} |")
    return lines


def _signed(a, b) -> str:
    if a is None or b is None:
        return "-"
    return f"{a - b:+d}"


def _documented(names, known: set[str]) -> str:
    """Each name, the ones docs/security.md's Exceptions table does not name in bold."""
    return ", ".join(n if n in known else f"**{n}** (not in docs/security.md)" for n in names)


def _lynis_findings_lines(findings: dict, known: set[str]) -> list[str]:
    """The baked image's Lynis warnings and suggestions, each marked documented or not."""
    lines = []
    for kind in ("warnings", "suggestions"):
        items = findings.get(kind) or []
        if not items:
            continue
        missing = sorted({test for test, _ in items} - known)
        lines.append(f"  Lynis {kind} on the baked image ({len(items)}; "
                     + (f"not in docs/security.md's exceptions: {', '.join(missing)}" if missing
                        else "every one in docs/security.md's exceptions") + "):")
        lines += [f"  - {test}: {what}" for test, what in items]
    return lines


def _openscap_lines(scap: dict, known: set[str]) -> list[str]:
    """Pass/fail/notapplicable and score per target (builder/bench/openscap.py)."""
    lines = []
    for target in ("baked", "base"):
        r = scap.get(target)
        if not r:
            continue
        what = "baked image" if target == "baked" else "bare base"
        if r.get("error"):
            lines.append(f"- OpenSCAP ({what}): not measured: {r['error']}")
            continue
        widened = f", its platform check widened to Debian {r['widened_to']}" if r.get("widened_to") else ""
        lines.append(f"- OpenSCAP `{r.get('profile')}` ({r.get('content')}{widened}), {what}: "
                     f"**{r.get('pass')} pass**, {r.get('fail')} fail, {r.get('notapplicable')} notapplicable, "
                     f"{r.get('notchecked')} notchecked; {r.get('passing_percent')}% of applicable rules pass; "
                     f"score {r.get('score')}.")
        if target == "baked" and r.get("failed"):
            lines.append(f"  Failing on the baked image: {_documented(r['failed'], known)}.")
    return lines
