"""It keeps serving: services restart by themselves after a crash (kill -9)."""
import pytest

from conftest import RESTART_SECONDS, wait_for


def restartable_units(host, facts) -> list[str]:
    units = ["gunicorn.service"]
    if facts.nginx:
        units.append("nginx.service")
    if facts.local_db:
        # Debian runs one unit per cluster; postgresql.service is a no-op wrapper.
        clusters = host.check_output("systemctl list-units --plain --no-legend 'postgresql@*.service'")
        units += [line.split()[0] for line in clusters.splitlines() if line.split()]
    if facts.redis:
        units.append("redis-server.service")
    return units


@pytest.mark.gate
@pytest.mark.fresh_boot
def test_restart_policies(host, facts):
    weak = {}
    for unit in restartable_units(host, facts):
        restart = host.check_output(f"systemctl show -p Restart --value {unit}")
        if restart not in ("on-failure", "always", "on-abnormal"):
            weak[unit] = restart
    assert not weak, f"these do not come back after a crash: {weak}"


def main_pid(host, unit: str) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


@pytest.mark.fresh_boot
def test_services_come_back_after_kill_9(host, facts, http):
    """kill -9 each service's main process; it must be active again under a new pid and the site
    answer 200. Fresh boot only: the gate's VM is the one that gets sealed."""
    if not wait_for(lambda: http.get("/").status == 200):
        pytest.fail(f"the site does not answer before the test: {http.get('/')}")
    problems = []
    for unit in restartable_units(host, facts):
        old = main_pid(host, unit)
        if old == 0:
            problems.append(f"{unit}: not running")
            continue
        with host.sudo():
            host.check_output(f"kill -9 {old}")
        if not wait_for(lambda unit=unit, old=old: host.run(f"systemctl is-active --quiet {unit}").rc == 0
                        and main_pid(host, unit) not in (0, old)):
            problems.append(f"{unit}: {host.run(f'systemctl is-active {unit}').stdout.strip()} after kill -9")
            continue
        if not wait_for(lambda: http.get("/").status == 200):
            problems.append(f"{unit}: site answers {http.get('/')} {RESTART_SECONDS} s after its restart")
    assert not problems, problems
