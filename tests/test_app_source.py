"""A spec's `app:` project from the build host: resolved against the spec file, copied into the payload.

Fast: render only (no Packer run). That app.sh deploys the copy in a real
image is tested by the docker loop (tests/test_docker_loop.py).
"""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from builder import safe_paths
from builder import spec as spec_mod
from builder.bake import render, stack
from builder.errors import SpecError
from tests.test_cli_errors import djbake, one_line_error

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "sample_project"


def spec_text(source: str) -> str:
    return f"""\
name: django-app
os: debian-13
app:
  source: {source}
  module: sample.wsgi
  settings: sample.settings
"""


def write_spec(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "django-app.yaml"
    path.write_text(spec_text(source))
    return path


def rendered_env(out: Path, provider: str = "docker") -> dict[str, str]:
    template = json.loads((out / "django-app" / provider / "django-app.pkr.json").read_text())
    env = next(p["shell"]["environment_vars"] for p in template["build"][0]["provisioner"]
               if "environment_vars" in p.get("shell", {}))
    return dict(v.split("=", 1) for v in env)


def test_directory_relative_to_the_spec_is_copied_into_the_payload(tmp_path):
    project = tmp_path / "projects" / "mysite"
    (project / "mysite" / "__pycache__").mkdir(parents=True)
    (project / "manage.py").write_text("# manage\n")
    (project / "mysite" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (project / ".git").mkdir()
    spec = spec_mod.load(write_spec(tmp_path / "specs", "../projects/mysite"))
    render.render(spec, ["docker"], None, base=tmp_path / "out")
    copy = tmp_path / "out" / "django-app" / "docker" / "payload" / "app" / "mysite"
    assert (copy / "manage.py").read_text() == "# manage\n"
    assert not (copy / "mysite" / "__pycache__").exists() and not (copy / ".git").exists()
    assert rendered_env(tmp_path / "out")["DJBAKE_APP_SOURCE"] == "app/mysite"
    # What app.sh runs in the VM: the payload path resolves to the copy.
    assert (copy.parent.parent / rendered_env(tmp_path / "out")["DJBAKE_APP_SOURCE"]).is_dir()


@pytest.mark.parametrize("name", ["mysite-1.0.tar.gz", "mysite-1.0-py3-none-any.whl"])
def test_archive_is_copied_as_a_file(tmp_path, name):
    archive = tmp_path / "dist" / name
    archive.parent.mkdir()
    # A real archive holding a project (app.source must be a Python project: builder/source_checks.py).
    buf = io.BytesIO()
    if name.endswith(".whl"):
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("mysite/__init__.py", "")
    else:
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = b"[project]\nname = 'mysite'\n"
            info = tarfile.TarInfo("mysite-1.0/pyproject.toml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(buf.getvalue())
    spec = spec_mod.load(write_spec(tmp_path, f"dist/{name}"))
    render.render(spec, ["qemu"], None, base=tmp_path / "out")
    payload = tmp_path / "out" / "django-app" / "qemu" / "payload"
    assert (payload / "app" / name).read_bytes() == buf.getvalue()
    assert rendered_env(tmp_path / "out", "qemu")["DJBAKE_APP_SOURCE"] == f"app/{name}"


def test_url_is_passed_on_and_nothing_copied(tmp_path):
    url = "https://downloads.example.com/mysite-1.0.tar.gz"
    stale = tmp_path / "out" / "django-app" / "docker" / "payload" / "app"
    stale.mkdir(parents=True)  # left by an earlier render with a local app
    safe_paths.make(stale.parent.parent)  # that render made the output directory
    spec = spec_mod.load(write_spec(tmp_path, url))
    render.render(spec, ["docker"], None, base=tmp_path / "out")
    assert not stale.exists()
    assert rendered_env(tmp_path / "out")["DJBAKE_APP_SOURCE"] == url
    assert stack.environment(spec, "docker")["DJBAKE_APP_SOURCE"] == url


def test_git_urls_are_urls(tmp_path):
    for url in ("git+https://example.com/mysite.git", "git@example.com:me/mysite.git", "ssh://git@h/mysite.git"):
        spec = spec_mod.load(write_spec(tmp_path, url))
        assert stack.environment(spec, "docker")["DJBAKE_APP_SOURCE"] == url


def test_missing_path_is_a_located_error(tmp_path):
    path = write_spec(tmp_path, "../nowhere/mysite")
    with pytest.raises(SpecError) as e:
        spec_mod.load(path)
    assert str(e.value).startswith(f"{path}:4:11: app.source: no such file or directory: ")
    assert str(tmp_path.parent / "nowhere" / "mysite") in str(e.value)


def test_unusable_file_is_a_located_error(tmp_path):
    (tmp_path / "mysite.zip").write_bytes(b"PK")
    with pytest.raises(SpecError, match=r":4:11: app.source: mysite.zip: expected a directory, a wheel"):
        spec_mod.load(write_spec(tmp_path, "mysite.zip"))


def test_cli_missing_app_is_one_line_exit_2_and_writes_nothing(tmp_path):
    path = write_spec(tmp_path, "missing-project")
    out = tmp_path / "out"
    proc = djbake("render", "--spec", str(path), "-p", "docker", "--no-packer", "--out", str(out), tmp=tmp_path)
    one_line_error(proc, f"{path}:4:11: app.source: no such file or directory")
    assert not out.exists()


def test_sample_project_tarball_renders(tmp_path):
    """The sample project as a user would ship it: a tarball next to the spec."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(str(SAMPLE), arcname="sample-1.0", filter=lambda ti: None if "__pycache__" in ti.name else ti)
    (tmp_path / "sample-1.0.tar.gz").write_bytes(buf.getvalue())
    spec = spec_mod.load(write_spec(tmp_path, "sample-1.0.tar.gz"))
    render.render(spec, ["docker"], None, base=tmp_path / "out")
    copied = tmp_path / "out" / "django-app" / "docker" / "payload" / "app" / "sample-1.0.tar.gz"
    with tarfile.open(copied) as tar:
        assert "sample-1.0/sample/settings.py" in tar.getnames()
