"""Release channels and revocation on both catalog backends (SQLite file, real PostgreSQL server).

`channel set` points at verified builds only, `latest --channel` and
`launch --channel` select exactly that build, history keeps who/when/from/to,
`rollback` walks back (skipping revoked builds), `revoke` makes latest,
launch and channels refuse a build, and eight runners moving one channel at
once leave a history whose every row starts where the previous one ended.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shlex
import time

import pytest

from builder import cli
from builder.catalog import channels, revocation
from builder.catalog import store as catalog
from builder.commands import launch as launch_cmd
from builder.errors import UserError

ctx = mp.get_context("fork")
NOW = time.time()


def _entry(build: str, version: str, provider: str = "qemu", region: str = "local", verified: bool = True,
           age: float = 0.0) -> catalog.Entry:
    return catalog.Entry(build_id=build, image="django-web", version=version, provider=provider, region=region,
                         artifact=f"{provider}-{region}-{build}", verified=verified, created_at=NOW - 1000 + age)


@pytest.fixture
def cat(catalog_at, monkeypatch):
    where = catalog_at()
    monkeypatch.setenv("DJBAKE_CATALOG", where)
    monkeypatch.setenv("DJBAKE_ACTOR", "alice@laptop")
    c = catalog.Catalog(where)
    c.add([_entry("b1", "2026.11.27", age=1), _entry("b1", "2026.11.27", "digitalocean", "nyc3", age=1)])
    c.add([_entry("b2", "2026.11.28", age=2), _entry("b2", "2026.11.28", "digitalocean", "nyc3", age=2)])
    c.add([_entry("b3", "2026.11.29", age=3), _entry("b3", "2026.11.29", "digitalocean", "nyc3", age=3)])
    c.add([_entry("b4", "2026.11.30", age=4, verified=False)])
    return c


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_set_list_latest_history_rollback(cat, capsys, monkeypatch):
    code, out, _ = run(capsys, "channel", "set", "production", "django-web", "2026.11.28")  # by version
    assert code == 0 and "set production of django-web (digitalocean): (unset) -> b2" in out
    assert "set production of django-web (qemu): (unset) -> b2" in out
    assert run(capsys, "latest", "-p", "qemu")[1].strip() == "qemu-local-b3"  # the newest verified
    assert run(capsys, "latest", "-p", "qemu", "--channel", "production")[1].strip() == "qemu-local-b2"

    monkeypatch.setenv("DJBAKE_ACTOR", "https://ci.example/run/7")
    assert run(capsys, "channel", "set", "production", "django-web", "b3", "--provider", "qemu")[0] == 0
    assert run(capsys, "latest", "-p", "qemu", "--channel", "production")[1].strip() == "qemu-local-b3"
    assert run(capsys, "latest", "-p", "digitalocean", "--channel", "production")[1].strip() == "digitalocean-nyc3-b2"

    code, out, _ = run(capsys, "channel", "list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [("production", "digitalocean", "b2"), ("production", "qemu", "b3")]
    assert rows[1][-1] == "https://ci.example/run/7" and rows[0][-1] == "alice@laptop"

    hist = channels.history(cat, "production", "django-web", "qemu")
    assert [(h["action"], h["from_build"], h["to_build"], h["changed_by"]) for h in hist] == [
        ("set", "b2", "b3", "https://ci.example/run/7"), ("set", None, "b2", "alice@laptop")]
    assert all(NOW - 60 < h["changed_at"] <= time.time() for h in hist)

    code, out, _ = run(capsys, "channel", "rollback", "production", "django-web", "--provider", "qemu")
    assert code == 0 and "rolled back production of django-web (qemu): b3 -> b2" in out
    assert run(capsys, "latest", "-p", "qemu", "--channel", "production")[1].strip() == "qemu-local-b2"
    code, out, _ = run(capsys, "channel", "history", "production", "django-web", "-p", "qemu")
    assert out.splitlines()[1].split()[3:7] == ["qemu", "rollback", "b3", "b2"]
    # Nothing before b2 on this channel: a second rollback says so instead of toggling back to b3.
    code, _, err = run(capsys, "channel", "rollback", "production", "django-web", "-p", "qemu")
    assert code == 2 and "no earlier, unrevoked build" in err


def test_rollback_twice_walks_two_steps_back(cat):
    for build in ("b1", "b2", "b3"):
        channels.set_channel(cat, "dev", "django-web", build, "qemu")
    assert [c.to_build for c in channels.rollback(cat, "dev", "django-web", "qemu")] == ["b2"]
    assert [c.to_build for c in channels.rollback(cat, "dev", "django-web", "qemu")] == ["b1"]
    assert channels.resolve(cat, "dev", "qemu")[0].build_id == "b1"


def test_set_refuses_unverified_unknown_and_revoked_builds(cat, capsys):
    for argv, fragment in [
        (("b4", "--provider", "qemu"), "is not verified"),
        (("nope",), "no build 'nope' of django-web"),
    ]:
        code, _, err = run(capsys, "channel", "set", "production", "django-web", *argv)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run(capsys, "channel", "set", "Prod\x1b[2J", "django-web", "b1")
    assert code == 2 and "\x1b" not in err
    revocation.revoke(cat, None, "b1", "CVE-2026-0001")
    code, _, err = run(capsys, "channel", "set", "production", "django-web", "b1")
    assert code == 2 and "b1 of django-web is revoked (CVE-2026-0001)" in err
    assert channels.assignments(cat) == []


def test_revoke_makes_latest_launch_and_channels_refuse(cat, capsys, tmp_path):
    channels.set_channel(cat, "production", "django-web", "b2")
    channels.set_channel(cat, "production", "django-web", "b3")
    code, out, _ = run(capsys, "revoke", "b3", "--reason", "bad nginx config")
    assert code == 0 and "revoked b3 qemu local qemu-local-b3" in out
    assert "djbake channel rollback production django-web --provider qemu" in out
    # latest skips it (b2 is the newest unrevoked verified build); the channel refuses it and names the rollback
    assert run(capsys, "latest", "-p", "qemu")[1].strip() == "qemu-local-b2"
    code, _, err = run(capsys, "latest", "-p", "qemu", "--channel", "production")
    assert code == 2 and "points at build b3, which is revoked (bad nginx config)" in err
    assert "djbake channel rollback production django-web --provider qemu" in err
    args = argparse.Namespace(channel="production", image_name=None)
    with pytest.raises(UserError, match="revoked"):
        launch_cmd.selected(args, "qemu")
    code, _, err = run(capsys, "launch", "-p", "digitalocean", "--channel", "production")
    assert code == 2 and "revoked" in err
    assert "REVOKED: djbake channel rollback production django-web --provider qemu" in run(capsys, "channel", "list")[1]
    # the revocation is recorded with who and why, and shown
    code, out, _ = run(capsys, "images", "--show", str(cat.query(build_id="b3", provider="qemu", state=None)[0].id))
    assert "bad nginx config" in out and "alice@laptop" in out
    # rollback goes to b2; launch --channel then selects it
    run(capsys, "channel", "rollback", "production", "django-web")
    assert launch_cmd.selected(args, "qemu").build_id == "b2"
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\n")
    code, out, _ = run(capsys, "launch", "-p", "digitalocean", "--channel", "production", "--user-data", str(user_data))
    assert code == 0 and "digitalocean-nyc3-b2" in shlex.split(out)
    # revoking again changes nothing; a merge cannot un-revoke
    assert run(capsys, "revoke", "b3")[1].startswith("build b3 was already revoked")


def test_export_channel_for_terraform_external(cat, capsys):
    channels.set_channel(cat, "staging", "django-web", "b2")
    import json

    code, out, _ = run(capsys, "catalog", "export", "--channel", "staging", "--name", "django-web")
    assert code == 0
    assert json.loads(out) == {"qemu/local": "qemu-local-b2", "qemu/build_id": "b2",
                               "digitalocean/nyc3": "digitalocean-nyc3-b2", "digitalocean/build_id": "b2"}


def _mover(where: str, n: int, start) -> None:
    start.wait()
    channels.set_channel(catalog.Catalog(where), "production", "django-web", ("b1", "b2", "b3")[n % 3], "qemu")


def test_eight_runners_moving_one_channel_lose_no_update(catalog_at):
    where = catalog_at()
    c = catalog.Catalog(where)
    for b in ("b1", "b2", "b3"):
        c.add([_entry(b, b)])
    start = ctx.Event()
    procs = [ctx.Process(target=_mover, args=(where, n, start)) for n in range(8)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    hist = list(reversed(channels.history(c, "production", "django-web", "qemu")))
    assert hist and hist[0]["from_build"] is None
    for before, after in zip(hist, hist[1:]):
        assert after["from_build"] == before["to_build"]  # each change saw the one before it
    assert channels.assignments(c)[0]["build_id"] == hist[-1]["to_build"]


def test_who_names_the_ci_run_or_user_at_host(monkeypatch):
    from builder.catalog import who

    for key in ("DJBAKE_ACTOR", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "CI_JOB_URL", "BUILD_URL"):
        monkeypatch.delenv(key, raising=False)
    assert "@" in who.who()
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/9")
    assert who.who() == "https://gitlab.example/g/p/-/jobs/9"
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/site")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert who.who() == "https://github.com/team/site/actions/runs/42"
    monkeypatch.setenv("DJBAKE_ACTOR", "release-bot for carol")
    assert who.who() == "release-bot for carol"


def test_docker_launch_by_channel_refuses_a_revoked_build_before_starting_anything(cat, capsys):
    cat.add([_entry("d1", "2026.11.29", provider="docker", region="local", age=5)])
    channels.set_channel(cat, "production", "django-web", "d1", "docker")
    revocation.revoke(cat, None, "d1", "broken")
    code, _, err = run(capsys, "launch", "-p", "docker", "--channel", "production", "--name", "ch-test")
    assert code == 2 and "revoked (broken)" in err and "rollback production django-web --provider docker" in err
