"""The sealed docker artifact itself, read without starting anything, and what its verification ran.

The committed image's file system is exported (`docker export` of a created, never started
container) and read as a tar stream on the runner: no user with a password hash, no
authorized_keys, no private key, no shell history, no non-empty log. This is independent of the
image suite's `sealed` run (testinfra in a container without init, builder/providers/docker.py),
whose junit results are checked here too, with the fresh boots' restart-after-kill -9 and
backup-restore round trip (tests/image/test_resilience.py, test_backup.py). The build's bill of
materials is compared with the packages the image really holds.

The image is the session's default docker build (tests/conftest.py `built_image`): built once,
or reused with DJBAKE_TEST_DOCKER_BUILD=OUT:LOG.
"""
from __future__ import annotations

import json
import subprocess
import tarfile
import xml.etree.ElementTree as ET

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from builder import hardening
from builder.bake import sbom
from builder.catalog import store as catalog
from tests.docker_build import built_id, reused_build

pytestmark = pytest.mark.docker

# Where a key or a secret would be left by a build (system packages' own files are under /usr).
KEY_DIRS = ("etc/", "root/", "home/", "srv/", "var/lib/", "var/backups/", "opt/", "tmp/", "var/tmp/")
HISTORY = (".bash_history", ".python_history", ".psql_history", ".mysql_history", ".lesshst", ".viminfo")


def scan_export(image: str) -> dict[str, list[str]]:
    """Read the exported file system of `image` once; return what marketplace checks would flag."""
    cid = subprocess.run(["docker", "create", image, "true"], capture_output=True, text=True, check=True).stdout.strip()
    found: dict[str, list[str]] = {"shadow": [], "authorized_keys": [], "private_keys": [], "history": [], "logs": []}
    try:
        with subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE) as proc:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name, base = member.name.lstrip("./"), member.name.rsplit("/", 1)[-1]
                    if name == "etc/shadow":
                        found["shadow"] = hardening.shadow_problems(tar.extractfile(member).read().decode())
                    elif base in ("authorized_keys", "authorized_keys2") and member.size:
                        found["authorized_keys"].append(name)
                    elif base in HISTORY and member.size:
                        found["history"].append(name)
                    elif name.startswith("var/log/") and member.size:
                        found["logs"].append(name)
                    elif (name.startswith(KEY_DIRS) and 0 < member.size < (1 << 20)
                          and b"PRIVATE KEY-----" in tar.extractfile(member).read()):
                        found["private_keys"].append(name)
            assert proc.wait() == 0, "docker export failed"
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    return found


def test_sealed_artifact_is_marketplace_clean(built_image):
    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    found = scan_export(built_id(build_dir))
    assert found == {k: [] for k in found}, {k: v[:10] for k, v in found.items() if v}


def junit_cases(path) -> dict[str, str]:
    """test name (without the host parameter) -> passed | failed | skipped."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                state = "failed"
            elif child.tag == "skipped":
                state = "skipped"
        cases[case.get("name").split("[", 1)[0]] = state
    return cases


def test_verification_ran_the_hygiene_and_restart_checks(built_image):
    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the image did not build")
    sealed = junit_cases(build_dir / "verify" / "sealed.junit.xml")
    for name in ("test_sealed_no_password_hashes", "test_sealed_no_ssh_access_or_history",
                 "test_sealed_logs_and_apt_lists_empty", "test_firewall_enabled_for_every_boot"):
        assert sealed.get(name) == "passed", (name, sealed.get(name))
    first = junit_cases(build_dir / "verify" / "fresh-boot-a.junit.xml")
    for name in ("test_services_come_back_after_kill_9", "test_restart_policies", "test_no_failed_units",
                 "test_sysctl_hardening_configured", "test_unused_modules_refused", "test_no_core_dumps",
                 "test_sshd_strong_algorithms_and_limits", "test_journal_capped", "test_backup_timer_enabled",
                 "test_backup_restore_round_trip", "test_backup_retention_keeps_the_newest"):
        assert first.get(name) == "passed", ("fresh-boot-a", name, first.get(name))
    # The second boot: what first boot made and started for this container (gate.SECOND_BOOT), not the disk's
    # checks again.
    second = junit_cases(build_dir / "verify" / "fresh-boot-b.junit.xml")
    for name in ("test_no_failed_units", "test_services_enabled_and_running", "test_firstboot_unit_ran",
                 "test_host_keys_and_machine_id_exist", "test_record_secret_hashes", "test_booted_only_per_vm_secrets"):
        assert second.get(name) == "passed", ("fresh-boot-b", name, second.get(name))
    assert "test_services_come_back_after_kill_9" not in second and "test_journal_capped" not in second


def test_bill_of_materials_lists_what_the_image_holds(built_image):
    """The gate's SBOM (builder/bake/sbom.py) against the sealed image itself, read independently."""
    proc, build_dir = built_image
    assert proc.returncode == 0, proc.stdout[-3000:]
    text = (build_dir / sbom.FILE).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    listed = {c["name"] for c in doc["components"] if c["purl"].startswith("pkg:deb/")}
    wheels = {c["name"].lower() for c in doc["components"] if c["purl"].startswith("pkg:pypi/")}
    installed = subprocess.run(["docker", "run", "--rm", "--entrypoint", "dpkg-query", built_id(build_dir), "-W",
                                "-f", "${db:Status-Abbrev} ${Package}\\n"], capture_output=True, text=True, check=True)
    assert listed == {line.split()[1] for line in installed.stdout.splitlines() if line.startswith("ii")}
    assert {"nginx", "postgresql", "python3", "openssh-server"} <= listed
    assert {"django", "gunicorn"} <= wheels
    # uv, outside dpkg and the venv, with the version the image's binary reports
    uv_version = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/usr/local/bin/uv", built_id(build_dir),
                                 "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert [(c["type"], c["version"]) for c in doc["components"] if c["name"] == "uv"] == [("application", uv_version)]
    # recorded with the entry: the summary in extra, the document itself by its sha256
    if reused_build() is None:   # a reused build was recorded in whatever catalog made it
        (entry,) = [e for e in catalog.Catalog().query(provider="docker", state=None)
                    if e.artifact == built_id(build_dir)]
        assert entry.extra["sbom"]["components"] == len(doc["components"])
        assert catalog.Catalog().sbom(entry.extra["sbom"]["sha256"]) == text
