"""Host hardening (scripts/harden.sh, scripts/ssh.sh): kernel and network parameters, unused
modules refused, no core dumps, strong SSH, banner, umask, capped journal, restart policies.
Expectations and parsers: builder/hardening.py."""
import contextlib
import shlex

import batch
import pytest

from builder import hardening

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]


def cat_config(host, what: str) -> str:
    with host.sudo():
        return host.check_output(f"systemd-analyze cat-config {what}")


def test_sysctl_hardening_configured(host):
    """What systemd-sysctl applies at boot: every sysctl.d file in its order, the last value wins
    (a later drop-in that turns a setting back is caught here, also in a container)."""
    problems = hardening.sysctl_problems(hardening.effective_settings(cat_config(host, "sysctl.d")))
    assert not problems, problems


@pytest.mark.kernel
def test_sysctl_hardening_applied(host):
    """The running kernel's values (a VM: a container shares its host's kernel)."""
    with host.sudo():
        values = batch.proc_sys(host, list(hardening.SYSCTL))
    problems = hardening.sysctl_problems(values)
    assert not problems, problems


def test_unused_modules_refused(host):
    """modprobe (dry run) would run /bin/false instead of loading each one."""
    would = batch.modprobe_dry_runs(host, list(hardening.UNUSED_MODULES))
    problems = [f"{m}: {would.get(m) or '(no answer)'}" for m in hardening.UNUSED_MODULES
                if "install /bin/false" not in would.get(m, "")]
    assert not problems, problems


def test_no_core_dumps(host):
    with host.sudo():
        service = host.check_output("systemd-run --wait --pipe --quiet sh -c 'ulimit -Hc'")
    assert service == "0", f"hard core limit of a service (systemd's DefaultLimitCORE): {service}"
    storage = hardening.ini_value(cat_config(host, "systemd/coredump.conf"), "Storage")
    assert storage == "none", f"systemd-coredump Storage={storage}"
    # PAM sessions (pam_limits), started from an unlimited parent so that the limit is theirs.
    # Not through sudo where the suite is root already (docker): sudo drops its own hard limit to 0.
    sessions, sudo = {}, host.user().uid != 0
    for user in ("root", "nobody"):
        cmd = f"prlimit --core=unlimited:unlimited runuser -l {user} -s /bin/sh -c 'ulimit -Hc'"
        with host.sudo() if sudo else contextlib.nullcontext():
            out = host.run(cmd)
        # A container without CAP_SYS_RESOURCE (the docker loop, the cloud stand-ins) cannot raise the
        # limit to start a session from; a VM's root can, so there the check always runs.
        if out.rc != 0 and "prlimit" in out.stderr and "Operation not permitted" in out.stderr:
            pytest.skip(f"cannot start a session from an unlimited parent here: {out.stderr.strip()[:120]}")
        sessions[user] = out.stdout.strip()
    assert sessions == {"root": "0", "nobody": "0"}, f"hard core limit of login sessions: {sessions}"


def test_sshd_strong_algorithms_and_limits(host):
    with host.sudo():
        out = host.check_output("sshd -T")
    cfg = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert not hardening.sshd_problems(cfg), hardening.sshd_problems(cfg)
    banner = host.file(cfg["banner"])
    assert banner.exists and "Authorized" in banner.content_string, f"banner {cfg['banner']}"


def test_login_shells_umask_027_services_022(host):
    with host.sudo():
        login = host.check_output("runuser -l root -s /bin/bash -c umask")
        service = host.check_output("systemd-run --wait --pipe --quiet sh -c umask")
    assert login == "0027", f"login shell umask {login}"
    assert service == "0022", f"service umask {service}: the app's files would change mode"


def test_journal_capped(host):
    cap = hardening.ini_value(cat_config(host, "systemd/journald.conf"), "SystemMaxUse")
    assert cap and hardening.size_bytes(cap) <= 1 << 30, f"SystemMaxUse={cap}"


def test_app_logs_rotated(host):
    with host.sudo():
        out = host.run("logrotate --debug /etc/logrotate.conf")
    assert "/var/log/django/*.log" in out.stdout + out.stderr, "no logrotate rule reads /var/log/django"
    assert host.service("logrotate.timer").is_enabled


