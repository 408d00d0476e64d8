"""The guest scripts: the table in builder/stack.py matches scripts/, and every script keeps the rules.

Fast (no container): shellcheck, strict mode, idempotency helpers, and the
payload a render copies. The scripts' effect is tested by tests/image/
(in the docker loop and the VM builds).
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from builder import hardening
from builder.bake import stack
from builder.paths import ROOT

SCRIPTS = ROOT / "scripts"
GUEST = sorted(p for p in SCRIPTS.glob("*.sh"))
TOOLS = sorted((SCRIPTS / "files" / "djbake").glob("djbake-*"))


def test_every_listed_script_exists_and_every_script_is_listed():
    listed = {s.file for s in stack.SCRIPTS} | {stack.INPUTS.file, stack.SEAL.file}
    present = {p.name for p in GUEST if not p.name.startswith("lib")}
    assert listed == present, f"listed only: {listed - present}; present only: {present - listed}"


@pytest.mark.parametrize("path", GUEST + TOOLS, ids=lambda p: p.name)
def test_strict_bash(path):
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), "shebang must be #!/usr/bin/env bash"
    assert "set -euo pipefail" in text
    if path.suffix == ".sh" and not path.name.startswith("lib"):
        # The header says why the script exists and what it reads.
        assert text.splitlines()[1].startswith("# "), "second line: a comment saying what the script is for"
        assert '. "$(dirname "$0")/lib.sh"' in text


def test_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run(["shellcheck", "-x", *map(str, GUEST + TOOLS)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_scripts_read_only_environment_inputs():
    """Inputs come as DJBAKE_* variables from stack.environment(); no script invents others."""
    from builder import spec as spec_mod

    spec = spec_mod.load(ROOT / "images" / "django-web.yaml")
    spec = spec.model_copy(update={"stack": spec.stack.model_copy(update={"redis": True})})
    known = set(stack.environment(spec, "qemu")) | {
        "DJBAKE_BUILD_USER",  # seal.sh: optional override of sudo's SUDO_USER
        "DJBAKE_APP_SOURCE", "DJBAKE_APP_REQUIREMENTS",  # only with an `app:` in the spec
        "DJBAKE_WSGI_APP",  # a key of the app's env file, not an input
        "DJBAKE_NO_SWAP",  # firstboot.sh to djbake-firstboot through systemd's manager environment
        "DJBAKE_APT_PROXY",  # a Packer variable of local builds (builder/apt_cache.py), not an input
    }
    used = set()
    for path in GUEST:
        used |= set(re.findall(r"\bDJBAKE_[A-Z_]+\b", path.read_text()))
    assert used <= known, f"scripts read variables stack.environment() does not set: {used - known}"


def test_apt_installs_go_through_the_retry_wrapper():
    for path in GUEST:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"^\s*apt-get\b.*\binstall\b", line):
                pytest.fail(f"{path.name}:{n}: use apt_install (retries) instead of a bare apt-get install")
    lib = (SCRIPTS / "lib.sh").read_text()
    assert "retry 5 apt-get" in lib
    assert 'Acquire::Retries "5"' in (SCRIPTS / "files" / "apt" / "99zz-djbake-retries").read_text()


def test_apt_install_asks_apt_only_for_what_dpkg_does_not_hold(tmp_path):
    """lib.sh's apt_install against this host's real dpkg database (bash and coreutils are
    installed on every Debian host); apt-get itself is a stand-in that records what it was asked
    for, since the test may not install packages on the host. An image layer whose scripts name
    only packages the cached stack layer installed runs no apt at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    (bin_dir / "apt-get").chmod(0o755)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb_Packages").write_text("")
    script = (f". {SCRIPTS / 'lib.sh'}\n"
              "apt_use_cache() { :; }\n"           # no proxy files written on the host
              "apt_lists() { :; }\n"               # the lists: not this test's concern
              "apt_install bash coreutils\n"
              "apt_install bash djbake-no-such-package 'coreutils=1.0' libstdc++6\n")
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True, text=True, timeout=60,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SCRIPT_NAME": "test"})
    assert r.returncode == 0, r.stderr
    assert "already installed: bash coreutils" in r.stdout
    asked = calls.read_text().splitlines()
    assert len(asked) == 1, asked
    assert asked[0].endswith("install djbake-no-such-package coreutils=1.0"), asked   # libstdc++6: '+' taken literally


