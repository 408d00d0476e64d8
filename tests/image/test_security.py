"""Access: sshd, sudo, the app's user, what the web server tells the world."""
import pytest

pytestmark = [pytest.mark.gate, pytest.mark.fresh_boot]


def sshd_config(host) -> dict[str, str]:
    with host.sudo():
        out = host.check_output("sshd -T")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_sshd_no_root_login_no_passwords(host):
    cfg = sshd_config(host)
    assert cfg["permitrootlogin"] == "no"
    assert cfg["passwordauthentication"] == "no"
    assert cfg["kbdinteractiveauthentication"] == "no"
    assert cfg["permitemptypasswords"] == "no"
    assert cfg["pubkeyauthentication"] == "yes"


def test_sshd_hardening_read_before_cloud_init(host):
    drop_ins = host.check_output("ls /etc/ssh/sshd_config.d/").split()
    assert "10-djbake.conf" in drop_ins
    assert sorted(drop_ins)[0] == "10-djbake.conf", f"another drop-in is read first: {sorted(drop_ins)}"


def test_host_keys_regenerated_when_missing(host):
    """Behaviour: with the host keys removed (as seal.sh leaves them), the unit makes new ones that
    sshd accepts; the VM's own keys are put back afterwards (the runner may hold them as known)."""
    assert host.service("djbake-ssh-hostkeys.service").is_enabled
    keep = "/root/djbake-hostkeys-kept"
    with host.sudo():
        had = host.run("ls /etc/ssh/ssh_host_*_key 2>/dev/null").stdout.split()
        host.check_output(f"rm -rf {keep} && mkdir -m 0700 {keep} && (cp -a /etc/ssh/ssh_host_* {keep}/ || true)")
        try:
            old = host.run("cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null").stdout
            host.check_output("rm -f /etc/ssh/ssh_host_* && systemctl restart djbake-ssh-hostkeys.service")
            made = host.run("ls /etc/ssh/ssh_host_*_key").stdout.split()
            new = host.run("cat /etc/ssh/ssh_host_*_key.pub").stdout
            valid = host.run("sshd -t")
        finally:
            if had:
                host.run(f"rm -f /etc/ssh/ssh_host_* && cp -a {keep}/ssh_host_* /etc/ssh/")
            host.run(f"rm -rf {keep}")
    assert any(k.endswith("ed25519_key") for k in made), f"no host keys made: {made}"
    assert new.strip() and new != old, "the keys made are the ones removed"
    assert valid.rc == 0, valid.stderr


def test_django_user_cannot_log_in(host):
    user = host.user("django")
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")
    assert user.uid < 1000, "django must be a system user"
    with host.sudo():
        assert host.run("sudo -l -U django").stdout.count("may run") == 0


def test_env_file_private(host):
    f = host.file("/etc/djbake/app.env")
    assert (f.user, f.group, f.mode) == ("root", "django", 0o640)


def test_nginx_hides_its_version(host, facts, http):
    if not facts.nginx:
        pytest.skip("no nginx")
    r = http.get("/")
    assert r.header("server") == "nginx", r.header("server")


def test_forwarded_proto_set_by_nginx_not_the_client(host, facts, http):
    if not facts.nginx:
        pytest.skip("no nginx")
    if facts.baked_app:
        pytest.skip("reads the scheme from the welcome project's /healthz; a baked project has its own URLs")
    import json

    r = http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert r.status == 200, r
    assert json.loads(r.body)["scheme"] == "http", "a client could claim HTTPS: nginx must overwrite X-Forwarded-Proto"
