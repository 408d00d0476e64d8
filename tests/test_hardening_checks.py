"""The image suite's hardening checks (builder/hardening.py, used by tests/image/test_hardening.py
and test_hygiene.py) pass on the image's own configuration files and fail on broken ones."""
from __future__ import annotations

import subprocess

import pytest

from builder import hardening
from builder.paths import ROOT

FILES = ROOT / "scripts" / "files"


def cat_config(*files) -> str:
    """What `systemd-analyze cat-config` prints: each file after a '# path' line."""
    return "\n".join(f"# /etc/x/{i}.conf\n{text}" for i, text in enumerate(files))


def test_the_images_sysctl_file_passes():
    text = (FILES / "sysctl" / "99-zz-djbake-hardening.conf").read_text()
    assert hardening.sysctl_problems(hardening.effective_settings(cat_config(text))) == []


def test_sysctl_fails_when_missing_or_turned_back_later():
    assert len(hardening.sysctl_problems({})) == len(hardening.SYSCTL)
    ours = (FILES / "sysctl" / "99-zz-djbake-hardening.conf").read_text()
    later = "net.ipv4.conf.all.accept_redirects = 1\n-kernel/dmesg_restrict=0\n"
    problems = hardening.sysctl_problems(hardening.effective_settings(cat_config(ours, later)))
    assert problems == ["net.ipv4.conf.all.accept_redirects = 1, want 0", "kernel.dmesg_restrict = 0, want 1"]
    # An earlier file is overridden by ours (the order systemd-sysctl applies them in).
    assert hardening.sysctl_problems(hardening.effective_settings(cat_config(later, ours))) == []


def test_every_blacklisted_module_is_refused_by_the_file():
    lines = (FILES / "modprobe" / "djbake-blacklist.conf").read_text().splitlines()
    for module in hardening.UNUSED_MODULES:
        assert f"install {module} /bin/false" in lines, module


def test_sshd_config_of_the_image_passes_and_weak_settings_fail():
    conf = (FILES / "ssh" / "10-djbake.conf").read_text().splitlines()
    cfg = {line.split(" ", 1)[0].lower(): line.split(" ", 1)[1] for line in conf if line and not line.startswith("#")}
    assert hardening.sshd_problems(cfg) == []
    weak = dict(cfg, ciphers=cfg["ciphers"] + ",aes128-cbc", macs="hmac-sha1", maxauthtries="6",
                logingracetime="120", x11forwarding="yes", banner="none",
                kexalgorithms="diffie-hellman-group14-sha1," + cfg["kexalgorithms"],
                loglevel="INFO", compression="yes", tcpkeepalive="yes", clientalivecountmax="3")
    problems = hardening.sshd_problems(weak)
    assert len(problems) == 11, problems
    assert "ciphers: ['aes128-cbc'] not in the strong set" in problems


def test_shadow_with_a_hash_or_an_empty_password_fails():
    sealed = "root:*:20000:0:99999:7:::\ndaemon:*:20000::::::\ndjbake:!:20000::::::\nx:!*:1::::::\n"
    assert hardening.shadow_problems(sealed) == []
    broken = sealed + "djbake2:!$y$j9T$abc:20000::::::\nlinode:$6$salt$hash:1::::::\nopen::1::::::\n"
    assert hardening.shadow_problems(broken) == [
        "djbake2: password hash !$y$...", "linode: password hash $6$s...", "open: empty password"]


def test_journald_cap_and_sizes():
    text = (FILES / "systemd" / "journald-cap.conf").read_text()
    assert hardening.size_bytes(hardening.ini_value(cat_config(text), "SystemMaxUse")) == 200 << 20
    assert hardening.ini_value(cat_config(text, "[Journal]\nSystemMaxUse=4G\n"), "SystemMaxUse") == "4G"
    assert hardening.ini_value(cat_config("[Journal]\n#SystemMaxUse=\n"), "SystemMaxUse") is None
    assert hardening.size_bytes("1.5G") == 3 << 29


def test_login_umask_file_is_valid_shell_setting_027():
    out = subprocess.run(["sh", "-c", f". {FILES / 'login' / 'umask.sh'}; umask"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0027"


def test_the_sysctl_file_sorts_after_the_distributions_own():
    """systemd-sysctl applies sysctl.d files in name order across /etc and /usr/lib: ours must come last.
    The names are those of our bases (Debian 12/13, Ubuntu 22.04-26.04), read from their images."""
    ours = next((FILES / "sysctl").glob("*.conf")).name
    vendor = ["10-coredump-debian.conf", "10-kernel-hardening.conf", "10-network-security.conf", "50-default.conf",
              "50-pid-max.conf", "55-kernel-hardening.conf", "55-network-security.conf", "99-protect-links.conf",
              "99-sysctl.conf"]
    assert sorted([*vendor, ours])[-1] == ours


def test_exposure_parser_reads_systemd_analyze_and_refuses_other_output():
    # The last lines of `systemd-analyze security gunicorn.service` (systemd 257, Debian 13).
    out = ("✗ UMask=                    Files created by service are world-readable by default    0.1\n\n"
           "→ Overall exposure level for gunicorn.service: 1.6 OK :-)\n")
    assert hardening.exposure(out) == 1.6
    assert hardening.exposure(out.replace("1.6 OK :-)", "8.5 EXPOSED 🙁")) > hardening.APP_EXPOSURE_CEILING
    with pytest.raises(ValueError, match="no overall exposure for gunicorn.service"):
        hardening.exposure("Unit gunicorn.service not found.\n")
    with pytest.raises(ValueError):
        hardening.exposure(out, "nginx.service")