# Through libpwquality itself (python3 is in every image): the verdict pam_pwquality gives a password.
PWQUALITY_CHECK = r"""
import ctypes, sys
lib = ctypes.CDLL("libpwquality.so.1")
lib.pwquality_default_settings.restype = ctypes.c_void_p
settings = ctypes.c_void_p(lib.pwquality_default_settings())
if lib.pwquality_read_config(settings, None, None) != 0:
    sys.exit("pwquality.conf unreadable")
for pw in sys.argv[1:]:
    print(pw, lib.pwquality_check(settings, pw.encode(), None, None, None))
"""


def test_password_quality(host):
    """Any password set later: 15 characters of 4 classes, not a dictionary word (OpenSCAP ANSSI BP-028,
    Lynis AUTH-9262); pam_pwquality in the password stack, so passwd applies it."""
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string
    weak = ["Tr0ub4dor&3", "correcthorsebatterystaple", "CorrectHorseBatteryStaple1"]   # short; 1 class; no symbol
    strong = "qK7#vB2!mZ9@xW4$"
    out = host.check_output(" ".join(shlex.quote(a) for a in ["python3", "-c", PWQUALITY_CHECK, *weak, strong]))
    scores = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    assert all(scores[w] < 0 for w in weak), f"accepted (a score >= 0): {scores}"
    assert scores[strong] >= 0, f"a strong password refused: {scores}"


def test_sudo_defaults(host):
    """ignore_dot and use_pty in sudo's effective policy; /etc/sudoers.d closed to others."""
    if not host.exists("sudo"):
        pytest.skip("sudo is not installed")
    with host.sudo():
        policy = host.check_output("sudo -V")
        mode = host.check_output("stat -c %a /etc/sudoers.d")
    assert "Ignore '.' in $PATH" in policy, policy[-2000:]
    assert "Always run commands in a pseudo-tty" in policy, policy[-2000:]
    assert mode == "750", f"/etc/sudoers.d mode {mode}"


# path: the most it may allow (CIS Level 1; Lynis FILE-7524, HOME-9304); absent paths are skipped.
MAX_MODES = {"/etc/ssh/sshd_config": 0o600, "/etc/crontab": 0o600, "/etc/cron.d": 0o700,
             "/etc/cron.hourly": 0o700, "/etc/cron.daily": 0o700, "/etc/cron.weekly": 0o700,
             "/etc/cron.monthly": 0o700, "/var/lib/postgresql": 0o750}


def test_restricted_permissions(host):
    with host.sudo():
        out = host.check_output("stat -c '%n %a' " + " ".join(MAX_MODES) + " 2>/dev/null || true")
    modes = {line.split()[0]: int(line.split()[1], 8) for line in out.splitlines() if line.strip()}
    assert "/etc/ssh/sshd_config" in modes, out
    loose = {p: oct(m) for p, m in modes.items() if m & ~MAX_MODES[p]}
    assert not loose, f"more open than {', '.join(f'{p} {oct(MAX_MODES[p])}' for p in loose)}: {loose}"


# Shell start-up files (ComplianceAsCode's list) at most 0740: no group write or execute, nothing for
# others, no set-id or sticky bit (ANSSI BP-028, file_permission_user_init_files).
STARTUP_FILES = (".bashrc", ".zshrc", ".cshrc", ".profile", ".bash_login", ".bash_profile")


def test_shell_startup_files_closed_to_others(host):
    """In /etc/skel and in the home of every login user (uid >= 1000, not nobody: on a booted VM
    cloud-init's default user, made from /etc/skel)."""
    names = " -o ".join(f"-name {n}" for n in STARTUP_FILES)
    script = ("{ echo /etc/skel; getent passwd | awk -F: '$3 >= 1000 && $3 != 65534 {print $6}'; } | "
              f"while read -r d; do [ -d \"$d\" ] && find \"$d\" -maxdepth 1 -type f \\( {names} \\) -printf '%p %m\\n'; "
              "done; true")
    with host.sudo():
        out = host.check_output(script)
    modes = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1], 8) for line in out.splitlines() if line.strip()}
    assert "/etc/skel/.bashrc" in modes, out
    loose = {path: oct(mode) for path, mode in modes.items() if mode & 0o7037}
    assert not loose, f"shell start-up files more open than 0740: {loose}"


# The audit rules' keys (scripts/files/audit/djbake.rules), each loaded into the kernel on a VM.
AUDIT_KEYS = ("identity", "scope", "privileged", "sshd", "pam", "firewall", "sysctl", "modules")


