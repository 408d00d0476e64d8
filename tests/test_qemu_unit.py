"""The qemu provider's parts that need no VM: cache keys, mirrors, seeds, manifests, accelerator choice."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from builder import digest, providers, spec
from builder.bake import packer, pipeline, stack, wheelhouse
from builder.errors import BuildFailed, UserError
from builder.paths import ROOT
from builder.providers import base
from builder.providers.base import BuildContext
from builder.qemu import accel, base_image, fresh_boot, vm

HERE = Path(__file__).parent
SPEC = spec.load(HERE / "specs" / "golden.yaml")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DJBAKE_IMAGES", str(tmp_path / "images"))
    monkeypatch.delenv("DJBAKE_ACCELERATOR", raising=False)
    monkeypatch.delenv("DJBAKE_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("DJBAKE_DEBIAN_SECURITY_MIRROR", raising=False)


def _apt_dir(tmp_path: Path, sources: str = "", lists: str = "") -> Path:
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    (d / "sources.list").write_text(lists)
    if sources:
        (d / "sources.list.d" / "debian.sources").write_text(sources)
    return d


# -- base image ----------------------------------------------------------------

DEB822 = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirrors_come_from_the_hosts_deb822_sources(tmp_path):
    m = base_image.mirrors(_apt_dir(tmp_path, sources=DEB822))
    assert m == {"debian": "http://mirror.example/debian", "security": "http://mirror.example/debian-security"}


def test_mirrors_from_one_line_lists_skip_foreign_repositories(tmp_path):
    lists = ("deb [arch=amd64 signed-by=/k.gpg] https://packages.cloud.google.com/apt cloud-sdk main\n"
             "deb http://local.mirror/debian bookworm main\n"
             "deb http://local.mirror/debian-security bookworm-security main\n")
    m = base_image.mirrors(_apt_dir(tmp_path, lists=lists))
    assert m == {"debian": "http://local.mirror/debian", "security": "http://local.mirror/debian-security"}


def test_mirrors_fall_back_to_deb_debian_org_and_env_overrides(tmp_path, monkeypatch):
    apt = _apt_dir(tmp_path)
    assert base_image.mirrors(apt) == base_image.DEFAULT_MIRRORS
    monkeypatch.setenv("DJBAKE_DEBIAN_MIRROR", "http://airgap.local/debian")
    assert base_image.mirrors(apt)["debian"] == "http://airgap.local/debian"


def test_base_input_hash_is_stable_and_follows_every_input(tmp_path, monkeypatch):
    apt = _apt_dir(tmp_path, sources=DEB822)
    first = base_image.input_hash("debian-12", "amd64", apt)
    assert first == base_image.input_hash("debian-12", "amd64", apt)
    # the package list
    monkeypatch.setattr(base_image, "PACKAGES", base_image.PACKAGES + ("vim",))
    with_vim = base_image.input_hash("debian-12", "amd64", apt)
    assert with_vim != first
    # the chroot script's contents
    script = tmp_path / "setup.sh"
    script.write_text(base_image.SETUP_SCRIPT.read_text() + "\n# changed\n")
    monkeypatch.setattr(base_image, "SETUP_SCRIPT", script)
    assert base_image.input_hash("debian-12", "amd64", apt) not in (first, with_vim)
    # the mirror
    other = base_image.input_hash("debian-12", "amd64", _apt_dir(tmp_path / "x"))
    assert other != base_image.input_hash("debian-12", "amd64", apt)


def test_bootstrap_refuses_what_it_cannot_build(monkeypatch):
    from builder import tables

    retired = tables.OS("ubuntu-20.04", "ubuntu", "focal", "3.8", False)
    monkeypatch.setitem(tables.OPERATING_SYSTEMS, "ubuntu-20.04", retired)
    with pytest.raises(UserError, match="ubuntu-20.04 cannot be bootstrapped here"):
        base_image.inputs("ubuntu-20.04")
    with pytest.raises(UserError, match="amd64 only"):
        base_image.inputs("debian-12", "arm64")


def test_ubuntu_bootstrap_inputs_name_ubuntus_archive_and_kernel():
    noble = base_image.inputs("ubuntu-24.04")
    assert "linux-image-virtual" in noble["packages"] and "linux-image-cloud-amd64" not in noble["packages"]
    assert all(" noble" in line and line.endswith("main universe") for line in noble["sources"])
    assert base_image.input_hash("ubuntu-24.04") != base_image.input_hash("ubuntu-26.04")


def test_cached_base_is_reused_without_building(monkeypatch):
    digest = base_image.input_hash("debian-12")
    target = base_image.cached_path("debian-12", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"qcow2")
    target.with_suffix(".sha256").write_text("ab" * 32 + f"  {target.name}\n")
    monkeypatch.setattr(base_image, "_build", lambda *a: pytest.fail("must not rebuild"))
    src = base_image.ensure_bootstrap("debian-12")
    assert (src.url, src.checksum, src.built, src.bootstrapped) == (str(target), "sha256:" + "ab" * 32, False, True)


def test_half_built_base_is_not_used(monkeypatch):
    """Only the disk's final rename makes a base complete: a leftover temp dir or a disk without
    its checksum means building again."""
    digest = base_image.input_hash("debian-12")
    target = base_image.cached_path("debian-12", digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"partial")   # no .sha256 beside it
    called = []
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UserError, match="needs root"):
        base_image.ensure_bootstrap("debian-12")
    assert not called


def test_mbr_has_one_bootable_linux_partition():
    total = 3 * 1024 * 1024 * 2
    table = base_image.mbr(total)
    assert len(table) == 512 and table[510:] == b"\x55\xaa"
    entry = table[446:462]
    assert entry[0] == 0x80 and entry[4] == 0x83
    assert int.from_bytes(entry[8:12], "little") == 2048
    assert int.from_bytes(entry[12:16], "little") == total - 2048
    assert table[462:510] == bytes(48)


def test_source_without_bootstrap_is_the_cloud_image_from_the_table(tmp_path):
    src = base_image.resolve(SPEC, None)
    assert src.url == "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2"
    assert src.checksum.startswith("file:https://") and not src.bootstrapped
    disk = tmp_path / "my.qcow2"
    disk.write_bytes(b"x")
    local = base_image.resolve(SPEC, str(disk))
    assert local.url == str(disk) and local.checksum == "sha256:" + digest.sha256_file(disk)
    with pytest.raises(UserError, match="no such file"):
        base_image.resolve(SPEC, str(tmp_path / "missing.qcow2"))


# -- wheelhouse -------------------------------------------------------------------

def test_wheelhouse_key_follows_the_requirement_list():
    with_redis = SPEC.model_copy(update={"stack": SPEC.stack.model_copy(update={"redis": not SPEC.stack.redis})})
    assert wheelhouse.key(SPEC) == wheelhouse.key(SPEC)
    assert wheelhouse.key(SPEC) != wheelhouse.key(with_redis)
    assert stack.requirements(SPEC) != stack.requirements(with_redis)


def test_wheelhouse_downloads_binary_wheels_for_the_guest(tmp_path):
    cmd = wheelhouse.download_command(SPEC, tmp_path, tmp_path / "r.txt")
    assert "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.13"
    tags = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert tags[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert wheelhouse.platforms("ubuntu-24.04", "arm64")[0] == "manylinux_2_39_aarch64"


def test_cached_wheelhouse_is_reused_and_copied_into_the_payload(tmp_path, monkeypatch):
    target = wheelhouse.cache_dir(SPEC)
    target.mkdir(parents=True)
    (target / "django-5.2-py3-none-any.whl").write_bytes(b"w")
    (target / wheelhouse.REQUIREMENTS).write_text("django==5.2\n")
    (target / wheelhouse.COMPLETE).write_text("{}")
    monkeypatch.setattr(wheelhouse.subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    house = wheelhouse.ensure(SPEC)
    assert not house.downloaded and house.files == ("django-5.2-py3-none-any.whl",)
    payload = tmp_path / "payload"
    (payload / "wheels").mkdir(parents=True)
    from builder import safe_paths

    safe_paths.make(tmp_path)  # the rendered directory (djbake's, as template.write makes it)
    (payload / "wheels" / "stale.whl").write_bytes(b"old")
    dest = wheelhouse.install_into(house, payload)
    assert sorted(p.name for p in dest.iterdir()) == ["django-5.2-py3-none-any.whl", "requirements.txt"]


def test_failed_download_leaves_no_cache(monkeypatch):
    class Proc:
        returncode, stdout, stderr = 1, "", "ERROR: No matching distribution found for django==5.2.19"

    monkeypatch.setattr(wheelhouse.subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(BuildFailed, match="No matching distribution"):
        wheelhouse.ensure(SPEC, log=lambda s: None)
    assert not wheelhouse.cache_dir(SPEC).exists()
    assert not list(wheelhouse.cache_dir(SPEC).parent.glob(".*"))


# -- accelerator ------------------------------------------------------------------

def test_accelerator_env_override_wins(monkeypatch):
    monkeypatch.setattr(accel, "detect", lambda use_cache=True: pytest.fail("must not probe"))
    monkeypatch.setenv("DJBAKE_ACCELERATOR", "kvm")
    assert accel.resolve() == accel.Choice("kvm", "DJBAKE_ACCELERATOR=kvm")
    monkeypatch.setenv("DJBAKE_ACCELERATOR", "TCG")
    assert accel.resolve().accelerator == "tcg"
    monkeypatch.setenv("DJBAKE_ACCELERATOR", "hvf")
    with pytest.raises(UserError, match="DJBAKE_ACCELERATOR"):
        accel.resolve()


def test_accelerator_probe_answer_is_cached_per_host(monkeypatch, tmp_path):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda path="/dev/kvm": True)
    monkeypatch.setattr(accel, "host_key", lambda: "host-1")
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"k")
    monkeypatch.setattr(accel, "probe_kernel", lambda: (kernel, None))
    probes = []
    monkeypatch.setattr(accel, "probe", lambda k, i: probes.append(k) or (False, "MSR assertion"))
    assert accel.resolve().accelerator == "tcg"
    assert accel.resolve().reason.endswith("(cached)")
    assert len(probes) == 1
    monkeypatch.setattr(accel, "host_key", lambda: "host-2")   # another kernel/QEMU/CPU: probe again
    monkeypatch.setattr(accel, "probe", lambda k, i: probes.append(k) or (True, "booted"))
    assert accel.resolve() == accel.Choice("kvm", "booted")
    assert len(probes) == 2


def test_no_usable_kvm_device_means_tcg_without_probing(monkeypatch):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda path="/dev/kvm": False)
    monkeypatch.setattr(accel, "probe", lambda *a: pytest.fail("must not probe"))
    assert accel.resolve().accelerator == "tcg"


def test_no_kernel_to_probe_is_tcg_and_not_cached(monkeypatch):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda path="/dev/kvm": True)
    monkeypatch.setattr(accel, "probe_kernel", lambda: None)
    assert accel.resolve() == accel.Choice("tcg", "no kernel to probe KVM with")
    assert not accel._cache_file().exists()


# -- seeds and keys --------------------------------------------------------------

def test_build_seed_creates_the_build_user_with_the_per_build_key(tmp_path, monkeypatch):
    source = base_image.Source("/base.qcow2", "sha256:" + "0" * 64, True, "abc")
    monkeypatch.setattr(base_image, "resolve", lambda *a, **k: source)
    monkeypatch.setattr(accel, "resolve", lambda *a, **k: accel.Choice("tcg", "test"))
    p = providers.get("qemu")(SPEC)
    ctx = BuildContext(tmp_path / "build", {"build_id": "b1"})
    ctx.build_dir.mkdir()
    p.prepare(ctx)   # (a previous run's output/ is cleared by pipeline.render_step: tests/test_render.py)
    key = ctx.build_dir / "build_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = key.with_name("build_key.pub").read_text().strip()
    text = (ctx.build_dir / "seed" / "user-data").read_text()
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    (user,) = data["users"]
    assert user["name"] == "djbake" and user["ssh_authorized_keys"] == [public]
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and user["lock_passwd"] is True
    assert data["ssh_pwauth"] is False
    # no password of any kind: only the key opens the account
    for secretish in ("passwd", "plain_text_passwd", "hashed_passwd", "password", "chpasswd"):
        assert secretish not in user and secretish not in data
    meta = json.loads((ctx.build_dir / "seed" / "meta-data").read_text())
    assert meta["instance-id"] == "djbake-build-b1"
    # the private key is filtered from Packer's log, and the variables point at it all
    assert key.read_text() in ctx.secrets
    assert p.packer_variables(ctx) == {
        "qemu_source": "/base.qcow2", "qemu_source_checksum": "sha256:" + "0" * 64, "qemu_accelerator": "tcg",
        "qemu_cpus": "1", "ssh_key_file": str(key), "qemu_seed_dir": str(ctx.build_dir / "seed"),
    }
    p.cleanup(ctx)
    assert not key.exists() and not key.with_name("build_key.pub").exists()


def test_verification_seed_applies_a_marker_through_user_data():
    data = fresh_boot.seed_config("ssh-ed25519 AAAA verify", "tok")
    assert data["users"][0]["name"] == "verify"
    (marker,) = data["write_files"]
    assert marker["path"] == fresh_boot.MARKER and marker["content"] == "tok\n"


def test_users_cloud_config_is_merged_with_ours():
    ours = vm.user_config("admin", "ssh-ed25519 AAAA me")
    theirs = "#cloud-config\nusers:\n  - name: alice\npackages: [htop]\ntimezone: Europe/Paris\n"
    merged = yaml.safe_load(vm.merge_user_data(ours, theirs))
    assert [u["name"] for u in merged["users"]] == ["admin", "alice"]
    assert merged["packages"] == ["htop"] and merged["timezone"] == "Europe/Paris"


def test_users_script_goes_beside_our_cloud_config_in_a_mime_archive():
    text = vm.merge_user_data(vm.user_config("admin", "ssh-ed25519 AAAA me"), "#!/bin/sh\necho hi\n")
    assert "Content-Type: multipart/mixed" in text
    assert "text/cloud-config" in text and "text/x-shellscript" in text


def test_seed_iso_is_labelled_cidata(tmp_path):
    if not (os.path.exists("/usr/bin/genisoimage") or os.path.exists("/usr/bin/xorriso")):
        pytest.skip("no ISO tool")
    seed = vm.write_seed_dir(tmp_path / "seed", "#cloud-config\n{}\n", "i-1", "h")
    iso = vm.seed_iso(seed, tmp_path / "seed.iso")
    assert iso.read_bytes()[0x8000 + 40:0x8000 + 46] == b"cidata"


# -- manifest and artifacts ----------------------------------------------------------

def _manifest(path: Path) -> Path:
    path.write_text(json.dumps({
        "builds": [
            {"name": "qemu", "builder_type": "qemu", "artifact_id": "VM", "packer_run_uuid": "old",
             "files": [{"name": "old.qcow2", "size": 1}]},
            {"name": "qemu", "builder_type": "qemu", "artifact_id": "VM", "packer_run_uuid": "new",
             "files": [{"name": "django-web.qcow2", "size": 5}], "custom_data": {"build_id": "b2"}},
        ],
        "last_run_uuid": "new",
    }))
    return path


def test_manifest_entries_of_the_last_run_only(tmp_path):
    (build,) = pipeline.manifest_builds(_manifest(tmp_path / "manifest.json"))
    assert build["custom_data"]["build_id"] == "b2"
    with pytest.raises(BuildFailed, match="no manifest"):
        pipeline.manifest_builds(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"builds": [], "last_run_uuid": "x"}')
    with pytest.raises(BuildFailed, match="no build for its last run"):
        pipeline.manifest_builds(tmp_path / "bad.json")


def test_default_artifacts_split_amazon_region_ids():
    default = base.Provider.artifacts
    ctx = BuildContext(Path("."), {})
    got = default(providers.get("aws")(SPEC), [{"artifact_id": "eu-west-1:ami-2,us-east-1:ami-1"}], ctx)
    assert got == [("eu-west-1", "ami-2"), ("us-east-1", "ami-1")]
    hetzner = providers.get("hetzner")(SPEC)
    assert default(hetzner, [{"artifact_id": "12345"}], ctx) == [(hetzner.regions[0], "12345")]


def test_qemu_artifact_is_moved_out_of_the_build_directory(tmp_path):
    build_dir = tmp_path / "build"
    (build_dir / "output").mkdir(parents=True)
    (build_dir / "output" / "django-web.qcow2").write_bytes(b"disk")
    ctx = BuildContext(build_dir, {"image_version": "1.2.3", "build_id": "b2"})
    p = providers.get("qemu")(SPEC)
    (found,) = p.artifacts(pipeline.manifest_builds(_manifest(tmp_path / "manifest.json")), ctx)
    region, path = found
    assert region == "local"
    assert Path(path) == tmp_path / "images" / "django-web" / "django-web-1.2.3-b2.qcow2"
    assert Path(path).read_bytes() == b"disk" and not (build_dir / "output" / "django-web.qcow2").exists()


def test_providers_without_fresh_boot_verification_are_not_verified():
    result = base.Provider.verify(providers.get("hetzner")(SPEC), [("fsn1", "1")], BuildContext(Path("."), {}))
    assert not result.passed and result.skipped


def test_credentials_and_hook_secrets_reach_the_log_filter(monkeypatch):
    p = providers.get("hetzner")(SPEC)
    for cred in p.credentials:
        monkeypatch.setenv(cred.env, "token-" + cred.env)
    ctx = BuildContext(Path("."), {}, secrets=["-----BEGIN OPENSSH PRIVATE KEY-----x"])
    got = pipeline.secrets_of(pipeline.Job(SPEC, p, packer.Packer("/usr/bin/packer", (1, 6, 6)), ctx))
    assert all("token-" + c.env in got for c in p.credentials if c.secret)
    assert ctx.secrets[0] in got


# -- first-boot comparison --------------------------------------------------------------

def _facts(n: str) -> dict[str, str]:
    return {"machine_id": "m" + n, "host_keys": "h" + n, "secret_key": "s" + n, "db_password": "d" + n,
            "marker": "t" + n, "cloud_init": "done", "system": "running"}


def test_two_boots_must_differ_in_identity_and_secrets():
    checks = fresh_boot.compare(_facts("1"), _facts("2"), ("t1", "t2"), "postgresql")
    assert all(c["ok"] for c in checks.values()), checks
    same = fresh_boot.compare(_facts("1"), _facts("1"), ("t1", "t1"), "postgresql")
    failed = {name for name, c in same.items() if not c["ok"]}
    assert failed == {"machine_id_differs", "host_keys_differ", "secret_key_differs", "db_password_differs"}
    empty = dict(_facts("2"), secret_key=fresh_boot.EMPTY_LINE_SHA256)
    assert not fresh_boot.compare(_facts("1"), empty, ("t1", "t2"), "none")["secret_key_differs"]["ok"]
    assert "db_password_differs" not in fresh_boot.compare(_facts("1"), _facts("2"), ("t1", "t2"), "none")
    assert not fresh_boot.compare(_facts("1"), _facts("2"), ("t1", "wrong"), "none")["user_data_applied"]["ok"]


def test_vm_command_uses_snapshot_and_forwards_ssh_and_http(tmp_path):
    machine = vm.VM("v", tmp_path / "d.qcow2", tmp_path / "seed.iso", ssh_port=2222, http_port=8080,
                    snapshot=True, workdir=tmp_path)
    cmd = " ".join(machine.command())
    assert "-snapshot" in cmd and "accel=tcg" in cmd
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in cmd and "hostfwd=tcp:127.0.0.1:8080-:80" in cmd
    assert f"-pidfile {tmp_path}/v.pid" in cmd


def test_vm_forwards_a_port_to_the_firewall_probe_tcp_and_udp(tmp_path):
    """The image suite's firewall probe (tests/image/test_network.py, which takes its port from
    vm.PROBE_GUEST_PORT) is reached through this forward, and learns it from FORWARDS_ENV."""
    machine = vm.VM("v", tmp_path / "d.qcow2", None, ssh_port=2222, http_port=8080, probe_port=9999,
                    workdir=tmp_path)
    cmd = " ".join(machine.command())
    for proto in ("tcp", "udp"):
        assert f"hostfwd={proto}:127.0.0.1:9999-:{vm.PROBE_GUEST_PORT}" in cmd
    assert json.loads(machine.forwards()) == {"22": 2222, "80": 8080, str(vm.PROBE_GUEST_PORT): 9999}


def test_no_ssh_login_is_tried_before_cloud_init_finished(tmp_path, monkeypatch):
    """Early failed logins would get the forwarding gateway banned by the image's fail2ban."""
    machine = vm.VM("v", tmp_path / "d.qcow2", None, workdir=tmp_path, pid=os.getpid())
    machine.serial_log.write_text("[  50.1] cloud-init[400]: Cloud-init v. 22.4.2 running 'init'\n")
    tries = []
    monkeypatch.setattr(vm.time, "sleep", lambda s: machine.serial_log.write_text(
        machine.serial_log.read_text() + "Cloud-init v. 22.4.2 finished at Sat, 28 Nov 2026\n"))

    class Ok:
        returncode = 0

    def ssh(user, key, command, timeout=120, retries=5):
        assert machine.cloud_init_finished(), "a login was tried before cloud-init finished"
        tries.append(command)
        return Ok()

    monkeypatch.setattr(machine, "ssh", ssh)
    assert not machine.cloud_init_finished()
    machine.wait_for_ssh("verify", tmp_path / "key", timeout=60)
    assert tries == ["true"]


