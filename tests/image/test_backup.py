"""Database backups (scripts/backup.sh, djbake-backup): a daily timer, retention, and a restore
that brings the data back."""
import pytest

from conftest import wait_for

pytestmark = pytest.mark.fresh_boot

DUMPS = "/var/backups/djbake"


def psql(host, sql: str) -> str:
    with host.sudo():
        return host.check_output(f"runuser -u postgres -- psql -X -qtA -v ON_ERROR_STOP=1 -d django -c {sql!r}")


@pytest.fixture
def local_db(facts):
    if not facts.local_db:
        pytest.skip("no local PostgreSQL: the external database's own backups apply")


@pytest.mark.gate
def test_backup_timer_enabled(host, local_db):
    timer = host.service("djbake-backup.timer")
    assert timer.is_enabled and timer.is_running


def test_backup_restore_round_trip(host, local_db, http):
    """Data written, dumped, dropped, restored: back, and the site answers again."""
    psql(host, "CREATE TABLE djbake_backup_probe (v text); INSERT INTO djbake_backup_probe VALUES ('kept')")
    try:
        with host.sudo():
            dump = host.check_output("djbake-backup now")
            listed = host.check_output("djbake-backup list")
        assert dump.startswith(f"{DUMPS}/django-") and dump.rsplit("/", 1)[1] in listed, (dump, listed)
        psql(host, "DROP TABLE djbake_backup_probe")
        with host.sudo():
            out = host.run(f"djbake-backup restore {dump.rsplit('/', 1)[1]}")
        assert out.rc == 0, out.stdout + out.stderr
        assert psql(host, "SELECT v FROM djbake_backup_probe") == "kept"
        owner = psql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'djbake_backup_probe'")
        assert owner == "django", f"restored table owned by {owner}: the app could not write it"
        assert host.service("gunicorn.socket").is_running
        # The restore stopped gunicorn and started it again: it answers once it has started.
        assert wait_for(lambda: http.get("/").status == 200), "the site did not answer after the restore"
        with host.sudo():
            bad = host.run(f"djbake-backup restore {DUMPS}/no-such.dump")
        assert bad.rc == 2 and "no such dump" in bad.stderr, bad.stderr
    finally:
        psql(host, "DROP TABLE IF EXISTS djbake_backup_probe")
        with host.sudo():
            host.run(f"rm -f {DUMPS}/django-*.dump")


def test_backup_retention_keeps_the_newest(host, local_db):
    with host.sudo():
        try:
            host.check_output(f"install -d -m 0700 {DUMPS} && for d in $(seq -w 1 20); do "
                              f"touch {DUMPS}/django-200001${{d}}T000000Z.dump; done")
            host.check_output("djbake-backup now")
            kept = host.check_output(f"ls {DUMPS}").split()
        finally:
            host.run(f"rm -f {DUMPS}/django-*.dump")
    assert len(kept) == 14, kept
    assert "django-20000101T000000Z.dump" not in kept and "django-20000120T000000Z.dump" in kept, kept
    assert not [k for k in kept if k.startswith(".partial")], kept