def test_payload_has_lib_and_files(tmp_path):
    from builder import spec as spec_mod
    from builder.bake import template

    spec = spec_mod.load(ROOT / "images" / "django-web.yaml")
    template._copy_payload(spec, tmp_path)
    names = {p.name for p in (tmp_path / "scripts").iterdir()}
    assert {"lib.sh", "seal.sh", "files"} <= names
    assert (tmp_path / "scripts" / "files" / "welcome" / "manage.py").exists()
    assert "redis.sh" not in names  # the default spec has no Redis


def test_nginx_config_has_the_444_default_and_forwarded_proto():
    conf = (SCRIPTS / "files" / "nginx" / "django.conf").read_text()
    assert re.search(r"listen 80 default_server;.*?return 444;", conf, re.S)
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    assert "unix:/run/gunicorn.sock" in conf


def test_gunicorn_units():
    socket = (SCRIPTS / "files" / "systemd" / "gunicorn.socket").read_text()
    service = (SCRIPTS / "files" / "systemd" / "gunicorn.service").read_text()
    assert "ListenStream=/run/gunicorn.sock" in socket
    for line in ("Type=notify", "KillMode=mixed", "PrivateTmp=true", "User=django"):
        assert line in service


def test_gunicorn_unit_sandbox_rates_below_the_ceiling_offline():
    """The unit file as this host's systemd rates it (the image suite rates the booted unit)."""
    analyze = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                              str(SCRIPTS / "files" / "systemd" / hardening.APP_UNIT)],
                             capture_output=True, text=True, check=False)
    if "--offline" in analyze.stderr:
        pytest.skip(f"this host's systemd-analyze has no --offline: {analyze.stderr.strip()}")
    assert hardening.exposure(analyze.stdout) <= hardening.APP_EXPOSURE_CEILING, analyze.stdout[-1500:]


def _cloud_public_ips(tmp_path, instance_data: str | None) -> subprocess.CompletedProcess:
    """djbake-env's cloud_public_ips, run alone in bash (the rest of djbake-env writes /etc)."""
    script = (SCRIPTS / "files" / "djbake" / "djbake-env").read_text()
    functions = "\n".join(re.findall(r"^(?:cloud_public_ips|public_ips)\(\) \{\n.*?^\}$", script, re.M | re.S))
    path = tmp_path / "instance-data.json"
    if instance_data is not None:
        path.write_text(instance_data)
    # PATH without cloud-init: a missing file must not fall back to a query this host cannot answer.
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{functions}\nINSTANCE_DATA={path}\ncloud_public_ips"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)


def test_public_ips_come_from_cloud_inits_instance_data_file(tmp_path):
    """What `cloud-init query --all` would print, read from the file instead (an EC2-shaped example)."""
    data = ('{"ds": {"meta_data": {"public-ipv4": "203.0.113.7", "local-ipv4": "10.0.0.5", '
            '"public-ipv6s": ["2001:db8::5"], "public-hostname": "ec2-203-0-113-7.example"}}, '
            '"v1": {"public_ssh_keys": ["ssh-ed25519 AAAA"]}}')
    r = _cloud_public_ips(tmp_path, data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["203.0.113.7", "[2001:db8::5]"]



@pytest.mark.parametrize("instance_data", [None, "not json"], ids=["no file, no cloud-init", "not JSON"])
def test_public_ips_are_best_effort(tmp_path, instance_data):
    r = _cloud_public_ips(tmp_path, instance_data)
    assert r.returncode == 0 and r.stdout.strip() == "", (r.stdout, r.stderr)