def test_the_build_vm_has_one_vcpu_under_tcg_and_the_specs_under_kvm():
    s = spec.loads("name: web\nproviders:\n  qemu:\n    cpus: 4\n", "t.yaml")
    p = providers.get("qemu")(s, (1, 6, 6))
    assert p.vcpus("tcg") == 1 and p.vcpus("kvm") == 4
    assert p.extra_variables()["qemu_cpus"]["default"] == 4 and p.source()["cpus"] == "${var.qemu_cpus}"


def test_a_vm_djbake_started_ends_when_djbake_is_killed(tmp_path):
    """VM.start ties the VM to its owner: a djbake killed outright (SIGKILL, as a test harness's timeout
    sends) leaves no VM running. A real process stands in for qemu (the same Popen, the same prefix)."""
    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from builder.qemu import vm\n"
        "m = vm.VM('pdeath', Path('/dev/null'), None, workdir=Path(sys.argv[1]))\n"
        "m.command = lambda daemonize=False: ['sleep', '300']\n"
        "m.start()\n"
        "print(m.pid, flush=True)\n"
        "time.sleep(300)\n"), str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(owner.stdout.readline())
        assert vm.pid_alive(child)
        owner.kill()
        owner.wait(timeout=30)
        deadline = time.monotonic() + 30
        while vm.pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not vm.pid_alive(child), f"the VM process {child} outlived its killed owner"
    finally:
        owner.kill()
