"""OpenSCAP in a booted bench target: the ComplianceAsCode profile closest to CIS Level 1 server.

The scanner (openscap-scanner) and the content (ssg-debian / ssg-debderived) come from the target's
own distribution archive, through the same package cache as the builds; they are installed into the
throw-away target, run, and purged again (with everything they pulled in), so the bench's later steps
see the target as it was but for apt's lists. The image itself never carries them.

Which content and profile (checked 2026-11-30 against ssg 0.1.76, trixie's):
- Debian: ComplianceAsCode has no CIS profile for Debian; the closest is ANSSI BP-028 intermediary
  (kernel and network parameters, SSH, PAM, sudo, file permissions, services). trixie's ssg-debian
  ships datastreams for Debian 11 and 12 only: Debian 13 is scanned with the Debian 12 content, its
  platform check (/etc/debian_version is 12.x) widened to 13.x, or every rule would be
  "notapplicable".
- Ubuntu 22.04: CIS Level 1 server from the archive's ssg-debderived. Ubuntu 24.04: noble's
  ssg-debderived (0.1.71) has no 24.04 datastream (trixie's 0.1.76 has), and 26.04 none at all:
  reported as not measured, with that reason.

The parsers are pure functions, tested on a real scan's output (tests/test_bench.py).
"""
from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from dataclasses import dataclass

PROFILE_PREFIX = "xccdf_org.ssgproject.content_profile_"
RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
CONTENT_DIR = "/usr/share/xml/scap/ssg/content"
RESULTS = "/tmp/djbake-oscap-results.xml"
SCORE_MARK = "--- djbake: score ---"
RULE_RESULT = re.compile(r"^Rule[\r\n\t ]+(\S+)[\r\n\t ]+Result[\r\n\t ]+(\S+)", re.M)


@dataclass(frozen=True)
class Content:
    package: str          # the distribution's ssg package
    datastream: str       # file in CONTENT_DIR
    profile: str          # without PROFILE_PREFIX
    widen_to: str = ""    # a Debian major release the datastream's platform check is widened to accept


CONTENTS = {
    "debian-13": Content("ssg-debian", "ssg-debian12-ds.xml", "anssi_bp28_intermediary", widen_to="13"),
    "debian-12": Content("ssg-debian", "ssg-debian12-ds.xml", "anssi_bp28_intermediary"),
    "ubuntu-22.04": Content("ssg-debderived", "ssg-ubuntu2204-ds.xml", "cis_level1_server"),
}
MISSING = {
    "ubuntu-24.04": "noble's ssg-debderived (0.1.71) has no Ubuntu 24.04 datastream",
    "ubuntu-26.04": "the archive's ComplianceAsCode content has no Ubuntu 26.04 datastream",
}

# Results that say nothing about the system: the rule does not apply, or was not selected.
NOT_APPLICABLE = ("notapplicable", "notselected", "informational")


def command(content: Content, apt_proxy: str = "") -> str:
    """A POSIX shell script for the target (as root): install, scan, purge; prints oscap's output and
    the score. The scan's own exit status (2 when a rule fails) is not the script's."""
    apt = "apt-get -q" + (f" -o Acquire::http::Proxy={shlex.quote(apt_proxy)}" if apt_proxy else "")
    datastream = f"{CONTENT_DIR}/{content.datastream}"
    widen = ""
    if content.widen_to:
        # The one OVAL object that reads /etc/debian_version for the platform: ^12.[0-9]+$ becomes
        # ^(12|13)[.][0-9]+$ (sed's BRE: only the brackets need escaping on the left).
        widened = f">^(12|{content.widen_to})[.][0-9]+$</ind:pattern>"
        widen = (f"sed 's#>^12.\\[0-9\\]+$</ind:pattern>#{widened}#' {datastream} >/tmp/djbake-ds.xml\n"
                 f"grep -qF '{widened}' /tmp/djbake-ds.xml || {{ echo 'djbake: no platform check to widen'; exit 3; }}\n")
        datastream = "/tmp/djbake-ds.xml"
    return (
        "set -e\nexport DEBIAN_FRONTEND=noninteractive\n"
        "dpkg-query -W -f '${Package}\\n' | sort >/tmp/djbake-pkgs-before\n"
        f"{apt} update >/dev/null\n"
        f"{apt} -y --no-install-recommends install openscap-scanner {content.package} >/dev/null\n"
        f"{widen}"
        f"oscap xccdf eval --profile {PROFILE_PREFIX}{content.profile} --results {RESULTS} {datastream} "
        "2>&1 || true\n"
        f"echo '{SCORE_MARK}'\n"
        f"grep -o '<score system=\"urn:xccdf:scoring:default\"[^<]*</score>' {RESULTS} || true\n"
        "dpkg-query -W -f '${Package}\\n' | sort >/tmp/djbake-pkgs-after\n"
        f"{apt} -y purge $(comm -13 /tmp/djbake-pkgs-before /tmp/djbake-pkgs-after) >/dev/null\n"
        f"rm -f /tmp/djbake-pkgs-* /tmp/djbake-ds.xml {RESULTS}\n"
    )


def parse(output: str) -> dict:
    """Counts per result, the failing rules, and the score, from `oscap xccdf eval` output (Rule/Result
    lines) and the results file's default score after SCORE_MARK."""
    results: Counter = Counter()
    failed = []
    # "Rule\r\tid": oscap writes a carriage return before the tab when its output is no terminal
    # (and a text-mode read may have made it a newline).
    for rule, result in RULE_RESULT.findall(output):
        rule = rule.removeprefix(RULE_PREFIX)
        results[result] += 1
        if result not in NOT_APPLICABLE and result not in ("pass", "notchecked", "fixed"):
            failed.append(rule if result == "fail" else f"{rule} ({result})")
    if not results:
        raise ValueError("no rule results in the scanner's output (did oscap run?): " + output[-300:])
    score = re.search(r'<score system="urn:xccdf:scoring:default"[^>]*>([0-9.]+)</score>',
                      output.split(SCORE_MARK, 1)[-1])
    passed = results["pass"] + results["fixed"]
    applicable = sum(n for r, n in results.items() if r not in NOT_APPLICABLE and r != "notchecked")
    return {"pass": passed, "fail": results["fail"], "notapplicable": results["notapplicable"],
            "notchecked": results["notchecked"],
            "other": {r: n for r, n in sorted(results.items())
                      if r not in ("pass", "fixed", "fail", "notapplicable", "notchecked")},
            "applicable": applicable,
            "passing_percent": round(100 * passed / applicable, 1) if applicable else None,
            "score": round(float(score.group(1)), 1) if score else None,
            "failed": sorted(failed)}


def scan(session, os_name: str, apt_proxy: str = "", timeout: float = 1800) -> dict:
    """The scan of one booted target (a bench Session, as root); an unsupported OS or a failed install
    is reported in the result, not raised: the rest of the bench still stands."""
    content = CONTENTS.get(os_name)
    if content is None:
        return {"error": MISSING.get(os_name, f"no ComplianceAsCode content for {os_name}")}
    started = time.monotonic()
    code, out = session.run(command(content, apt_proxy), timeout=timeout)
    meta = {"content": f"{content.package} {content.datastream}", "profile": content.profile,
            "widened_to": content.widen_to or None, "seconds": round(time.monotonic() - started, 1)}
    if code != 0:
        return {**meta, "error": f"exit {code}: {out[-400:]}"}
    try:
        return {**meta, **parse(out)}
    except ValueError as e:
        return {**meta, "error": str(e)}
