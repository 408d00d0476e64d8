"""First boot: what each VM makes for itself (secrets, host keys, identity, swap, database)."""
import os
import shlex

import pytest
from conftest import sha256, show, wait_for

SECRET_MIN_LEN = 50
pytestmark = pytest.mark.per_vm  # each check here is about what first boot made for this VM


@pytest.mark.gate
@pytest.mark.fresh_boot
def test_secret_key_generated(app_env):
    key = app_env.get("DJANGO_SECRET_KEY", "")
    assert len(key) >= SECRET_MIN_LEN, "DJANGO_SECRET_KEY missing or short"
    assert not key.startswith("django-insecure")


@pytest.mark.gate
@pytest.mark.fresh_boot
def test_database_role_uses_the_generated_password(host, facts, app_env):
    if not facts.local_db:
        pytest.skip("external database")
    assert len(app_env.get("DJANGO_DB_PASSWORD", "")) >= 32
    probe = ("import os, psycopg; psycopg.connect(host='localhost', dbname=os.environ['DJANGO_DB_NAME'], "
             "user=os.environ['DJANGO_DB_USER'], password=os.environ['DJANGO_DB_PASSWORD']).close(); print('ok')")
    with host.sudo():
        out = host.run(f"djbake-env run /srv/app/venv/bin/python -c {shlex.quote(probe)}")
    assert out.rc == 0 and out.stdout.strip() == "ok", out.stderr
    user, name = app_env["DJANGO_DB_USER"], app_env["DJANGO_DB_NAME"]
    with host.sudo():
        wrong = host.run(f"PGPASSWORD=wrong-password psql -h localhost -U {shlex.quote(user)} "
                         f"-d {shlex.quote(name)} -c 'select 1'")
    assert wrong.rc != 0, "the database accepts a wrong password"
    # Refused for the password, not for another reason (no such role or database, no server).
    assert f'password authentication failed for user "{user}"' in wrong.stderr, wrong.stderr


@pytest.mark.gate
@pytest.mark.fresh_boot
def test_allowed_hosts_match_the_vm(host, app_env):
    allowed = app_env.get("DJANGO_ALLOWED_HOSTS", "").split(",")
    assert "localhost" in allowed
    assert host.check_output("hostname -s") in allowed
    names = host.file("/etc/nginx/djbake/server_names.conf").content_string
    for name in allowed:
        assert name in names, f"{name} is allowed by Django but not routed by nginx"


@pytest.mark.fresh_boot
@pytest.mark.kernel
def test_swap_active(host):
    swaps = host.check_output("swapon --show=NAME,SIZE --bytes --noheadings").split()
    assert swaps[:1] == ["/swapfile"], f"no swap file active: {swaps}"
    assert int(swaps[1]) >= 500 * 2**20, f"swap of {swaps[1]} bytes (first boot makes 512 MiB to 2 GiB)"
    assert "/swapfile none swap" in host.file("/etc/fstab").content_string
    with host.sudo():
        assert host.file("/swapfile").mode == 0o600 and host.file("/swapfile").user == "root"
        # On ext4 and XFS first boot preallocates instead of writing the whole file with dd
        # (scripts/files/djbake/djbake-firstboot swap()): the site waits for it.
        fstype = host.check_output("findmnt -no FSTYPE --target /")
        made = host.run("journalctl -u djbake-firstboot.service -o cat --no-pager | grep 'swap: '").stdout
    if fstype in ("ext4", "xfs"):
        assert "(fallocate)" in made, f"{fstype}: swap not preallocated: {made!r}"


@pytest.mark.fresh_boot
def test_host_keys_and_machine_id_exist(host, record):
    with host.sudo():
        keys = host.run("ls /etc/ssh/ssh_host_*_key").stdout.split()
        assert keys, "no SSH host keys: sshd cannot start"
        fps = host.check_output("for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $k; done")
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert len(machine_id) == 32, f"machine-id {machine_id!r}"
    record["ssh_host_keys"] = fps
    record["machine_id"] = machine_id


