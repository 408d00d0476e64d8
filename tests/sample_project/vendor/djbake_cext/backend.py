"""A PEP 517 build backend that compiles djbake_cext.c with the system's cc.

Just enough for pip to build a wheel from this directory without setuptools
(so without PyPI): the test needs a requirement that only a C toolchain and
the Python and libpq headers can install.
"""
import base64
import hashlib
import os
import subprocess
import sysconfig
import tempfile
import zipfile

NAME, VERSION = "djbake_cext", "1.0"
HERE = os.path.dirname(os.path.abspath(__file__))


def _tag() -> str:
    py = f"cp{sysconfig.get_config_var('py_version_nodot')}"
    return f"{py}-{py}-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ext = NAME + sysconfig.get_config_var("EXT_SUFFIX")
    with tempfile.TemporaryDirectory() as tmp:
        so = os.path.join(tmp, ext)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", sysconfig.get_paths()["include"],
                        "-I", "/usr/include/postgresql", os.path.join(HERE, NAME + ".c"),
                        "-o", so, "-lpq"], check=True)
        with open(so, "rb") as f:
            binary = f.read()
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        ext: binary,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: djbake-cext\nVersion: {VERSION}\n".encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: djbake-test\nRoot-Is-Purelib: false\nTag: {_tag()}\n".encode(),
    }
    wheel = f"{NAME}-{VERSION}-{_tag()}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel
