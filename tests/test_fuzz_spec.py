"""Spec fuzzing: whatever text a spec file holds, `djbake check` answers cleanly.

Through the real CLI code path (builder.cli.main, in-process for speed):
never a traceback, and either exit 0, or exit 2 with exactly one line
`djbake: error: <file>:<line>:<col>: ...` whose line lies inside the file.

Three generators, together over 1,000 spec texts (500 + 300 + 220), valid and broken:
mutations of images/django-web.yaml (its text, line by line), random data
trees around the real keys dumped as YAML, and raw YAML-ish noise (deep
nesting, aliases, tags, unicode, huge numbers). Derandomized, no example
database: the same texts every run, so CI is stable.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASE_TEXT = (ROOT / "images" / "django-web.yaml").read_text()
BASE_LINES = BASE_TEXT.splitlines()
BASE_DATA = yaml.safe_load(BASE_TEXT)

FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

# Every line break YAML (and str.splitlines) knows.
BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

KEYS = ["name", "version", "description", "os", "arch", "disk_size_gb", "lifetime_days", "stack", "packages",
        "app", "providers", "python", "django", "gunicorn", "nginx", "database", "redis", "certbot", "source",
        "module", "settings", "requirements", "regions", "instance_size", "source_image", "tags", "near",
        "aws", "linode", "rackspace", "digitalocean", "hetzner", "gcp", "azure", "qemu", "docker", "identity",
        "memory_mb", "iops", "Stack", "<<", "~", "1", "true", "null", "ünï", "a b", "a.b", "é\u2028x"]

WEIRD = ["", " ", "\t", ":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a", "*a", "&a ", "*b", "!", "!!str ",
         "!!python/object:os.system ", "!foo ", "%YAML 1.1\n", "---\n", "...\n", "|", ">", "#", "'", '"', "?",
         "@", "`", "\x00", "\x07", "\r", "\r\n", "\x85", "\u2028", "\ufeff", "\udcff", "😀", "ü", "\u202e",
         "9" * 5000, "1e999", "-0", "0x1F", "0o17", "0b101", ".inf", ".nan", "2024-13-45", "2001-12-14t21:59:43.10-99:00",
         "<<: *a", "<<: [*a]", "[" * 300, "{a: " * 300, "- " * 300, "yes", "no", "~", "null", "=", "&a [*a]"]

SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.sampled_from(["debian-12", "ubuntu-24.04", "amd64", "arm64", "postgresql", "none",
                                           "system", "3.11", "5.2.19", "mysite.wsgi", "t3.small", "us-east-1",
                                           "django-web", "x", "Europe", "bootstrap"]),
)
TREES = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), kids, max_size=4)),
    max_leaves=12,
)


def check(tmp: Path, text: str | bytes) -> int:
    """Run `djbake check --spec FILE` in-process; assert the one-line contract; return the exit status."""
    f = tmp / "spec.yaml"
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape" if "\udcff" in text else "strict")
    f.write_bytes(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["check", "--spec", str(f)])
    if rc == 0:
        assert err.getvalue() == ""
        assert out.getvalue().startswith(f"{f}: ok (")
        return 0
    assert rc == 2, (rc, err.getvalue())
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and err.getvalue().endswith("\n"), err.getvalue()
    m = re.match(rf"djbake: error: {re.escape(str(f))}:(\d+):(\d+): \S", lines[0])
    assert m, lines[0]
    line, col = int(m[1]), int(m[2])
    decoded = text.decode("utf-8", "replace")
    assert 1 <= line <= len(BREAKS.split(decoded)) + 1, (line, lines[0])
    assert col >= 1
    assert len(lines[0]) < 2000, "an error line should stay readable"
    return 2


def _mutate(lines: list[str], ops: list[tuple[int, int, int, str]]) -> str:
    lines = list(lines)
    for kind, i, j, s in ops:
        if not lines:
            lines.append(s)
            continue
        i %= len(lines)
        line = lines[i]
        if kind == 0:  # delete a line
            del lines[i]
        elif kind == 1:  # duplicate a line (duplicate keys, repeated list items)
            lines.insert(i, line)
        elif kind == 2:  # swap with another line
            k = j % len(lines)
            lines[i], lines[k] = lines[k], line
        elif kind == 3:  # re-indent
            lines[i] = " " * (j % 7) + line.lstrip()
        elif kind == 4:  # insert text inside the line
            k = j % (len(line) + 1)
            lines[i] = line[:k] + s + line[k:]
        elif kind == 5:  # replace the value after `key:`
            if ":" in line:
                lines[i] = line.split(":", 1)[0] + ": " + s
        elif kind == 6:  # delete some characters
            k = j % (len(line) + 1)
            lines[i] = line[:k] + line[k + 1 + j % 3:]
        elif kind == 7:  # a new line of its own
            lines.insert(i, s)
        elif kind == 8:  # a tab for indentation
            lines[i] = "\t" + line
    return "\n".join(lines) + "\n"


def _value_text():
    return st.one_of(st.sampled_from(WEIRD), st.text(max_size=12),
                     SCALARS.map(lambda v: yaml.safe_dump(v, default_flow_style=True, allow_unicode=True,
                                                          width=10**6).removesuffix("\n...\n").strip()))


MUTATIONS = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 200), st.integers(0, 200), _value_text()),
                     min_size=0, max_size=4)


def _run(tmp: Path, gen, n: int) -> dict[int, int]:
    seen = {0: 0, 2: 0}

    @settings(max_examples=n, **FUZZ)
    @given(gen)
    def one(text):
        seen[check(tmp, text)] += 1

    one()
    return seen


def test_mutations_of_the_default_spec(tmp_path):
    seen = _run(tmp_path, MUTATIONS.map(lambda ops: _mutate(BASE_LINES, ops)), 500)
    assert sum(seen.values()) >= 500
    # The generator reaches both sides: specs that still pass and many that break.
    assert seen[0] >= 30 and seen[2] >= 200, seen


def _set_in(data, path: list[str], value):
    data = yaml.safe_load(yaml.safe_dump(data))  # a deep copy
    node = data
    for i, key in enumerate(path):
        if not isinstance(node, dict):
            return data
        if i == len(path) - 1:
            if value is _DELETE:
                node.pop(key, None)
            else:
                node[key] = value
        else:
            node = node.setdefault(key, {})
    return data


_DELETE = object()
PATHS = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4)
EDITS = st.lists(st.tuples(PATHS, st.one_of(st.just(_DELETE), TREES)), max_size=3)


def _dump(data, style: int) -> str:
    if style == 0:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if style == 1:
        return yaml.safe_dump(data, default_flow_style=True, width=60)
    import json
    return json.dumps(data, ensure_ascii=False)  # JSON is YAML too


@st.composite
def edited_specs(draw):
    data = BASE_DATA
    for path, value in draw(EDITS):
        data = _set_in(data, path, value)
    if draw(st.booleans()) and draw(st.booleans()):
        data = draw(TREES)  # not even the default spec's shape
    try:
        return _dump(data, draw(st.integers(0, 2)))
    except ValueError:  # json: NaN is fine, out-of-range ints are not; dump as YAML then
        return _dump(data, 0)


def test_random_data_trees(tmp_path):
    seen = _run(tmp_path, edited_specs(), 300)
    assert sum(seen.values()) >= 300
    assert seen[0] >= 20 and seen[2] >= 100, seen


NOISE = st.one_of(
    st.text(alphabet=st.sampled_from(list(":-[]{},&*!|>#'\"? \t\nab1üé😀\x00\r\u2028")), max_size=80),
    st.lists(st.sampled_from(WEIRD + ["name: ok-name\n", "stack:\n", "  ", "\n", "a", "1"]), max_size=12).map("".join),
    st.integers(1, 3000).map(lambda n: "name: abc\nstack: " + "[" * n + "]" * n + "\n"),
    st.integers(1, 3000).map(lambda n: "name: abc\nstack: " + "{a: " * n + "1" + "}" * n + "\n"),
    st.integers(1, 400).map(lambda n: "name: abc\npackages:\n" + "".join("  " * i + "- \n" for i in range(n))),
    st.integers(2, 9).map(lambda n: "a: &a [" + ",".join(["x"] * n) + "]\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * n) + "]\n" for p, c in zip("abcdefg", "bcdefgh")) + "name: abc\n"),
    st.binary(max_size=60),
)


def test_raw_noise(tmp_path):
    seen = _run(tmp_path, NOISE, 220)
    assert sum(seen.values()) >= 220


KNOWN_BAD = {
    "nested lists": "name: abc\nstack: " + "[" * 3000 + "]" * 3000 + "\n",
    "alias cycle": "name: abc\npackages: &a [*a]\n",
    "billion laughs": "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdef", "bcdefg")) + "name: abc\n",
    "impossible date": "name: abc\nversion: 2024-13-45\n",
    "impossible time zone": "name: abc\nversion: 2001-12-14t21:59:43.10-99:00\n",
    "5000-digit integer": "name: abc\ndisk_size_gb: " + "1" * 5000 + "\n",
    "capitalised unknown key": "name: abc\nFoo: 1\n",
    "null key": "name: abc\n~: 1\n",
    "key with a line break": 'name: abc\n"a\\u2028b\\nc": 1\n',
    "NUL character": "name: abc\x00\n",
    "python tag": "name: !!python/object:os.system abc\n",
    "tag on a mapping": "name: abc\nstack: !!omap [a: 1]\n",
    "merge of a scalar": "name: abc\n<<: 3\n",
}


def test_known_bad_texts_found_by_fuzzing(tmp_path):
    """Each of these once gave a traceback, a hang or a multi-line error."""
    for why, text in KNOWN_BAD.items():
        assert check(tmp_path, text) == 2, why


def test_merge_keys_and_aliases_work(tmp_path):
    text = ("name: abc\nproviders:\n  aws: &aws\n    regions: [us-east-1]\n    instance_size: t3.small\n"
            "  hetzner:\n    <<: *aws\n    regions: [fsn1]\n")
    assert check(tmp_path, text) == 0
    from builder import spec

    s = spec.loads(text)
    assert s.providers_settings("hetzner").instance_size == "t3.small"
    assert s.providers_settings("hetzner").regions == ["fsn1"]