def test_app_service_is_sandboxed(host):
    """gunicorn's sandbox as systemd rates it, every drop-in applied, and as the running process
    has it: no capability in its bounding set, no way to gain privileges, a seccomp filter."""
    with host.sudo():
        out = host.run(f"systemd-analyze security --no-pager {hardening.APP_UNIT}")
        rated = hardening.exposure(out.stdout + out.stderr)
        pid = host.check_output(f"systemctl show -p MainPID --value {hardening.APP_UNIT}")
        status = host.check_output(f"cat /proc/{pid}/status") if pid not in ("", "0") else ""
    assert rated <= hardening.APP_EXPOSURE_CEILING, \
        f"{hardening.APP_UNIT} exposure {rated} > {hardening.APP_EXPOSURE_CEILING}: {out.stdout[-800:]}"
    assert status, f"{hardening.APP_UNIT} is not running (MainPID {pid!r})"
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    got = {k: fields.get(k, "?").strip() for k in ("CapBnd", "NoNewPrivs", "Seccomp")}
    assert got == {"CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}, \
        f"gunicorn's main process runs with {got} (want no capabilities, no new privileges, a filter)"


def test_auditd_installed_vm_only(host):
    """auditd and djbake's rule set are in every image; the unit is conditioned to VMs (a container
    has no audit interface, and a failed unit there is what the condition avoids)."""
    assert host.package("auditd").is_installed
    with host.sudo():
        rules = host.file("/etc/audit/rules.d/djbake.rules").content_string
        units = ["auditd.service"] + (["audit-rules.service"] if host.run("systemctl cat audit-rules.service").rc == 0
                                      else [])
        text = {u: host.check_output(f"systemctl cat {u}") for u in units}
    assert all(f"-k {k}" in rules for k in AUDIT_KEYS), rules
    for unit, content in text.items():
        assert "ConditionVirtualization=!container" in content, f"{unit} has no container condition:\n{content}"


@pytest.mark.kernel
def test_auditd_rules_loaded(host):
    """On a VM auditd runs and the kernel holds the rules (`auditctl -l`), audit enabled."""
    assert host.service("auditd").is_running
    with host.sudo():
        status = host.check_output("auditctl -s")
        loaded = host.check_output("auditctl -l")
    assert "enabled 1" in status, status
    missing = [k for k in AUDIT_KEYS if f"key={k}" not in loaded and f"-k {k}" not in loaded]
    assert not missing, f"audit rules not loaded for keys {missing}:\n{loaded}"


def test_apparmor_installed(host):
    assert host.package("apparmor").is_installed


@pytest.mark.kernel
def test_apparmor_enforcing(host):
    """On a VM the kernel's AppArmor is on and the profiles are loaded, some in enforce mode (Lynis
    MACF-6208): the unit ran, and nothing turned the module off at boot (apparmor=0)."""
    with host.sudo():
        enabled = host.run("aa-status --enabled")
        enforced = host.run("aa-status --enforced")
    assert enabled.rc == 0, f"AppArmor is not enabled: {enabled.stdout}{enabled.stderr}"
    assert enforced.rc == 0 and enforced.stdout.strip().isdigit() and int(enforced.stdout) > 0, \
        f"no AppArmor profile in enforce mode: {enforced.stdout}{enforced.stderr}"


@pytest.mark.kernel
def test_dev_shm_nosuid_nodev_noexec(host):
    """/dev/shm mounted without set-uid, devices or executables (CIS Level 1; from /etc/fstab at boot)."""
    options = set(host.check_output("findmnt -n -o OPTIONS /dev/shm").split(","))
    missing = {"nosuid", "nodev", "noexec"} - options
    assert not missing, f"/dev/shm lacks {sorted(missing)}: {sorted(options)}"


def test_idle_login_shells_time_out(host):
    """An interactive login shell gets a read-only TMOUT of 600 s and a core limit of 0; a
    non-interactive one (automation over SSH) gets no TMOUT."""
    with host.sudo():
        interactive = host.run("runuser -l nobody -s /bin/bash -c "
                               + shlex.quote("bash -lic 'echo TMOUT=$TMOUT; readonly -p | grep -c TMOUT; "
                                             "ulimit -c' 2>/dev/null"))
        batch_shell = host.run("runuser -l nobody -s /bin/bash -c 'echo TMOUT=${TMOUT:-none}'")
    lines = interactive.stdout.split()
    assert lines[:3] == ["TMOUT=600", "1", "0"], interactive.stdout
    assert batch_shell.stdout.strip() == "TMOUT=none", batch_shell.stdout
