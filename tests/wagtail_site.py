"""A site made by `wagtail start`, as a new Wagtail user makes one, for the deploy test.

Wagtail (current on PyPI, not pinned) and the wheels it needs are downloaded
on the host for the image's Python, to generate the project inside a
container of the image (Wagtail 8 needs Django 6.1, so Python >= 3.12, which
this host's Python is not). The generated project is then deployed as it is
(tests/test_docker_loop.py): djbake-deploy installs its requirements.txt
from PyPI, which the container reaches once it trusts this host's CAs (its
TLS goes through an intercepting proxy), as cloud-init's ca_certs would do.
"""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

WHEELS = "/root/wagtail-wheels"
HOST_CAS = Path("/usr/local/share/ca-certificates")
SITE = "/root/mysite"


def download_wheels(dest: Path, python: str, glibc: tuple[int, int]) -> subprocess.CompletedProcess:
    """The current Wagtail and its requirements as wheels for the image's CPython and glibc."""
    tag = python.replace(".", "")
    platforms = [f"manylinux_{glibc[0]}_{m}_x86_64" for m in range(glibc[1], 16, -1)] + ["manylinux2014_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
           *[a for p in platforms for a in ("--platform", p)], "-d", str(dest), "wagtail"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def put_wheels(box, wheels: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(wheels), arcname=Path(WHEELS).name)
    assert box.put_archive(str(Path(WHEELS).parent), buf.getvalue())


def generate(box) -> str:
    """`wagtail start mysite` in a throwaway venv of the image's python3; the output of the commands."""
    script = (f"set -e; python3 -m venv /root/wagtail-cli; "
              f"/root/wagtail-cli/bin/pip install -q --no-index --find-links {WHEELS} wagtail; "
              f"mkdir -p {SITE}; /root/wagtail-cli/bin/wagtail start mysite {SITE}; "
              f"/root/wagtail-cli/bin/pip list 2>/dev/null | grep -Ei '^(wagtail|django) '")
    code, out = box.exec_run(["bash", "-c", script])
    text = out.decode(errors="replace")
    assert code == 0, text
    return text


def trust_host_cas(box) -> None:
    """This host's CAs in the container, as cloud-init's ca_certs would put them: PyPI answers through the
    host's TLS-inspecting proxy, so djbake-deploy's uv (system CA store) reaches it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for cert in sorted(HOST_CAS.glob("*.crt")):
            tar.add(str(cert), arcname=cert.name)
    assert box.put_archive(str(HOST_CAS), buf.getvalue())
    code, out = box.exec_run(["update-ca-certificates"])
    assert code == 0, out
