"""The image's software bill of materials (builder/bake/sbom.py) and where the catalog keeps it.

The lists are parsed from the exact commands the gate runs in the build VM; the document is checked
against CycloneDX's own JSON schema (the library's strict validator, offline); the catalog stores it
once per content on both backends, `djbake images --sbom ID` writes it out, and an entry without one
is a one-line error. The real image's SBOM is checked in the docker loop (tests/test_docker_loop.py).
"""
from __future__ import annotations

import hashlib
import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from builder import cli
from builder.bake import sbom
from builder.catalog import import_check
from builder.catalog import store as catalog

DPKG = ("ii \tnginx\t1.26.3-3\tamd64\n"
        "rc \told-removed\t1.0\tamd64\n"          # removed, config files left: not in the image
        "ii \tlibpq5\t17.6-0+deb13u1\tamd64\n"
        "ii \tca-certificates\t20250419\tall\n")
VENV = json.dumps([["Django", "5.2.8"], ["gunicorn", "23.0.0"], ["psycopg", "3.2.12"], ["typing_extensions", "4.15"]])
TOOLS = "uv 0.9.5 (d5f39331a 2025-10-21)\n"   # what `uv --version` prints


def test_dpkg_lists_installed_packages_only():
    assert sbom.parse_dpkg(DPKG) == [("ca-certificates", "20250419", "all"), ("libpq5", "17.6-0+deb13u1", "amd64"),
                                     ("nginx", "1.26.3-3", "amd64")]


@pytest.mark.parametrize("text,message", [
    ("", "no installed package"),
    ("rc \tgone\t1\tamd64\n", "no installed package"),
    ("ii nginx 1.26\n", "unexpected dpkg-query line"),
])
def test_unexpected_dpkg_output_is_an_error(text, message):
    with pytest.raises(sbom.SbomError, match=message):
        sbom.parse_dpkg(text)


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):", '{"Django": "5.2"}', "[[1]]"])
def test_unexpected_venv_output_is_an_error(text):
    with pytest.raises(sbom.SbomError):
        sbom.parse_venv(text)


def test_tools_are_read_from_their_version_lines():
    assert sbom.parse_tools(TOOLS) == [("uv", "0.9.5")]
    assert sbom.parse_tools("uv 0.9.5\n") == [("uv", "0.9.5")]


@pytest.mark.parametrize("text", ["", "bash: /usr/local/bin/uv: No such file or directory", "uv\n"])
def test_unexpected_tool_output_is_an_error(text):
    with pytest.raises(sbom.SbomError):
        sbom.parse_tools(text)


def test_a_tool_is_an_application_apart_from_the_venv():
    """uv lives outside the venv (/usr/local/bin/uv, from its PyPI wheel): listed under its PyPI purl as an
    application, with a reference of its own, so a venv that also holds uv does not collide with it."""
    venv = sbom.parse_venv(json.dumps([["Django", "5.2.8"], ["uv", "0.9.5"]]))
    text = sbom.document([], venv, image="w", version="1", distro="debian-13", tools=sbom.parse_tools(TOOLS))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    uv = [c for c in json.loads(text)["components"] if c["name"] == "uv"]
    assert sorted((c["type"], c["purl"]) for c in uv) == [("application", "pkg:pypi/uv@0.9.5"),
                                                         ("library", "pkg:pypi/uv@0.9.5")]
    assert len({c["bom-ref"] for c in uv}) == 2


def test_document_is_valid_cyclonedx_with_purls():
    text = sbom.document(sbom.parse_dpkg(DPKG), sbom.parse_venv(VENV), image="django-web", version="2026.11.30",
                         distro="debian-13")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["bomFormat"] == "CycloneDX" and doc["metadata"]["component"]["name"] == "django-web"
    purls = {c["purl"] for c in doc["components"]}
    assert "pkg:deb/debian/nginx@1.26.3-3?arch=amd64&distro=debian-13" in purls
    assert "pkg:pypi/django@5.2.8" in purls and "pkg:pypi/typing-extensions@4.15" in purls
    assert not any("old-removed" in p for p in purls)
    # the image depends on every part: the graph is complete, if flat
    (root,) = [d for d in doc["dependencies"] if d["ref"] == doc["metadata"]["component"]["bom-ref"]]
    assert len(root["dependsOn"]) == len(doc["components"]) == 7
    assert sbom.summary(text) | {"sha256": "-"} == {"format": "CycloneDX 1.6", "components": 7, "deb": 3,
                                                    "pypi": 4, "sha256": "-"}


def test_ubuntu_packages_are_in_ubuntus_namespace():
    text = sbom.document([("nginx", "1.24.0-2ubuntu7", "amd64")], [], image="w", version="1", distro="ubuntu-24.04")
    assert json.loads(text)["components"][0]["purl"] == "pkg:deb/ubuntu/nginx@1.24.0-2ubuntu7?arch=amd64&distro=ubuntu-24.04"


