"""The services a Django server runs: enabled for every boot and running now."""
import re
import time

import batch
import pytest
from conftest import show

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]


def expected_units(facts) -> list[str]:
    units = ["gunicorn.socket", "gunicorn.service", "fail2ban.service", "unattended-upgrades.service",
             "nftables.service", "ssh.service"]
    if facts.nginx:
        units.append("nginx.service")
    if facts.local_db:
        units.append("postgresql.service")
    if facts.redis:
        units.append("redis-server.service")
    return units


@pytest.mark.per_vm
def test_services_enabled_and_running(host, facts):
    problems = []
    for unit, (enabled, active) in batch.unit_states(host, expected_units(facts)).items():
        if enabled not in batch.ENABLED_STATES:
            problems.append(f"{unit} not enabled ({enabled})")
        if active != "active":
            problems.append(f"{unit} not active ({active})")
    assert not problems, "; ".join(problems)


def journal_tail(host, unit: str, lines: int = 25) -> str:
    """The unit's last log lines, so a failure report says why (the VM is gone when it is read)."""
    with host.sudo():
        return host.run(f"journalctl -u {unit} -n {lines} --no-pager -o cat").stdout.strip()


@pytest.mark.per_vm
def test_no_failed_units(host):
    failed = host.run("systemctl list-units --failed --plain --no-legend").stdout.strip()
    logs = "\n".join(f"--- {line.split()[0]}:\n{journal_tail(host, line.split()[0], 10)}"
                     for line in failed.splitlines() if line.split())
    assert not failed, f"failed units:\n{failed}\n{logs}"


def test_gunicorn_socket_unit(host):
    props = show(host, "gunicorn.socket", "Listen", "SocketUser", "SocketMode")
    assert props["Listen"].startswith("/run/gunicorn.sock"), props
    assert props["SocketUser"] == "www-data"
    assert props["SocketMode"] == "0600"


def test_gunicorn_service_unit(host):
    props = show(host, "gunicorn.service", "Type", "KillMode", "PrivateTmp", "User", "EnvironmentFiles", "Requires")
    assert props["Type"] == "notify"
    assert props["KillMode"] == "mixed"
    assert props["PrivateTmp"] == "yes"
    assert props["User"] == "django"
    assert "/etc/djbake/app.env" in props["EnvironmentFiles"]
    assert "gunicorn.socket" in props["Requires"]


def test_gunicorn_workers_run_as_django(host):
    users = {p.user for p in host.process.filter(comm="gunicorn")}
    assert users == {"django"}, f"gunicorn processes run as {users}"


# Each worker's dirty pages: shared with the master (forked after it imported the app) or its own.
# A master of 0 (gunicorn not running) would list PID 0's children: an error instead.
WORKER_PAGES = ("main=$(systemctl show -p MainPID --value gunicorn.service); "
                "[ \"$main\" -gt 0 ] || { echo 'gunicorn.service has no main process' >&2; exit 1; }; "
                "for p in $(pgrep -P \"$main\"); do echo \"$p $(awk '/^Shared_Dirty:/ {s = $2} "
                "/^Private_Dirty:/ {d = $2} END {print s, d}' /proc/$p/smaps_rollup)\"; done")


@pytest.mark.per_vm
def test_gunicorn_workers_share_the_preloaded_app(host):
    """Behaviour: the master imports the project once and forks the workers from it (preload_app in
    gunicorn.conf.py), so a worker's Django and project pages are the master's, shared copy-on-write,
    rather than its own import on a CPU every worker competes for at boot. Measured with Django's
    startproject site after 20 requests: shared 21 MiB against 14 MiB private per worker with
    preload, 4 against 31 without."""
    with host.sudo():
        out = host.check_output(WORKER_PAGES)
    workers = {int(pid): (int(shared), int(private)) for pid, shared, private in
               (line.split() for line in out.splitlines())}
    assert workers, "gunicorn's master has no workers"
    unshared = {pid: pages for pid, pages in workers.items() if pages[0] < pages[1] / 2}
    assert not unshared, f"workers with the app's pages their own (pid: shared, private KiB): {unshared}"