@pytest.mark.fresh_boot
def test_record_secret_hashes(app_env, facts, record):
    # Hashes only: the record file leaves the VM, the secrets must not.
    # A missing secret is recorded as missing, not as the hash of "" (which two boots would share);
    # which secrets first boot must have made is known: SECRET_KEY always, a database password with a local one.
    assert app_env.get("DJANGO_SECRET_KEY"), "first boot made no DJANGO_SECRET_KEY"
    assert bool(app_env.get("DJANGO_DB_PASSWORD")) == facts.local_db, \
        f"DJANGO_DB_PASSWORD {'missing' if facts.local_db else 'set'} with database {facts.get('DATABASE')}"
    for key, name in (("secret_key_sha256", "DJANGO_SECRET_KEY"), ("db_password_sha256", "DJANGO_DB_PASSWORD")):
        if app_env.get(name):
            record[key] = sha256(app_env[name])


@pytest.mark.fresh_boot
def test_build_user_removed(host):
    assert not host.file("/etc/djbake/remove-build-user").exists, \
        "djbake-remove-build-user.service did not run"
    user = os.environ.get("DJBAKE_BUILD_USER")
    if user and not os.environ.get("DJBAKE_BUILD_USER_REUSED"):
        assert not host.user(user).exists, f"build user {user} still exists"


@pytest.mark.fresh_boot
def test_cloud_init_done(host):
    if not host.exists("cloud-init"):
        pytest.skip("no cloud-init in this image")
    with host.sudo():
        out = host.run("cloud-init status --wait")
    assert "status: done" in out.stdout, out.stdout + out.stderr


@pytest.mark.fresh_boot
def test_first_boot_leaves_the_django_steps_to_the_seal(host, facts):
    """A local database is sealed into the image migrated for the live release (djbake-firstboot reset),
    its static files collected: first boot only sets this VM's password (checked above) and runs none
    of Django's steps, and no migration is left unapplied."""
    if not facts.local_db:
        pytest.skip("external database: first boot migrates it")
    with host.sudo():
        journal = host.run("journalctl -u djbake-firstboot.service -o cat --no-pager").stdout
        plan = host.run("djbake-env manage showmigrations --plan")
    assert "done when the image was sealed" in journal, f"first boot ran the Django steps:\n{journal[-2000:]}"
    assert "djbake-deploy:" not in journal, f"first boot ran djbake-deploy:\n{journal[-2000:]}"
    # The welcome project has no migrations of its own ("(no migrations)"); a baked project's are all [X].
    assert plan.rc == 0, plan.stderr[-1500:]
    assert "[ ]" not in plan.stdout, f"migrations left for the VM: {[l for l in plan.stdout.splitlines() if '[ ]' in l]}"


@pytest.mark.fresh_boot
def test_snakeoil_pair_made_for_this_vm(host):
    """ssl-cert's pair, removed by the seal, is made again by its own unit (not before the app: nothing
    djbake serves uses it). Whether it differs between the VMs: the fresh-boot secret scan allows it
    only as a per-VM file, and the seal's check shows the image has none."""
    def unit() -> dict[str, str]:
        return show(host, "djbake-snakeoil.service", "ActiveState", "Result", "ConditionResult")
    assert wait_for(lambda: unit()["ActiveState"] in ("active", "failed")), f"djbake-snakeoil.service not done: {unit()}"
    props = unit()
    assert props["ConditionResult"] == "yes", f"djbake-snakeoil.service did not run at first boot: {props}"
    assert props["Result"] == "success", props
    if host.run("command -v make-ssl-cert").rc == 0:
        with host.sudo():
            assert host.file("/etc/ssl/private/ssl-cert-snakeoil.key").exists, "make-ssl-cert is here but no key was made"