def test_record_writes_whole_lists_or_nothing(tmp_path):
    answers = {sbom.DPKG_QUERY: DPKG, sbom.VENV_QUERY: VENV, sbom.TOOL_QUERY: TOOLS}
    path = sbom.record(answers.__getitem__, tmp_path)
    data = json.loads(path.read_text())
    assert len(data["deb"]) == 3 and ["Django", "5.2.8"] in data["pypi"] and data["tool"] == [["uv", "0.9.5"]]
    text = sbom.from_packages(path, image="django-web", version="1", distro="debian-13")
    assert sbom.summary(text)["components"] == 8 and sbom.summary(text)["pypi"] == 5

    # packages.json of a build made before tools were listed still gives its document
    path.write_text(json.dumps({"deb": data["deb"], "pypi": data["pypi"]}))
    assert sbom.summary(sbom.from_packages(path, image="w", version="1", distro="debian-13"))["components"] == 7

    path.unlink()
    for broken in (sbom.VENV_QUERY, sbom.TOOL_QUERY):
        with pytest.raises(sbom.SbomError):
            sbom.record((answers | {broken: "no such file"}).__getitem__, tmp_path)
        assert list(tmp_path.iterdir()) == []   # no half-written lists
    assert sbom.from_packages(tmp_path / sbom.PACKAGES, image="w", version="1", distro="debian-13") is None


def test_catalog_keeps_one_copy_and_images_writes_it_out(catalog_at, monkeypatch, capsys):
    where = catalog_at()
    monkeypatch.setenv("DJBAKE_CATALOG", where)
    cat = catalog.Catalog(where)
    text = sbom.document(sbom.parse_dpkg(DPKG), sbom.parse_venv(VENV), image="django-web", version="1",
                         distro="debian-13")
    sha = cat.add_sbom(text)
    assert cat.add_sbom(text) == sha   # regions of one build share one row
    with cat.connect() as db:
        assert db.execute("SELECT COUNT(*) AS n FROM sboms").fetchone()["n"] == 1
    entries = [catalog.Entry(build_id="b1", image="django-web", version="1", provider="aws", region=r,
                             artifact=f"ami-{i}", verified=True, extra={"sbom": sbom.summary(text)})
               for i, r in enumerate(("us-east-1", "eu-west-1"))]
    ids = cat.add(entries + [catalog.Entry(build_id="b0", image="django-web", version="0", provider="aws",
                                           region="us-east-1", artifact="ami-old")])
    for entry_id in ids[:2]:
        assert cli.main(["images", "--sbom", str(entry_id)]) == 0
        assert capsys.readouterr().out == text + "\n"
    assert cli.main(["images", "--sbom", str(ids[2])]) == 2
    err = capsys.readouterr().err
    assert f"image {ids[2]} has no bill of materials" in err and len(err.strip().splitlines()) <= 2
    assert cli.main(["images", "--sbom", "999"]) == 2
    assert "no image with id 999" in capsys.readouterr().err


def _catalog_with_sbom(where: str) -> tuple[catalog.Catalog, str]:
    cat = catalog.Catalog(where)
    text = sbom.document(sbom.parse_dpkg(DPKG), sbom.parse_venv(VENV), image="django-web", version="1",
                         distro="debian-13")
    cat.add_sbom(text)
    cat.add([catalog.Entry(build_id="b1", image="django-web", version="1", provider="qemu", region="local",
                           artifact="/images/b1.qcow2", verified=True, extra={"sbom": sbom.summary(text)})])
    return cat, text


def test_export_merge_and_migrate_carry_the_document(catalog_at, tmp_path, capsys):
    src, text = _catalog_with_sbom(catalog_at("src"))
    export = tmp_path / "export.json"
    assert cli.main(["catalog", "export", "--catalog", src.where, "-o", str(export)]) == 0
    sha = sbom.summary(text)["sha256"]
    assert json.loads(export.read_text())["sboms"] == {sha: text}

    merged = catalog_at("merged")
    assert cli.main(["catalog", "merge", "--catalog", merged, str(export)]) == 0
    assert catalog.Catalog(merged).sbom(sha) == text

    moved = catalog_at("moved")
    capsys.readouterr()
    assert cli.main(["catalog", "migrate", "--catalog", src.where, "--to", moved]) == 0
    assert "1 bill(s) of materials" in capsys.readouterr().out
    assert catalog.Catalog(moved).sbom(sha) == text


@pytest.mark.parametrize("tamper,message", [
    (lambda sha, doc: {sha: doc.replace("nginx", "nginy")}, "does not match its sha256"),
    (lambda sha, doc: {"../../etc": doc}, "not named by a sha256"),
    (lambda sha, doc: {sha: 7}, "not a text"),
    (lambda sha, doc: ["x"], "must map sha256 to a document"),
])
def test_tampered_documents_in_an_export_are_refused_before_any_write(catalog_at, tmp_path, capsys, tamper,
                                                                       message):
    src, text = _catalog_with_sbom(catalog_at("src"))
    export = tmp_path / "export.json"
    assert cli.main(["catalog", "export", "--catalog", src.where, "-o", str(export)]) == 0
    data = json.loads(export.read_text())
    data["sboms"] = tamper(sbom.summary(text)["sha256"], text)
    export.write_text(json.dumps(data))
    target = catalog_at("target")
    capsys.readouterr()
    assert cli.main(["catalog", "merge", "--catalog", target, str(export)]) == 2
    err = capsys.readouterr().err
    assert str(export) in err and message in err and "Traceback" not in err
    assert catalog.Catalog(target).query(state=None) == []   # nothing half-written


def test_a_document_that_is_not_cyclonedx_is_refused():
    doc = json.dumps({"spdxVersion": "SPDX-2.3"})
    with pytest.raises(import_check.BadEntry, match="not a CycloneDX document"):
        import_check.check_sbom(hashlib.sha256(doc.encode()).hexdigest(), doc)
