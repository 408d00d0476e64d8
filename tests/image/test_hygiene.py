"""Nothing secret and nothing unique in the image; no build leftovers."""
import pytest

SEARCH_DIRS = "/etc /root /home /srv /opt /tmp /var/tmp /var/log /var/lib/cloud /var/backups /usr/local"
SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"AKIA[0-9A-Z]{16}",
    r"(aws_secret_access_key|AWS_SECRET_ACCESS_KEY|LINODE_TOKEN|DIGITALOCEAN_TOKEN|HCLOUD_TOKEN"
    r"|OS_PASSWORD|ARM_CLIENT_SECRET|DJBAKE_GATE_KEY)[\"' ]*[=:] *[\"']?[A-Za-z0-9/+_-]{8,}",
]
# Per-VM keys, made at first boot: expected after a boot, never in the image.
PER_VM_KEYS = ("/etc/ssh/ssh_host_", "/etc/ssl/private/ssl-cert-snakeoil.key")


def grep_secrets(host) -> list[str]:
    hits = []
    for pattern in SECRET_PATTERNS:
        with host.sudo():
            out = host.run(f"grep -rlIE --exclude-dir=__pycache__ -e '{pattern}' {SEARCH_DIRS} 2>/dev/null")
        hits += out.stdout.split()
    return sorted(set(hits))


@pytest.mark.sealed
def test_sealed_no_secrets_or_private_keys(host):
    hits = grep_secrets(host)
    assert not hits, f"private keys or credentials in the image: {hits}"


@pytest.mark.fresh_boot
def test_booted_only_per_vm_private_keys(host):
    hits = [h for h in grep_secrets(host) if not h.startswith(PER_VM_KEYS)]
    assert not hits, f"private keys or credentials left: {hits}"


@pytest.mark.fresh_boot
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
        assert host.file("/etc/machine-id").content_string == ""
        assert not host.run("ls /etc/ssh/ssh_host_* 2>/dev/null").stdout.strip()
        assert not host.file("/var/lib/systemd/random-seed").exists
        assert not host.file("/etc/ssl/private/ssl-cert-snakeoil.key").exists
        assert not host.file("/var/lib/djbake/firstboot.done").exists
        assert not host.file("/swapfile").exists
        instances = host.run("ls -A /var/lib/cloud/instances 2>/dev/null").stdout.strip()
    assert not instances, "cloud-init state left: run cloud-init clean"


@pytest.mark.sealed
def test_sealed_no_ssh_access_or_history(host):
    with host.sudo():
        keys = host.run("find /root /home -name authorized_keys -size +0 2>/dev/null").stdout.split()
        hist = host.run("find /root /home -name '.*_history' -size +0 2>/dev/null").stdout.split()
    assert not keys, f"authorized_keys left: {keys}"
    assert not hist, f"shell history left: {hist}"


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
        caches = host.run("find /srv/app/src -name __pycache__ -print -quit").stdout.strip()
    if host.file("/var/lib/djbake/firstboot.done").exists:
        return  # a booted VM compiles its own code
    assert not caches, f"bytecode of the build left: {caches}"
