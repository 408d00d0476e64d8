"""What `app.source` and `app.requirements` may name (checked when the spec loads, again when copied).

A local source is copied from the build host into every provider's payload,
so it must be a Python project and nothing else: not a system directory,
not the home directory (credentials live there), not djbake's own build
output (which would copy itself level after level), not a special file;
and its symlinks never lead out of it. A URL is fetched inside the build VM:
credentials in it would land in the templates and the image, and a git URL
that starts with `-` would be an option to git.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from builder import paths
from builder.errors import UserError

if TYPE_CHECKING:
    from builder.spec import Spec

# Local sources that are files: a built project.
ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git@|git\+)")
PROJECT_MARKERS = ("manage.py", "pyproject.toml", "setup.py")
MAX_NAME = 255      # one path component (NAME_MAX)
MAX_PATH = 4096     # PATH_MAX
MAX_FILES = 50_000  # a project bigger than this is a mistake (a home directory, a filesystem)
# Never a project, nor inside one: the host's own files.
SYSTEM_DIRS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
               "/usr/bin", "/usr/sbin", "/usr/lib", "/var/log", "/var/lib/dpkg", "/var/lib/apt")
# Never a project itself (too broad: they contain everyone's files).
BROAD_DIRS = ("/", "/usr", "/var", "/home", "/root", "/opt", "/srv", "/tmp", "/mnt", "/media", "/var/lib")
CREDENTIAL_ADVICE = ("credentials in a URL land in the templates and in the image's build.env: use a deploy key "
                     "(ssh://git@host/repo.git) or a netrc that exists only during the build")



def is_url(source: str) -> bool:
    return bool(_URL.match(source))


def resolve(source: str, base_dir: Path) -> Path | None:
    """The host path `source` names (relative to the spec's directory); None for a URL."""
    if is_url(source):
        return None
    return (base_dir / Path(source).expanduser()).resolve()

def problem(spec: "Spec") -> tuple[tuple, str] | None:
    """The first problem with app.source / app.requirements as (spec path, message), or None."""
    if spec.app is None:
        return None
    source = spec.app.source
    if is_url(source):
        why = url_problem(source)
        if why:
            return ("app", "source"), why
        path = None
    else:
        why = name_problem(source)
        if why:
            return ("app", "source"), why
        path = resolve(source, spec.base_dir)
        why = path_problem(path)
        if why:
            return ("app", "source"), why
    if spec.app.requirements is not None:
        why = requirements_problem(spec.app.requirements, path if path is not None and path.is_dir() else None)
        if why:
            return ("app", "requirements"), why
    return None


def url_problem(url: str) -> str | None:
    if any(c.isspace() for c in url):
        return "a URL has no spaces or line breaks"
    rest = url[4:] if url.startswith("git+") else url
    if rest.startswith("-"):
        return "a URL may not start with '-' (git would read it as an option)"
    if url.startswith("git@"):
        host = url[4:].split(":", 1)[0]
        if not host or host.startswith("-"):
            return f"{url!r}: no host name after git@"
        return None
    parts = urlsplit(rest)
    if parts.scheme not in ("https", "http", "ssh", "git", "file"):
        return f"unsupported URL scheme {parts.scheme!r} (https, ssh, git or git+https)"
    if parts.password is not None or (parts.username is not None and parts.scheme in ("https", "http")):
        return CREDENTIAL_ADVICE
    if (parts.hostname or "").startswith("-") or parts.path.startswith("-"):
        return "a host or path may not start with '-' (git would read it as an option)"
    if "@-" in parts.path or "#-" in url:
        return "a git reference may not start with '-'"
    return None


def name_problem(source: str) -> str | None:
    if not source.strip():
        return "is empty: give the project's directory, wheel or tarball (relative to the spec)"
    if len(source) > MAX_PATH:
        return f"a path of {len(source)} characters (at most {MAX_PATH})"
    if any(len(part) > MAX_NAME for part in source.split("/")):
        return f"a path component longer than {MAX_NAME} characters"
    return None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def path_problem(path: Path) -> str | None:
    """Why this host path may not be copied into an image, or None."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return f"no such file or directory: {path}"
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"
    home = Path.home().resolve()
    if _inside(home, path):
        return f"{path} is (or contains) the home directory, not a project"
    if str(path) in BROAD_DIRS or any(_inside(path, Path(d)) for d in SYSTEM_DIRS):
        return f"{path} is a system directory, not a project"
    build = paths.BUILD_DIR.resolve()
    if _inside(path, build) or _inside(build, path):
        return f"{path} is (or contains) djbake's build output, not a project"
    if stat.S_ISDIR(st.st_mode):
        if not any((path / m).is_file() for m in PROJECT_MARKERS):
            return f"{path} is not a Python project: no {', '.join(PROJECT_MARKERS)} at its top"
        return tree_problem(path)
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is a special file (device, FIFO or socket), not a project"
    if not path.name.endswith(ARCHIVES):
        return f"{path.name}: expected a directory, a wheel (.whl) or a tarball (.tar.gz, .tgz, .tar)"
    return archive_problem(path)


def tree_problem(root: Path) -> str | None:
    """Special files, or symlinks that lead out of the project (they are never followed out)."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            count += 1
            if count > MAX_FILES:
                return f"{root} holds more than {MAX_FILES} files: not a project"
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = p.resolve()
                if not _inside(target, root):
                    return f"{p.relative_to(root)} is a symlink out of the project (to {target})"
            elif not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                return f"{p.relative_to(root)} is a special file (device, FIFO or socket)"
    return None


def archive_problem(path: Path) -> str | None:
    """A wheel is a project by definition; a tarball must hold one at its top (or one level down)."""
    if path.name.endswith(".whl"):
        return None if zipfile.is_zipfile(path) else f"{path.name} is not a wheel (not a zip file)"
    try:
        with tarfile.open(path) as tar:
            names = [m.name.lstrip("./") for m in tar.getmembers()[:MAX_FILES]]
    except (tarfile.TarError, OSError, EOFError) as e:
        return f"{path.name} is not a readable tarball ({e})"
    tops = {n for n in names if n.count("/") <= 1 and n.rsplit("/", 1)[-1] in PROJECT_MARKERS}
    if not tops:
        return f"{path.name} is not a Python project: no {', '.join(PROJECT_MARKERS)} at its top"
    return None


def requirements_problem(requirements: str, project: Path | None) -> str | None:
    parts = Path(requirements).parts
    if not requirements or requirements.startswith(("/", "~")) or ".." in parts or "\\" in requirements:
        return "must be a relative path inside the project (no /, ~ or ..)"
    if name_problem(requirements):
        return name_problem(requirements)
    if project is not None:
        target = (project / requirements).resolve()
        if not _inside(target, project):
            return f"{requirements} leads out of the project (to {target})"
        if not target.is_file():
            return f"no file {requirements} in {project}"
    return None


def copy_project(src: Path, dst: Path, ignore=None) -> None:
    """Copy a checked project: symlinks stay links (they point inside it), special files never copied."""
    why = path_problem(src)
    if why:  # changed since the spec was loaded
        raise UserError(f"app.source: {why}")
    if _inside(dst.resolve(), src):
        raise UserError(f"app.source: {src} contains the output directory {dst}; render somewhere else (--out)")
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, ignore=ignore)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)
