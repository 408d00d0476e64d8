"""What the image suite's hardening checks expect (scripts/harden.sh, scripts/files/ssh/10-djbake.conf,
scripts/seal.sh), and the parsers they read the image's configuration with. Plain functions, so
tests/test_hardening_checks.py shows on the runner that each check fails on a broken configuration."""
from __future__ import annotations

import re

# CIS Level 1 / Lynis KRNL-6000 values (scripts/files/sysctl/99-zz-djbake-hardening.conf).
# ip_local_port_range is left out: /proc/sys writes it with a tab, the file with spaces.
SYSCTL = {
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.tcp_syncookies": "1",
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "kernel.yama.ptrace_scope": "1",
    "dev.tty.ldisc_autoload": "0",
    "kernel.randomize_va_space": "2",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "fs.protected_symlinks": "1",
    "fs.protected_hardlinks": "1",
    "fs.suid_dumpable": "0",
    # ANSSI BP-028 (OpenSCAP's profile for Debian; docs/security.md names the ones left out).
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.accept_local": "0",
    "net.ipv4.conf.all.route_localnet": "0",
    "net.ipv4.conf.all.shared_media": "0",
    "net.ipv4.conf.default.shared_media": "0",
    "net.ipv4.conf.all.arp_filter": "0",
    "net.ipv4.conf.all.drop_gratuitous_arp": "1",
    "net.ipv4.tcp_rfc1337": "1",
    "kernel.panic_on_oops": "1",
    "kernel.perf_cpu_time_max_percent": "1",
    "kernel.perf_event_max_sample_rate": "1",
    "vm.mmap_min_addr": "65536",
}

# scripts/files/modprobe/djbake-blacklist.conf
UNUSED_MODULES = ("dccp", "sctp", "rds", "tipc", "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "udf",
                  "usb-storage", "firewire-core", "firewire-ohci")

STRONG_CIPHERS = {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                  "aes256-ctr", "aes192-ctr", "aes128-ctr"}
STRONG_MACS = {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"}
STRONG_KEX = {"mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512",
              "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
              "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"}

# `systemd-analyze security gunicorn.service`: 0 is the tightest sandbox, 10 none ("OK" ends at
# 4.9). The unit file rates 1.6 (8.5 before its sandbox) on systemd 252 (Debian 12, this host)
# and 257 (Debian 13), and on Ubuntu 26.04's; the margin is for another version's weights.
APP_UNIT = "gunicorn.service"
APP_EXPOSURE_CEILING = 2.0


def exposure(analyze_security: str, unit: str = APP_UNIT) -> float:
    """The overall exposure from `systemd-analyze security UNIT` output."""
    m = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", analyze_security)
    if not m:
        raise ValueError(f"no overall exposure for {unit} in: {analyze_security[-300:]}")
    return float(m.group(1))


def effective_settings(cat_config: str) -> dict[str, str]:
    """`systemd-analyze cat-config sysctl.d` (every file, in the order systemd-sysctl reads them)
    to the value each key ends with: the last assignment wins. A leading '-' (ignore failures) is
    dropped; '/' separators are '.' (sysctl.d(5)); glob keys are kept as written."""
    out: dict[str, str] = {}
    for raw in cat_config.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        key = key.lstrip("-").replace("/", ".")
        out[key] = value
    return out


def sysctl_problems(values: dict[str, str]) -> list[str]:
    """Keys of SYSCTL whose value (configured or read from /proc/sys) is not the expected one."""
    return [f"{k} = {values.get(k, '(unset)')}, want {v}" for k, v in SYSCTL.items() if values.get(k) != v]


def ini_value(cat_config: str, key: str) -> str | None:
    """The last `key=value` of a systemd configuration as `systemd-analyze cat-config` prints it."""
    value = None
    for raw in cat_config.splitlines():
        line = raw.strip()
        if line.startswith(f"{key}="):
            value = line.split("=", 1)[1].strip()
    return value


def size_bytes(text: str) -> int:
    """journald.conf(5) sizes: bytes with an optional K, M, G, T suffix (base 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def sshd_problems(cfg: dict[str, str]) -> list[str]:
    """What is weak in `sshd -T` output (keyword -> value)."""
    problems = []
    for key, strong in (("ciphers", STRONG_CIPHERS), ("macs", STRONG_MACS), ("kexalgorithms", STRONG_KEX)):
        weak = set(cfg.get(key, "").split(",")) - strong
        if weak:
            problems.append(f"{key}: {sorted(weak)} not in the strong set")
    if int(cfg.get("maxauthtries", "6")) > 4:
        problems.append(f"maxauthtries {cfg.get('maxauthtries')} > 4")
    if int(cfg.get("logingracetime", "120")) > 60:
        problems.append(f"logingracetime {cfg.get('logingracetime')} > 60")
    if cfg.get("x11forwarding") != "no":
        problems.append(f"x11forwarding {cfg.get('x11forwarding')}")
    if cfg.get("banner", "none") == "none":
        problems.append("no banner")
    # Lynis SSH-7408: fingerprints of the keys used in the log; no compression; dead clients
    # found by sshd's own encrypted keepalives (ClientAlive*), not spoofable TCP keepalives.
    for key, want in (("loglevel", "VERBOSE"), ("compression", "no"), ("tcpkeepalive", "no")):
        if cfg.get(key, "").lower() != want.lower():
            problems.append(f"{key} {cfg.get(key)} (want {want})")
    if int(cfg.get("clientalivecountmax", "3")) > 2:
        problems.append(f"clientalivecountmax {cfg.get('clientalivecountmax')} > 2")
    return problems


def shadow_problems(shadow: str) -> list[str]:
    """Users of /etc/shadow with a password hash or an empty password. Locked and hashless is
    '*', '!' or '!*' (a '!'-locked account that keeps its hash still ships the hash)."""
    problems = []
    for line in shadow.splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        user, pw = fields[0], fields[1]
        if pw == "":
            problems.append(f"{user}: empty password")
        elif pw.lstrip("!*") != "":
            problems.append(f"{user}: password hash {pw[:4]}...")
    return problems
