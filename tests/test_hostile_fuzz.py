"""Fuzzing valid specs with hostile payloads (issue 17, all classes that reach a template).

tests/specs/golden.yaml and images/django-web.yaml, with one or more values
(or tag keys) replaced by hostile payloads: Packer interpolation and
directives, legacy Go templates, reserved tags, apt operators, control
characters, credentials in URLs, host paths. For every mutation either the
spec is refused with a located one-line SpecError, or every provider's
rendered template holds no Packer expression that the unmutated spec's
templates do not hold: no spec value is interpreted by Packer.

In process and in memory (no file written), derandomized: the same cases
every run.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder import providers
from builder import spec as spec_mod
from builder.bake import template
from builder.errors import SpecError, UserError

ROOT = Path(__file__).resolve().parent.parent
BASES = [yaml.safe_load((ROOT / p).read_text()) for p in ("tests/specs/golden.yaml", "images/django-web.yaml")]
for base in BASES:  # a URL app, so app.* fields are in play without files on the host
    base.setdefault("app", {"source": "https://example.com/mysite-1.0.tar.gz", "module": "mysite.wsgi",
                            "settings": "mysite.settings", "requirements": "requirements.txt"})

EXPRESSION = re.compile(r"\$\{.*?\}|%\{.*?\}|\{\{.*?\}\}", re.S)
PAYLOADS = ["${var.aws_secret_key}", '${file("/etc/shadow")}', "${env(\"HOME\")}", "%{ if true }x%{ endif }",
            "{{ build `ID` }}", "{{user `aws_secret_key`}}", "$${var.x}", "${", "%{", "{{", "}}", "djbake:verified",
            "aws:createdBy", "apparmor-", "zstd.", "openssh-server+", "\x1b[31m", "a\nb", "\x00", "\udcff",
            "https://tok@github.com/x.git", "git+--upload-pack=x", "../../etc/shadow", "/etc", "~", "..", "",
            "x" * 300, "true", "1e23", "-1", "é", "a b", "a/b", "a:b", "A"]
TEXT = st.one_of(st.sampled_from(PAYLOADS),
                 st.builds(lambda a, b, c: a + b + c, st.text(max_size=6), st.sampled_from(PAYLOADS),
                           st.text(max_size=6)))
VALUES = st.one_of(TEXT, st.booleans(), st.integers(-5, 100000), st.lists(TEXT, max_size=3),
                   st.dictionaries(TEXT, TEXT, max_size=2))
# Where payloads go: every string leaf of the bases, and the places a hostile spec would add.
EXTRA_PATHS = [("providers", p, f) for p in providers.PROVIDERS for f in ("instance_size", "source_image")] + [
    ("providers", "aws", "volume_type"), ("providers", "rackspace", "networks"), ("version",), ("description",),
    ("lifetime_days",), ("providers", "qemu", "cpus"), ("arch",)]


def _leaves(data, path=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, path + (i,))
    else:
        yield path


PATHS = sorted({p for b in BASES for p in _leaves(b)} | set(EXTRA_PATHS), key=repr)


def _set(data, path, value):
    node = data
    for part in path[:-1]:
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                return
        elif not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part]
    if isinstance(node, list):
        if isinstance(path[-1], int) and path[-1] < len(node):
            node[path[-1]] = value
    else:
        node[path[-1]] = value


def _expressions(spec) -> set[str]:
    found: set[str] = set()
    for name, cls in providers.PROVIDERS.items():
        try:
            files = template.render_files(spec, cls(spec), needs_plugins=True)
        except UserError as e:  # arm64 on an x86-only provider: refused, one line
            assert "\n" not in str(e)
            continue
        for text in files.values():
            found |= set(EXPRESSION.findall(text))
    return found


BASE_EXPRESSIONS = set().union(*(_expressions(spec_mod.loads(yaml.safe_dump(b))) for b in BASES))
MUTATIONS = st.lists(st.tuples(st.sampled_from(PATHS), VALUES, st.booleans()), min_size=1, max_size=3)


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.sampled_from(range(len(BASES))), mutations=MUTATIONS)
def test_mutated_specs_are_refused_or_never_interpreted(base, mutations):
    data = copy.deepcopy(BASES[base])
    for path, value, as_key in mutations:
        if as_key and path[:1] == ("providers",) and len(path) >= 2:  # the payload as a tag key
            _set(data, (*path[:2], "tags", value if isinstance(value, str) else "k"), "v")
        else:
            _set(data, path, value)
    try:
        text = yaml.safe_dump(data, allow_unicode=False)
    except (yaml.YAMLError, UnicodeEncodeError):
        return  # not expressible as a spec file
    try:
        spec = spec_mod.loads(text, "fuzz.yaml")
    except SpecError as e:
        message = str(e)
        assert message.startswith("fuzz.yaml:") and "\n" not in message, message
        assert e.line >= 1 and e.column >= 1
        return
    dumped = spec.model_dump_json()
    for marker in ("${", "%{", "{{"):
        assert marker not in dumped, f"accepted a spec holding {marker!r}"
    new = _expressions(spec) - BASE_EXPRESSIONS
    assert not new, f"spec values interpreted by Packer: {sorted(new)[:3]}"


def test_the_fuzzers_accepting_branch_is_reached():
    """Not every mutation is refused: benign odd values render, as written, with no new expression."""
    data = copy.deepcopy(BASES[0])
    _set(data, ("providers", "aws", "tags", "team"), "a:b é/x")
    spec = spec_mod.loads(yaml.safe_dump(data), "fuzz.yaml")
    files = template.render_files(spec, providers.get("aws")(spec), needs_plugins=True)
    assert any('"team": "a:b \\u00e9/x"' in t or '"team": "a:b é/x"' in t for t in files.values())
    assert _expressions(spec) <= BASE_EXPRESSIONS and BASE_EXPRESSIONS
