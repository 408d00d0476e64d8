"""The services a Django server runs: enabled for every boot and running now."""
import batch
import pytest

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


def test_no_failed_units(host):
    failed = host.run("systemctl list-units --failed --plain --no-legend").stdout.strip()
    logs = "\n".join(f"--- {line.split()[0]}:\n{journal_tail(host, line.split()[0], 10)}"
                     for line in failed.splitlines() if line.split())
    assert not failed, f"failed units:\n{failed}\n{logs}"


def show(host, unit: str, *props: str) -> dict[str, str]:
    out = host.check_output(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


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


def test_fail2ban_reads_the_journal(host):
    dump = host.check_output("fail2ban-client -d")
    assert "['add', 'sshd', 'systemd']" in dump, "the sshd jail does not use backend = systemd"
    status = host.check_output("fail2ban-client status sshd")
    assert "Currently banned" in status


def test_unattended_upgrades_enabled(host):
    assert 'APT::Periodic::Unattended-Upgrade "1"' in host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert 'APT::Periodic::Update-Package-Lists "1"' in host.check_output("apt-config dump APT::Periodic::Update-Package-Lists")
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled, f"{timer} not enabled"


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


def test_firstboot_unit_ran(host):
    # Active after the boot that ran it; on later boots its condition skips it.
    assert host.service("djbake-firstboot.service").is_enabled
    props = show(host, "djbake-firstboot.service", "Result")
    assert props["Result"] == "success", f"{props}\n{journal_tail(host, 'djbake-firstboot.service')}"
    assert host.file("/var/lib/djbake/firstboot.done").exists

