"""Nothing secret and nothing unique in the image; no build leftovers."""
import os

import pytest

from builder import hardening, secretscan

SEARCH_DIRS = "/etc /root /home /srv /opt /tmp /var/tmp /var/log /var/lib/cloud /var/backups /usr/local"
# Per-VM secrets, made at first boot: expected after a boot, never in the image.
PER_VM_SECRETS = ("/etc/ssh/ssh_host_", "/etc/ssl/private/ssl-cert-snakeoil.key", "/etc/djbake/app.env")


def needles() -> dict[str, str]:
    """Exact values that must be nowhere in the image: the credentials in the runner's
    environment, and the body of a CA the build trusted (DJBAKE_BUILD_CA: PEM files,
    os.pathsep-separated). Matched on the runner; never sent to the image."""
    cas = [p for p in os.environ.get("DJBAKE_BUILD_CA", "").split(os.pathsep) if p]
    return secretscan.env_needles() | secretscan.ca_needles(*cas)


def find_secrets(host, allow=()) -> list[str]:
    """builder/secretscan.py's rules over the image (private keys, tokens, passwords,
    credential variables, a build CA or proxy left behind)."""
    found = secretscan.scan_host(host, allow=allow, needles=needles())
    packaged = secretscan.unchanged_package_files(host, {f.where for f in found})
    return [str(f) for f in found if f.where not in packaged]


@pytest.mark.sealed
def test_sealed_no_secrets_or_private_keys(host):
    hits = find_secrets(host)
    assert not hits, f"private keys or credentials in the image: {hits}"


@pytest.mark.fresh_boot
@pytest.mark.per_vm
def test_booted_only_per_vm_secrets(host):
    hits = find_secrets(host, allow=PER_VM_SECRETS)
    assert not hits, f"private keys or credentials left: {hits}"


@pytest.mark.sealed
def test_sealed_root_password_locked(host):
    """No password hash for root (a build may set one, e.g. Linode's root_pass)."""
    with host.sudo():
        field = host.run("getent shadow root | cut -d: -f2").stdout.strip()
    assert field and set(field) <= {"!", "*"}, f"root's password field is {field[:3]!r}..., not locked ('*')"


@pytest.mark.fresh_boot
@pytest.mark.per_vm
def test_secret_key_only_in_env_file(host, app_env):
    if not app_env.get("DJANGO_SECRET_KEY"):
        pytest.fail("no DJANGO_SECRET_KEY")
    # The key is read from the file inside the command, never put on a
    # command line: sudo logs those to the journal, which this test searches.
    pattern = "<(sed -n 's/^DJANGO_SECRET_KEY=//p' /etc/djbake/app.env)"
    with host.sudo():
        out = host.run(f"bash -c \"grep -rlF -f {pattern} {SEARCH_DIRS} /var/lib/djbake 2>/dev/null\"")
    assert out.stdout.split() == ["/etc/djbake/app.env"], out.stdout


@pytest.mark.sealed
def test_sealed_env_file_has_no_secrets(app_env):
    for key in ("DJANGO_SECRET_KEY", "DJANGO_DB_PASSWORD", "DJANGO_ALLOWED_HOSTS"):
        assert not app_env.get(key), f"{key} is set in the image: it must be made per VM"


@pytest.mark.sealed
def test_sealed_identity_removed(host):
    with host.sudo():
        # empty, not absent: without the file networkd has no DUID and DHCP fails at first boot
        assert host.file("/etc/machine-id").exists, "/etc/machine-id is missing: the VM would get no DHCP lease"
        assert host.file("/etc/machine-id").content_string == ""
        assert not host.run("ls /etc/ssh/ssh_host_* 2>/dev/null").stdout.strip()
        assert not host.file("/var/lib/systemd/random-seed").exists
        assert not host.file("/etc/ssl/private/ssl-cert-snakeoil.key").exists
        assert not host.file("/var/lib/djbake/firstboot.done").exists
        assert not host.file("/swapfile").exists
        instances = host.run("ls -A /var/lib/cloud/instances 2>/dev/null").stdout.strip()
    assert not instances, "cloud-init state left: run cloud-init clean"


@pytest.mark.sealed
def test_sealed_no_password_hashes(host):
    """Marketplaces refuse an image in which any user has a password (a '!'-locked hash included)."""
    with host.sudo():
        problems = hardening.shadow_problems(host.check_output("cat /etc/shadow"))
    assert not problems, problems


@pytest.mark.sealed
def test_sealed_no_ssh_access_or_history(host):
    with host.sudo():
        # Anywhere on the root file system, not only in home directories (a service's home, /etc/ssh).
        keys = host.run(r"find / -xdev \( -name authorized_keys -o -name authorized_keys2 \) -size +0 "
                        "2>/dev/null").stdout.split()
        hist = host.run("find /root /home -name '.*_history' -size +0 2>/dev/null").stdout.split()
    assert not keys, f"authorized_keys left: {keys}"
    assert not hist, f"shell history left: {hist}"


@pytest.mark.sealed
def test_sealed_no_fail2ban_bans(host):
    """fail2ban restores the bans in its database at start: the build's (the gate bans the runner on
    purpose) would make every VM refuse the build host's SSH. The seal removes the database."""
    with host.sudo():
        assert not host.file("/var/lib/fail2ban/fail2ban.sqlite3").exists, "fail2ban's database (and its bans) left"


@pytest.mark.sealed
def test_sealed_logs_and_apt_lists_empty(host):
    with host.sudo():
        logs = host.run("find /var/log -type f -size +0 2>/dev/null").stdout.split()
        lists = host.run("find /var/lib/apt/lists -type f -name '*_Packages*' 2>/dev/null").stdout.split()
    assert not logs, f"logs left: {logs[:10]}"
    assert not lists, f"apt lists left: {lists[:5]}"


@pytest.mark.sealed
@pytest.mark.fresh_boot
def test_no_build_leftovers(host):
    with host.sudo():
        for path in ("/tmp/djbake", "/root/.cache/pip", "/srv/app/src.previous", "/srv/app/src.new"):
            assert not host.file(path).exists, f"{path} left in the image"
        # The build host's package cache (builder/apt_cache.py) is no proxy a VM could use.
        proxies = host.run("grep -rils 'Acquire::http::Proxy' /etc/apt/apt.conf /etc/apt/apt.conf.d").stdout.strip()
        assert not proxies, f"the build's apt proxy setting left in the image: {proxies}"


@pytest.mark.gate
@pytest.mark.fresh_boot
@pytest.mark.sealed
def test_firewall_enabled_for_every_boot(host):
    """nftables loads the image's ruleset at boot (also readable without booting: the sealed disk)."""
    assert host.run("systemctl is-enabled nftables.service").stdout.strip() == "enabled"
    rules = host.file("/etc/nftables.conf").content_string
    assert "hook input" in rules and "policy drop" in rules, "no input chain that drops by default"


@pytest.mark.gate
@pytest.mark.fresh_boot
@pytest.mark.sealed
@pytest.mark.kernel
def test_cloud_init_present_on_vm_images(host):
    """Clouds hand a VM its users, keys and user-data through cloud-init (a container has none)."""
    version = host.run("cloud-init --version")
    assert version.rc == 0, f"cloud-init is not installed: {version.stderr.strip()}"
