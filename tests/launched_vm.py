"""What test_qemu_e2e does on the VM `djbake launch` started, where kernel and firewall are real:
plant kernel and firewall faults and run the image suite's checks on them (issue 21), reboot it and
fill its disk (issue 20 point 4). Shell runs over SSH as the launch user (passwordless sudo).

QEMU_FAULTS follows tests/test_planted_faults.py's FAULTS (what, plant, the checks that must fail),
with the shell that takes the fault out again: the same VM must pass those checks once it is gone.
"""
from __future__ import annotations

import hashlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from builder.qemu import vm

# Each per-VM value that a reboot must keep, hashed inside the VM (only digests leave it).
IDENTITY = {
    "machine_id": "cat /etc/machine-id",
    "host_keys": "cat /etc/ssh/ssh_host_*_key.pub",
    "secrets": "grep -E '^(DJANGO_SECRET_KEY|DJANGO_DB_PASSWORD)=' /etc/djbake/app.env",
    "firstboot_stamp": "stat -c %Y /var/lib/djbake/firstboot.done",   # first boot ran once, not again
}


@dataclass
class Guest:
    machine: vm.VM
    user: str
    key: Path

    def sh(self, command: str, timeout: float = 300, retries: int = 5):
        """command as root (sudo sh -c) over SSH."""
        return self.machine.ssh(self.user, self.key, f"sudo sh -c {shlex.quote(command)}", timeout=timeout,
                                retries=retries)

    def out(self, command: str, timeout: float = 300) -> str:
        proc = self.sh(command, timeout)
        assert proc.returncode == 0, (command, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout.strip()


def identity(guest: Guest) -> dict[str, str]:
    found = {}
    for name, command in IDENTITY.items():
        value = guest.out(command)
        assert value, (name, command)
        found[name] = hashlib.sha256(value.encode()).hexdigest()
    return found


def boot_id(guest: Guest) -> str:
    proc = guest.machine.ssh(guest.user, guest.key, "cat /proc/sys/kernel/random/boot_id", timeout=60, retries=0)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def reboot(guest: Guest, timeout: float = 900) -> float:
    """`systemctl reboot` in the guest (QEMU keeps running: a warm reboot of the same VM); seconds until
    SSH answers from the new boot."""
    before = boot_id(guest)
    assert before
    started = time.monotonic()
    guest.machine.ssh(guest.user, guest.key, "sudo systemctl reboot", timeout=60, retries=0)
    deadline = started + timeout
    while time.monotonic() < deadline:
        assert guest.machine.alive(), "QEMU exited during the reboot"
        try:
            now = boot_id(guest)
        except Exception:   # noqa: BLE001 - ssh timing out while the guest is down
            now = ""
        if now and now != before:
            return time.monotonic() - started
        time.sleep(5)
    raise AssertionError(f"no SSH from a new boot after {timeout:.0f} s")


# -- planted faults -----------------------------------------------------------------------------

@dataclass(frozen=True)
class QemuFault:
    what: str          # the fault as a user would name it
    plant: str         # root shell; exits 0 only if the fault is in place
    remove: str        # root shell that takes it out again; exits 0 only if it is gone
    checks: frozenset[str]   # module::test that must fail while it is in place (and only they)


SYSCTLS = "net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.log_martians"
FIREWALL_RULE = "meta l4proto { tcp, udp } accept"

QEMU_FAULTS: dict[str, QemuFault] = {
    "kernel_redirects": QemuFault(
        "the running kernel accepts ICMP redirects and logs no martians",
        "sysctl -qw net.ipv4.conf.all.accept_redirects=1 net.ipv4.conf.all.log_martians=0"
        f" && test \"$(sysctl -n {SYSCTLS} | tr '\\n' ' ')\" = '1 0 '",
        # what systemd-sysctl applies at boot, from the image's sysctl.d
        f"/usr/lib/systemd/systemd-sysctl && test \"$(sysctl -n {SYSCTLS} | tr '\\n' ' ')\" = '0 1 '",
        frozenset({"test_hardening::test_sysctl_hardening_applied"})),
    "firewall_accepts_all": QemuFault(
        "an nftables rule accepting every TCP and UDP port",
        f"nft insert rule inet filter input {FIREWALL_RULE}"
        " && nft list chain inet filter input | grep -qF 'meta l4proto { tcp, udp } accept'",
        "for h in $(nft -a list chain inet filter input | sed -n 's/.*meta l4proto { tcp, udp } accept # handle //p');"
        " do nft delete rule inet filter input handle \"$h\"; done"
        " && ! nft list chain inet filter input | grep -qF 'meta l4proto { tcp, udp }'",
        frozenset({"test_network::test_firewall_refuses_a_spare_port_from_outside"})),
}
# Where the faults' checks live: the planted run and the clean run cover these modules whole, so a
# fault that broke any other check of them would show as an unexpected failure.
FAULT_MODULES = ("test_network.py", "test_hardening.py")


def failed_checks(failed: list[str]) -> set[str]:
    """module::test of SuiteResult.failed entries ("module::test (first line)")."""
    return {f.split(" ", 1)[0] for f in failed}


# -- full disk ----------------------------------------------------------------------------------

FILL = "/var/tmp/djbake-disk-fill"
TABLE = "djbake_fill"
ROWS_BEFORE = 1000
WRITE_LIMIT = 300   # inserts of ~256 KiB; the disk is full long before


def psql(db: str, sql: str) -> str:
    return f"runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d {shlex.quote(db)} -c {shlex.quote(sql)}"


def app_database(guest: Guest) -> str:
    name = guest.out("sed -n 's/^DJANGO_DB_NAME=//p' /etc/djbake/app.env")
    assert name, "app.env names no DJANGO_DB_NAME"
    return name


def fill_disk(guest: Guest) -> str:
    """Allocate everything an unprivileged process may use on / (fallocate: instant, writes no data);
    root's reserved blocks stay, so root's own logging and logins go on. Returns df's line after."""
    return guest.out(f"avail=$(df --output=avail -B1 / | tail -1); fallocate -l \"$avail\" {FILL}"
                     " && df --output=avail,size -B1 / | tail -1")


def write_until_full(guest: Guest, db: str) -> tuple[int, str]:
    """Insert rows (each its own transaction, incompressible enough to need new pages) until one fails:
    (rows committed, the error)."""
    insert = psql(db, f"insert into {TABLE}(pad) select string_agg(md5(random()::text), '') "
                      "from generate_series(1, 8000)")
    # The error is kept in a shell variable: written to a file under /root it came back empty on the full disk.
    script = (f"n=0; err=''; for i in $(seq {WRITE_LIMIT}); do "
              f"if ! err=$({insert} 2>&1 >/dev/null); then break; fi; n=$((n+1)); err=''; done; "
              "echo \"$n\"; printf '%s' \"$err\" | head -c 400")
    lines = guest.out(script, timeout=1800).splitlines()
    return int(lines[0]), " ".join(lines[1:])
