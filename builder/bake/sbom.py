"""The image's software bill of materials: every Debian package, every Python package of the app's
virtualenv and the tools installed outside both (uv, from its PyPI wheel: scripts/python.sh), read
inside the build VM or container, written as CycloneDX JSON.

The in-build gate (builder/bake/gate.py) calls `record()` once the suite has passed, through the same
testinfra connection, so the list is what the sealed image holds (seal.sh removes files, not packages):
it writes the raw lists to packages.json in the build directory. The pipeline (record step) turns them
into the CycloneDX document (it knows the image's name, version and OS), writes sbom.cdx.json next to
the build's other files and stores the document in the catalog (builder/catalog/store.py `add_sbom`, content-
addressed: regions and identical rebuilds share one copy) with a summary in the entry's `extra`, and
`djbake images --sbom ID` writes it out for auditors. The document is made with cyclonedx-python-lib,
the CycloneDX project's own library, so the format is theirs, not ours.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import OutputFormat, make_outputter
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

PACKAGES = "packages.json"   # the gate's raw lists
FILE = "sbom.cdx.json"       # the document
VENV_PYTHON = "/srv/app/venv/bin/python"   # the live release's virtualenv (scripts/python.sh)

# One line per installed package; `db:Status-Abbrev` "ii " is installed (not removed, config-files only).
DPKG_QUERY = "dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'"
# importlib.metadata needs no pip in the venv; the names are printed as the packages spell them.
VENV_QUERY = (VENV_PYTHON + " -c 'import importlib.metadata as m, json; "
              "print(json.dumps(sorted({(d.metadata[\"Name\"], d.version) for d in m.distributions()})))'")
# Tools neither dpkg nor the venv knows of: uv's static binary, taken out of its wheel by python.sh
# (djbake-deploy installs every release with it). One `NAME VERSION` line each.
TOOL_QUERY = "/usr/local/bin/uv --version"


class SbomError(Exception):
    """The target did not answer the package queries as expected."""


def parse_dpkg(text: str) -> list[tuple[str, str, str]]:
    """(package, version, architecture) of every installed package in DPKG_QUERY's output."""
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            raise SbomError(f"unexpected dpkg-query line: {line[:120]!r}")
        status, name, version, arch = parts
        if status.startswith("ii"):
            found.append((name, version, arch))
    if not found:
        raise SbomError("dpkg-query listed no installed package")
    return sorted(found)


def parse_venv(text: str) -> list[tuple[str, str]]:
    try:
        pairs = [(str(n), str(v)) for n, v in json.loads(text)]
    except (ValueError, TypeError) as e:
        raise SbomError(f"unexpected virtualenv package list: {e}") from None
    return sorted(pairs, key=lambda p: p[0].lower())


def parse_tools(text: str) -> list[tuple[str, str]]:
    """(name, version) of each `NAME VERSION[ extra]` line of TOOL_QUERY's output (`uv 0.9.5 (hash date)`)."""
    found = []
    for line in text.splitlines():
        m = re.match(r"([a-z][a-z0-9-]*) (\d[\w.+-]*)", line.strip())
        if not m:
            raise SbomError(f"unexpected tool version line: {line[:120]!r}")
        found.append((m[1], m[2]))
    if not found:
        raise SbomError("no tool answered its version query")
    return found


def document(debs: list[tuple[str, str, str]], wheels: list[tuple[str, str]], *, image: str, version: str,
             distro: str, tools: list[tuple[str, str]] = ()) -> str:
    """The CycloneDX JSON (spec 1.6) of an image holding debs, in its app venv wheels, and tools: programs
    installed from PyPI wheels outside the venv (an application each, under its PyPI purl)."""
    bom = Bom()
    root = Component(name=image, version=version, type=ComponentType.PLATFORM, bom_ref=f"djbake-image:{image}")
    bom.metadata.component = root
    vendor = distro.split("-", 1)[0]   # debian-13 -> debian, ubuntu-24.04 -> ubuntu (purl's namespace)
    parts = []
    for name, ver, arch in debs:
        purl = PackageURL("deb", vendor, name, ver, {"arch": arch, "distro": distro})
        parts.append(Component(name=name, version=ver, type=ComponentType.LIBRARY, purl=purl, bom_ref=str(purl)))
    for name, ver in wheels:
        purl = PackageURL("pypi", None, name.lower().replace("_", "-"), ver)
        parts.append(Component(name=name, version=ver, type=ComponentType.LIBRARY, purl=purl, bom_ref=str(purl)))
    for name, ver in tools:
        purl = PackageURL("pypi", None, name, ver)
        parts.append(Component(name=name, version=ver, type=ComponentType.APPLICATION, purl=purl,
                               bom_ref=f"tool:{purl}"))   # apart from a venv wheel of the same name
    for part in parts:
        bom.components.add(part)
    bom.register_dependency(root, parts)   # the image contains every part
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # the library's note on a flat dependency graph: ours is flat
        return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=1)


def summary(text: str) -> dict:
    """What the catalog entry shows: format, counts per package type, and the document's sha256."""
    doc = json.loads(text)
    kinds: dict[str, int] = {}
    for c in doc.get("components", []):
        kind = str(c.get("purl", "pkg:other/")).split(":", 1)[1].split("/", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"format": f"CycloneDX {doc.get('specVersion')}", "components": sum(kinds.values()), **kinds,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def record(run: Callable[[str], str], directory: Path) -> Path:
    """Query the target through `run(command) -> stdout` (raising on a failed command) and write the raw
    lists to directory/packages.json, whole or not at all."""
    data = {"deb": parse_dpkg(run(DPKG_QUERY)), "pypi": parse_venv(run(VENV_QUERY)),
            "tool": parse_tools(run(TOOL_QUERY))}
    path = Path(directory) / PACKAGES
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return path


def from_packages(path: Path, *, image: str, version: str, distro: str) -> str | None:
    """The document from a gate's packages.json; None when the build wrote none (a failed gate)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return document([tuple(d) for d in data["deb"]], [tuple(w) for w in data["pypi"]], image=image,
                    version=version, distro=distro, tools=[tuple(t) for t in data.get("tool", [])])