def test_fail2ban_reads_the_journal(host):
    dump = host.check_output("fail2ban-client -d")
    assert "['add', 'sshd', 'systemd']" in dump, "the sshd jail does not use backend = systemd"
    status = host.check_output("fail2ban-client status sshd")
    assert "Currently banned" in status


def _failed_ssh_login(addr: str) -> None:
    """One SSH login attempt as a user that does not exist (sshd logs it to the journal)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(addr, 22, username="djbake-no-such-user", password="wrong", timeout=5, banner_timeout=5,
                       auth_timeout=5, allow_agent=False, look_for_keys=False)
    except Exception:  # noqa: BLE001 - refused is the point; a timeout means banned already
        pass
    finally:
        client.close()


def test_fail2ban_bans_after_failed_logins(host):
    """Behaviour: failed SSH logins from the runner get its address banned by the sshd jail, in
    nftables, and SSH stops answering it; the ban is lifted afterwards."""
    if host.backend.NAME != "docker":
        pytest.skip("bans the runner's own address, which would cut the suite's SSH connection: docker only")
    addr = host.check_output("ip -o -4 addr show scope global").split()[3].split("/")[0]
    tries = int(host.check_output("fail2ban-client get sshd maxretry")) + 1
    try:
        for _ in range(tries):
            _failed_ssh_login(addr)
        banned = ""
        for _ in range(30):
            status = host.check_output("fail2ban-client status sshd")
            banned = " ".join(status.split("Banned IP list:", 1)[-1].split()) if "Banned IP list:" in status else ""
            if banned:
                break
            time.sleep(1)
        assert banned, f"no ban after {tries} failed logins:\n{journal_tail(host, 'fail2ban.service')}"
        with host.sudo():
            rules = host.check_output("nft list ruleset")
        assert banned in rules, f"{banned} is banned but not in nftables"
        import socket

        try:
            socket.create_connection((addr, 22), timeout=3).close()
            answered = True
        except OSError:
            answered = False
        assert not answered, f"SSH still answers the banned address {banned}"
    finally:
        with host.sudo():
            host.run("fail2ban-client unban --all")


def test_unattended_upgrades_enabled(host):
    assert 'APT::Periodic::Unattended-Upgrade "1"' in host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert 'APT::Periodic::Update-Package-Lists "1"' in host.check_output("apt-config dump APT::Periodic::Update-Package-Lists")
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled, f"{timer} not enabled"


def test_security_updates_configured(host):
    """apt reads the release's security suite (what unattended-upgrades' security origin comes from)."""
    suites = host.check_output("apt-get indextargets --no-release-info --format '$(RELEASE)'").split()
    assert any(s.endswith("-security") for s in suites), f"no security suite in apt's sources: {sorted(set(suites))}"


# The security suite's index, fetched on the booted machine: the image ships without apt's lists (seal
# empties them), so what unattended-upgrades would select, and what is pending, is only known after an
# update. Only the configured sources whose suite is a security suite are fetched (~0.5 MB, a few seconds),
# with their own options (e.g. [signed-by=...]) kept. In the gate too: seal empties the lists again.
SECURITY_LIST = "/run/djbake-security.list"


@pytest.fixture(scope="module")
def security_index(host):
    """(exit status, output) of `apt-get update` over the configured security sources only."""
    with host.sudo():
        r = host.run(
            f"grep -hE '^deb\\s.*\\s[a-z]+-security(\\s|$)' /etc/apt/sources.list "
            f"/etc/apt/sources.list.d/*.list 2>/dev/null > {SECURITY_LIST}; "
            f"test -s {SECURITY_LIST} || {{ echo 'no security suite in apt sources'; exit 1; }}; "
            f"apt-get update -q -o Dir::Etc::sourcelist={SECURITY_LIST} -o Dir::Etc::sourceparts=- "
            "-o APT::Get::List-Cleanup=0")
    return r.rc, r.stdout + r.stderr


def assert_security_indexed(host) -> None:
    """apt holds an index of a -security suite (apt-get update exits 0 even when every fetch failed)."""
    with host.sudo():
        policy = host.check_output("apt-cache policy")
    releases = [line for line in policy.splitlines() if line.strip().startswith("release ")]
    security = [r for r in releases if re.search(r"\b[an]=[a-z]+-security\b", r)]
    assert security, f"apt has no index of a security suite: {releases}"


def test_unattended_upgrade_selects_the_security_origin(host, security_index):
    """`unattended-upgrade --dry-run --debug` allows the security suite apt has an index of: its allowed
    origins name a -security suite, apt's policy lists a -security release, and unattended-upgrade marks
    none of that release's package files "not allowed" (what it does to every origin it would not use)."""
    rc, out = security_index
    assert rc == 0, f"apt-get update of the security suite failed: {out[-1500:]}"
    assert_security_indexed(host)
    with host.sudo():
        dry = host.run("unattended-upgrade --dry-run --debug")
    text = dry.stdout + dry.stderr
    assert dry.rc == 0, text[-2000:]
    allowed = next((line for line in text.splitlines() if line.startswith("Allowed origins are:")), "")
    assert "-security" in allowed or "Security" in allowed, f"no security origin allowed: {allowed or text[-1500:]}"
    refused = [line for line in text.splitlines()
               if line.startswith("Marking not allowed") and re.search(r"\b[an]=[a-z]+-security\b", line)]
    assert not refused, "unattended-upgrade would not use the security suite:\n" + "\n".join(refused[:3])


def test_no_pending_security_updates(host, security_index):
    """Nothing installed has a newer version in the security suite (a stale image is refused, not shipped)."""
    rc, out = security_index
    assert rc == 0, f"apt-get update of the security suite failed: {out[-1500:]}"
    assert_security_indexed(host)   # without an index nothing would be pending
    with host.sudo():
        sim = host.run("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert sim.rc == 0, sim.stderr[-1500:]
    pending = [line for line in sim.stdout.splitlines() if line.startswith("Inst ") and "-security" in line]
    assert not pending, "security updates pending:\n" + "\n".join(pending[:10])


def test_time_sync_enabled(host):
    assert host.service("systemd-timesyncd.service").is_enabled


@pytest.mark.kernel
def test_time_sync_active(host):
    assert host.service("systemd-timesyncd.service").is_running
    assert host.check_output("timedatectl show -p NTP --value") == "yes"


def test_certbot_installed_without_certificates(host, facts):
    if not facts.certbot:
        pytest.skip("the spec has no certbot")
    host.check_output("certbot --version")
    assert host.service("certbot.timer").is_enabled
    with host.sudo():
        live = host.run("ls -A /etc/letsencrypt/live 2>/dev/null").stdout.strip()
    assert not live, f"certificates in the image: {live}"


def test_logrotate_covers_app_logs(host):
    with host.sudo():
        out = host.run("logrotate -d /etc/logrotate.d/django 2>&1")
    assert out.rc == 0, out.stdout
    assert "/var/log/django/*.log" in out.stdout


def test_redis_when_asked(host, facts):
    if not facts.redis:
        pytest.skip("the spec has no redis")
    assert host.check_output("redis-cli ping") == "PONG"


def test_postgresql_is_local_or_client_only(host, facts):
    if facts.local_db:
        assert host.run("pg_isready -q -h localhost").rc == 0
    else:
        assert not host.package("postgresql").is_installed
        assert host.package("postgresql-client").is_installed


@pytest.mark.per_vm
def test_firstboot_unit_ran(host):
    # Active after the boot that ran it; on later boots its condition skips it.
    assert host.service("djbake-firstboot.service").is_enabled
    props = show(host, "djbake-firstboot.service", "Result")
    assert props["Result"] == "success", f"{props}\n{journal_tail(host, 'djbake-firstboot.service')}"
    assert host.file("/var/lib/djbake/firstboot.done").exists

