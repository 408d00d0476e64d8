"""The docs cannot drift: the spec reference is generated, links resolve, provider pages name their credentials."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from builder import providers, spec
from builder.spec import reference as docs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# docs/providers/aws.md is written by the AWS work; checked when present.
OWNED_ELSEWHERE = {"aws"}


def test_spec_reference_is_a_fresh_generation():
    committed = (ROOT / docs.SPEC_REFERENCE).read_text(encoding="utf-8")
    assert committed == docs.spec_reference(spec.json_schema()), "out of date: run `djbake docs` and commit"


def test_every_schema_key_is_in_the_reference():
    text = (ROOT / docs.SPEC_REFERENCE).read_text(encoding="utf-8")
    schema = spec.json_schema()
    for key in schema["properties"]:
        assert f"`{key}`" in text
    for name, d in schema["$defs"].items():
        for key in d.get("properties", {}):
            assert f".{key}`" in text, f"{name}.{key} missing"
    for name in providers.PROVIDERS:
        assert f"`providers.{name}`" in text


def _markdown_files():
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


@pytest.mark.parametrize("name", sorted(providers.PROVIDERS))
def test_provider_page_names_credentials_and_regions(name):
    page = DOCS / "providers" / f"{name}.md"
    if name in OWNED_ELSEWHERE and not page.exists():
        pytest.skip(f"docs/providers/{name}.md is not written yet")
    text = page.read_text(encoding="utf-8")
    for cred in providers.PROVIDERS[name].credentials:
        assert cred.env in text, f"{page.name} does not name {cred.env}"
    assert "djbake regions" in text or name in ("qemu", "docker")
    for heading in ("## Credentials", "## Select the image"):
        assert heading in text, f"{page.name} lacks '{heading}'"


def test_required_pages_exist():
    for rel in ("getting-started.md", "spec-reference.md", "verification.md", "adding-a-provider.md"):
        assert (DOCS / rel).is_file(), rel


def test_ci_workflow_is_valid_yaml_and_merges_catalogs():
    wf = yaml.safe_load((ROOT / "examples/ci/github-actions.yml").read_text())
    jobs = wf["jobs"]
    build, merge = jobs["build"], jobs["merge"]
    assert merge["needs"] == "build" or "build" in merge["needs"]
    assert "provider" in build["strategy"]["matrix"]
    steps = " ".join(str(s.get("run", "")) for s in build["steps"] + merge["steps"])
    assert "djbake catalog export" in steps and "djbake catalog merge" in steps
    # With a shared catalog every runner records into PostgreSQL and the merge is skipped.
    assert "vars.DJBAKE_CATALOG_URL" in build["env"]["DJBAKE_CATALOG"] and "DJBAKE_CATALOG_URL == ''" in merge["if"]
    assert "djbake channel set dev" in " ".join(str(s.get("run", "")) for s in jobs["promote"]["steps"])


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_examples_are_formatted():
    proc = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(ROOT / "examples/terraform")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_terraform_example_per_provider():
    for name in ("linode", "digitalocean", "hetzner", "gcp", "azure"):
        files = list((ROOT / "examples/terraform" / name).glob("*.tf"))
        assert files, name
        text = "".join(f.read_text() for f in files)
        assert "django-web" in text  # selects the baked image by its name/label/family


def _image_suite_markers() -> set[str]:
    """Markers the image suite registers (conftest addinivalue_line, or an ini file's `markers`)."""
    suite = ROOT / "tests" / "image"
    found: set[str] = set()
    for path in list(suite.rglob("conftest.py")) + list(suite.glob("*.ini")) + list(suite.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":  # a `MARKERS = {"name": "doc", ...}` table
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MARKERS" for t in node.targets):
                    found |= {k for k in ast.literal_eval(node.value)}
        found |= set(re.findall(r"""addinivalue_line\(\s*["']markers["']\s*,\s*f?["']([A-Za-z_][\w-]*)""", text))
        block = re.search(r"^\s*markers\s*=\s*(\[.*?\]|(?:\n[ \t]+.+)+)", text, re.S | re.M)
        if block:
            found |= set(re.findall(r"""^\s*["']?([A-Za-z_][\w-]*)\s*(?:\(|:)""", block.group(1), re.M))
    return found


def test_image_markers_are_documented():
    if not (ROOT / "tests" / "image").is_dir():
        pytest.skip("tests/image/ (the image suite) is not there yet")
    text = (DOCS / "verification.md").read_text(encoding="utf-8")
    missing = [m for m in sorted(_image_suite_markers()) if f"- `{m}`" not in text]
    assert not missing, f"docs/verification.md does not describe the image suite's markers: {missing}"
