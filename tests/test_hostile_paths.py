"""Hostile paths (issue 17, classes 1 and 3): nothing deleted that djbake did not make, no host file copied out.

Class 1: VM names are identifiers, and every removal (launch, stop, the
render output's payload) checks it is inside djbake's directory and marked
as djbake's. Class 3: app.source must be a Python project, not a system or
home directory, not djbake's build output, not a special file, with no
symlink out; requirements stay inside it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder import safe_paths
from builder import spec as spec_mod
from builder.bake import render
from builder.errors import SpecError, UserError
from builder.qemu import launch
from builder.spec import source_checks
from tests.test_cli_errors import ROOT, djbake, one_line_error

# -- class 1: data loss ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "/some/dir", "../build", "a/b", "", "-x", "UPPER", "a" * 64, "a\nb"])
def test_launch_refuses_names_that_are_not_identifiers(tmp_path, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.qcow2").write_bytes(b"data")
    proc = djbake("launch", "--provider", "qemu", "--stop", f"--name={name}", tmp=tmp_path,
                  DJBAKE_VMS=str(tmp_path / "vms"))
    one_line_error(proc, "not a VM name")
    assert (victim / "keep.qcow2").read_bytes() == b"data"


def test_stop_never_removes_what_a_hand_edited_vm_json_points_at(tmp_path, monkeypatch):
    monkeypatch.setenv("DJBAKE_VMS", str(tmp_path / "vms"))
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "data").write_text("keep")
    vmdir = safe_paths.make(tmp_path / "vms" / "web")
    (vmdir / "vm.json").write_text(json.dumps({
        "name": "web", "pid": 2**22 + 12345, "ssh_port": 1, "http_port": 2, "user": "admin", "key": "k",
        "artifact": "a", "directory": str(victim)}))
    with pytest.raises(UserError, match="not inside djbake's directory"):
        launch.stop("web")
    assert (victim / "data").read_text() == "keep"


def test_remove_refuses_unmarked_outside_and_symlinked_targets(tmp_path):
    root = safe_paths.make(tmp_path / "root")
    unmarked = root / "theirs"
    unmarked.mkdir()
    with pytest.raises(UserError, match="not made by djbake"):
        safe_paths.remove(unmarked, root)
    outside = safe_paths.make(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="not inside"):
        safe_paths.remove(outside, root)
    with pytest.raises(UserError, match="not inside"):
        safe_paths.remove(root / "..", root)
    link = root / "link"
    link.symlink_to(outside)
    with pytest.raises(UserError, match="symlink"):
        safe_paths.remove(link, root)
    assert unmarked.is_dir() and outside.is_dir() and (outside / safe_paths.MARKER).is_file()
    ours = safe_paths.make(root / "ours")
    assert safe_paths.remove(ours, root) and not ours.exists()


def test_render_out_into_a_directory_djbake_did_not_make_is_refused(tmp_path):
    out = tmp_path / "out" / "django-web" / "qemu"
    (out / "payload" / "scripts").mkdir(parents=True)
    (out / "payload" / "scripts" / "mine.sh").write_text("keep")
    proc = djbake("render", "--provider", "qemu", "--no-packer", "--out", str(tmp_path / "out"), tmp=tmp_path)
    one_line_error(proc, "not made by djbake")
    assert (out / "payload" / "scripts" / "mine.sh").read_text() == "keep"


# -- class 3: host files into the payload ------------------------------------------------------------

def spec_at(directory: Path, source: str, requirements: str | None = None) -> Path:
    path = directory / "spec.yaml"
    app = {"source": source, "module": "mysite.wsgi"}
    if requirements is not None:
        app["requirements"] = requirements
    path.write_text(json.dumps({"name": "django-app", "app": app}))
    return path


def project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manage.py").write_text("# manage\n")
    (directory / "requirements.txt").write_text("django\n")
    return directory


@pytest.mark.parametrize("source, fragment", [
    ("/etc", "system directory"), ("/proc/self", "system directory"), ("/", "not a project"),
    ("~", "home directory"), ("/dev/null", "system directory"), ("", "empty"),
    (str(ROOT), "build output"), (str(ROOT / "build"), "build output"),
    ("notaproject", "not a Python project"), ("x" * 300, "longer than 255"),
])
def test_app_source_must_be_a_project_and_nothing_of_the_hosts(tmp_path, source, fragment):
    (tmp_path / "notaproject").mkdir()
    (ROOT / "build").mkdir(exist_ok=True)  # a fresh clone has none yet; djbake's first command makes it
    with pytest.raises(SpecError) as info:
        spec_mod.load(spec_at(tmp_path, source))
    assert info.value.field == "app.source" and fragment in str(info.value), str(info.value)


def test_dotdot_from_images_is_the_repository_and_refused():
    """`source: ".."` beside images/ named the repository, which holds build/: it copied itself level after level."""
    text = 'name: django-app\napp:\n  source: ".."\n  module: mysite.wsgi\n'
    with pytest.raises(SpecError, match="build output"):
        spec_mod.loads(text, str(ROOT / "images" / "hostile.yaml"))  # relative to images/; the file need not exist


def test_symlinks_out_of_the_project_are_refused(tmp_path):
    app = project(tmp_path / "app")
    (app / "secrets").symlink_to(Path.home())
    with pytest.raises(SpecError, match="symlink out of the project"):
        spec_mod.load(spec_at(tmp_path, "app"))


def test_symlinks_inside_the_project_stay_links_and_nothing_outside_is_copied(tmp_path):
    app = project(tmp_path / "app")
    (app / "pkg").mkdir()
    (app / "alias").symlink_to("pkg")
    spec = spec_mod.load(spec_at(tmp_path, "app"))
    (r,) = render.render(spec, ["docker"], None, tmp_path / "out")
    copied = r.directory / "payload" / "app" / "app"
    assert (copied / "alias").is_symlink() and os.readlink(copied / "alias") == "pkg"


def test_special_files_in_the_project_are_refused(tmp_path):
    app = project(tmp_path / "app")
    os.mkfifo(app / "pipe")
    with pytest.raises(SpecError, match="special file"):
        spec_mod.load(spec_at(tmp_path, "app"))


@pytest.mark.parametrize("requirements", ["../../../../etc/shadow", "/etc/shadow", "~/.aws/credentials", "a/../../x"])
def test_requirements_stay_inside_the_project(tmp_path, requirements):
    project(tmp_path / "app")
    with pytest.raises(SpecError) as info:
        spec_mod.load(spec_at(tmp_path, "app", requirements))
    assert info.value.field == "app.requirements", str(info.value)


def test_requirements_symlinked_out_are_refused(tmp_path):
    app = project(tmp_path / "app")
    (tmp_path / "outside.txt").write_text("x\n")
    (app / "req.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SpecError):  # the tree check sees the link first, the requirements check would too
        spec_mod.load(spec_at(tmp_path, "app", "req.txt"))
    assert source_checks.requirements_problem("req.txt", app) is not None


@pytest.mark.parametrize("source", ["a\x00b", "a\udcffb"])
def test_nul_and_lone_surrogates_in_app_source_are_located(tmp_path, source):
    text = json.dumps({"name": "django-app", "app": {"source": source, "module": "m.wsgi"}})
    with pytest.raises(SpecError) as info:
        spec_mod.loads(text, str(tmp_path / "s.yaml"))
    assert info.value.field == "app.source"


def test_cli_check_on_hostile_sources_is_one_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text('name: django-app\napp:\n  source: "/proc/self"\n  module: m.wsgi\n')
    one_line_error(djbake("check", "--spec", str(spec), tmp=tmp_path), f"{spec}:3:", "app.source")
    spec.write_text('name: django-app\napp:\n  source: "' + "y" * 5000 + '"\n  module: m.wsgi\n')
    one_line_error(djbake("check", "--spec", str(spec), tmp=tmp_path), f"{spec}:3:", "app.source")
