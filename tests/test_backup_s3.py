"""djbake-backup's off-VM copies (issue 20, point 5): the default docker image's djbake-backup uploads
its dumps with s3cmd to moto's S3 server (moto_server on the host, standing in for S3 or any
S3-compatible storage), keeps the newest BACKUP_S3_KEEP there, and a dump fetched back restores the
data. Configured from app.env; without a bucket nothing leaves the VM. The keys are never printed.

The image: the session's build of the default spec (tests/conftest.py `built_image`), or one built
before (DJBAKE_TEST_DOCKER_BUILD, see tests/docker_build.py).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.docker import base_image as docker_base
from builder.docker import client as docker_client
from tests.docker_build import built_id

pytestmark = [pytest.mark.docker, pytest.mark.moto]

BUCKET = "djbake-dumps"
PREFIX = "web-1"
KEY_ID = "AKIADJBAKETESTKEY0001"
# What a real secret looks like (base64 with + and /): the masking must take it literally.
SECRET = "tEsT+s3cr3t/Wm9VbHVlK2FuZC9zbGFzaGVzL2hlcmU"
OLD = [f"django-2000010{d}T000000Z.dump" for d in range(1, 6)]


def sh(box, cmd: str) -> tuple[int, str]:
    code, out = box.exec_run(["bash", "-c", cmd])
    return code, out.decode(errors="replace")


def ok(box, cmd: str) -> str:
    code, out = sh(box, cmd)
    assert code == 0, f"{cmd}: exit {code}\n{out}"
    return out


@pytest.fixture(scope="module")
def moto(engine, tmp_path_factory):
    """moto_server on the docker bridge's gateway (the containers reach it there); stopped by PID."""
    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        pytest.skip("moto's server is not installed (make deps)")
    from aws import harness  # tests/aws/

    gateway = docker_client.bridge_gateway(engine)
    port = harness.free_port(gateway)
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([str(server), "-H", gateway, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        harness.wait_port(gateway, port)
        yield f"http://{gateway}:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def s3(moto):
    import boto3

    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def box(built_image, engine):
    proc, build_dir = built_image
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    container = docker_base.start(built_id(build_dir), f"test-backup-s3-{os.getpid()}", engine)
    try:
        deadline = time.monotonic() + 300
        while sh(container, "test -e /var/lib/djbake/firstboot.done")[0] != 0:
            assert time.monotonic() < deadline, "first boot did not finish in 5 min"
            time.sleep(1)
        yield container
    finally:
        docker_base.stop(container)


def names(s3) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Contents", [])
    return sorted(o["Key"].split("/", 1)[1] for o in listed)


def configure(box, moto: str, **extra: str) -> None:
    settings = {"BACKUP_S3_BUCKET": BUCKET, "BACKUP_S3_ENDPOINT": moto, "BACKUP_S3_ACCESS_KEY_ID": KEY_ID,
                "BACKUP_S3_SECRET_ACCESS_KEY": SECRET, "BACKUP_S3_PREFIX": PREFIX, "BACKUP_S3_KEEP": "3", **extra}
    for key, value in settings.items():
        ok(box, f"djbake-env set {key} '{value}'")


def no_keys(*outputs: str) -> None:
    for out in outputs:
        assert SECRET not in out and KEY_ID not in out, out


def test_without_a_bucket_dumps_stay_local(box, s3):
    out = ok(box, "djbake-backup now")
    assert out.startswith("/var/backups/djbake/django-") and "s3://" not in out, out
    assert names(s3) == []
    code, out = sh(box, "djbake-backup remote")
    assert code == 2 and "set BACKUP_S3_BUCKET" in out and len(out.strip().splitlines()) == 1, out


def test_upload_retention_fetch_and_restore(box, s3, moto):
    configure(box, moto)
    for old in OLD:   # older dumps already there: retention keeps the newest 3 of 6
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{old}", Body=b"old")
    ok(box, "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d django -c "
            "\"CREATE TABLE djbake_s3_probe (v text); INSERT INTO djbake_s3_probe VALUES ('off the VM')\"")
    try:
        # As the timer runs it (systemd), so the journal is checked for the keys too.
        ok(box, "systemctl start djbake-backup.service")
        journal = ok(box, "journalctl -u djbake-backup.service --no-pager -o cat")
        dump = next(line for line in journal.splitlines() if line.startswith("/var/backups/djbake/django-"))
        name = dump.rsplit("/", 1)[1]
        assert f"s3://{BUCKET}/{PREFIX}/{name}" in journal, journal
        assert names(s3) == sorted([name, OLD[-1], OLD[-2]]), names(s3)
        local = ok(box, f"sha256sum {dump}").split()[0]
        uploaded = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}")["Body"].read()
        assert hashlib.sha256(uploaded).hexdigest() == local

        remote = ok(box, "djbake-backup remote")
        assert remote.split() == sorted([name, OLD[-1], OLD[-2]], reverse=True), remote
        # The VM's disk is lost: the dump comes back from the bucket and restores the data.
        ok(box, f"rm -f /var/backups/djbake/{name}")
        ok(box, "runuser -u postgres -- psql -X -q -d django -c 'DROP TABLE djbake_s3_probe'")
        fetched = ok(box, f"djbake-backup fetch {name}").strip()
        assert fetched == dump and ok(box, f"stat -c %a {dump}").strip() == "600"
        assert ok(box, f"sha256sum {dump}").split()[0] == local
        restored = ok(box, f"djbake-backup restore {name}")
        value = ok(box, "runuser -u postgres -- psql -X -qtA -d django -c 'SELECT v FROM djbake_s3_probe'")
        assert value.strip() == "off the VM", restored + value
        no_keys(journal, remote, fetched, restored)
        # Nor in any process's command line while s3cmd runs: the keys go in its environment.
        code, out = sh(box, "djbake-backup remote & for i in $(seq 50); do cat /proc/[0-9]*/cmdline 2>/dev/null "
                            "| tr '\\0' ' '; sleep 0.05; done; wait")
        assert "s3cmd" in out, "s3cmd was never seen running: the command-line check saw nothing"
        no_keys(out)
    finally:
        sh(box, "runuser -u postgres -- psql -X -q -d django -c 'DROP TABLE IF EXISTS djbake_s3_probe'")
        sh(box, "rm -f /var/backups/djbake/django-*.dump")


def test_a_refused_upload_fails_the_run_and_keeps_the_local_dump(box, s3, moto):
    # A bucket that does not exist: the storage answers 404 (an unreachable endpoint fails the same
    # way after s3cmd's own retries, about a minute).
    configure(box, moto, BACKUP_S3_BUCKET="djbake-no-such-bucket")
    try:
        code, out = sh(box, "djbake-backup now")
        assert code == 1 and "failed (the local dump is kept)" in out, out
        assert "NoSuchBucket" in out, out
        dump = out.splitlines()[0]
        assert dump.startswith("/var/backups/djbake/django-") and sh(box, f"test -s {dump}")[0] == 0, out
        no_keys(out)
    finally:
        configure(box, moto)
        sh(box, "rm -f /var/backups/djbake/django-*.dump")


@pytest.mark.parametrize("key, value, says", [
    ("BACKUP_S3_ENDPOINT", "ftp://storage.example", "must be https://HOST or http://HOST:PORT (set with BACKUP_S3_BUCKET)"),
    ("BACKUP_S3_BUCKET", "Bad_Bucket", "is not an S3 bucket name"),
    ("BACKUP_S3_KEEP", "0", "must be a whole number >= 1"),
    ("BACKUP_S3_PREFIX", "a b", "may hold letters, digits and . _ / - only"),
])
def test_bad_settings_are_one_line_naming_file_line_and_key(box, moto, key, value, says):
    configure(box, moto, **{key: value})
    try:
        line = ok(box, f"grep -n '^{key}=' /etc/djbake/app.env").split(":", 1)[0]
        code, out = sh(box, "djbake-backup remote")
        assert code == 2 and out.strip() == f"djbake-backup: /etc/djbake/app.env line {line}: {key} {says}", out
        assert "Traceback" not in out
        no_keys(out)
    finally:
        configure(box, moto)
