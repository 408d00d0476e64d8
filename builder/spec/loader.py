"""Step 1 (builder/bake/pipeline.py numbers the steps): YAML image spec -> validated model (the model itself: model.py).

Every error names file, line, column and the field path, in one line, so
an editor can jump to it. Unknown keys are errors with a suggestion.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from builder.errors import SpecError
from builder.spec import source_checks
from builder.spec.model import FieldError, Spec

# -- loading YAML with positions ------------------------------------------

# A spec is a small document. These bounds keep hostile or broken input
# (deep nesting, alias cycles, "billion laughs" alias bombs) a located
# error instead of a RecursionError or an hour of CPU.
MAX_DEPTH = 40
MAX_NODES = 20_000
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Marks:
    """Where each field path starts in the YAML text (1-based line/col)."""

    def __init__(self) -> None:
        self.values: dict[tuple, tuple[int, int]] = {}
        self.keys: dict[tuple, tuple[int, int]] = {}

    def find(self, loc: tuple, key: bool = False) -> tuple[int, int]:
        if key and loc in self.keys:
            return self.keys[loc]
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.values:
                return self.values[loc[:n]]
        return (1, 1)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _one_line(text: str) -> str:
    """Collapse every kind of line break (also \\x85, \\u2028...) and whitespace run into one space."""
    return " ".join(str(text).split())


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(file: str, line: int, col: int, loc: tuple, message: str) -> SpecError:
    return SpecError(file, line, col, _dotted(loc), _one_line(message))


class _TooDeep(Exception):
    def __init__(self, mark) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH (it recurses per level)."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """YAML nodes -> plain Python data, recording where each field path starts."""

    def __init__(self, file: str, marks: _Marks) -> None:
        self.file = file
        self.marks = marks
        self.nodes = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, loc: tuple, message: str) -> SpecError:
        line, col = _pos(node)
        return _error(self.file, line, col, loc, message)

    def build(self, node: yaml.Node, path: tuple, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH:  # only reachable through aliases: a cycle or a bomb
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels (an alias that contains itself?)")
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"more than {MAX_NODES} values (aliases expanding without bound?)")
        self.marks.values.setdefault(path, _pos(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise self.fail(node, path, f"unsupported YAML tag {_short(node.tag)}")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: tuple, depth: int) -> dict:
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise self.fail(knode, path, "keys must be plain names")
            if knode.tag == "tag:yaml.org,2002:merge":
                merges += vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                continue
            # A key is a name as written: `1:`, `true:` or `~:` are the names "1", "true", "~".
            key = knode.value
            if key in out:
                raise self.fail(knode, path + (key,), "duplicate key")
            self.marks.keys[path + (key,)] = _pos(knode)
            out[key] = self.build(vnode, path + (key,), depth + 1)
        # `<<: *defaults` (after the keys written here, which win over merged ones).
        for src in merges:
            if not isinstance(src, yaml.MappingNode):
                raise self.fail(src, path, "`<<` merges only mappings")
            for k, v in self.mapping(src, path, depth + 1).items():
                out.setdefault(k, v)
        return out

    def scalar(self, node: yaml.Node, path: tuple) -> Any:
        try:
            return self.scalars.construct_object(node)
        except yaml.MarkedYAMLError as e:
            problem = e.problem or "cannot read this value"
        except Exception as e:  # e.g. `2024-13-45` (a date that is none), a 5000-digit integer
            problem = f"cannot read {_short(node.value)}: {e}; quote it if it is text"
        raise self.fail(node, path, problem)


def _yaml_error(e: yaml.YAMLError, text: str, file: str) -> SpecError:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = e.problem or e.context or "invalid YAML"
        return _error(file, line, col, (), f"YAML syntax: {problem}")
    if isinstance(e, yaml.reader.ReaderError):
        before = text[: e.position]
        line = before.count("\n") + 1
        col = e.position - (before.rfind("\n") + 1) + 1
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "\0")
        return _error(file, line, col, (), f"YAML: character #x{char:04x} is not allowed ({e.reason})")
    return _error(file, 1, 1, (), f"YAML: {e}")


_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]+|\[key\]")


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SAFE_KEY.fullmatch(str(part)):
            out += ("." if out else "") + str(part)
        else:  # a key with spaces, dots or line breaks: quoted, on one line
            out += f"[{_short(str(part))}]"
    return out


def _model_args(annotation: Any) -> list[type[BaseModel]]:
    args = getattr(annotation, "__args__", ()) or (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _clean_loc(loc: tuple) -> tuple:
    # pydantic may add a union branch's class name (e.g. "Settings") to the
    # location of a `Settings | None` field; it is not part of the YAML path.
    # Only such a name right after such a field is dropped, never a user's key.
    out: list = []
    model: Any = Spec
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        out.append(part)
        i += 1
        field = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        branches = _model_args(field.annotation) if field is not None else []
        model = branches[0] if branches else None
        if len(branches) and i < len(parts):
            named = [b for b in branches if b.__name__ == parts[i]]
            if named and len(getattr(field.annotation, "__args__", ())) > 1:
                model = named[0]
                i += 1
    return tuple(out)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        branches = _model_args(field.annotation)
        model = branches[0] if branches else None
    return model


def _describe(err: dict) -> str:
    kind = err["type"]
    loc = _clean_loc(err["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        hint = f"; did you mean '{close[0]}'?" if close else (f"; known: {', '.join(known)}" if known else "")
        return f"unknown key{hint}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{_short(err['input'])} is not allowed; expected {allowed}"
    if kind == "string_pattern_mismatch":
        return f"{_short(err['input'])} does not match {err['ctx']['pattern']}"
    msg = err["msg"]
    for prefix in ("Value error, ",):
        msg = msg.removeprefix(prefix)
    return msg


def load(path: str | Path) -> Spec:
    """Read and validate one spec file. Raises SpecError (one line)."""
    path = Path(path)
    file = str(path)
    if path.exists() and not path.is_file():  # a FIFO would block the read, a device never end
        raise _error(file, 1, 1, (), "not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(file, 1, 1, (), "no such spec file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _error(file, 1, 1, (), f"cannot read: {e}") from None
    return loads(text, file)


def loads(text: str, file: str = "<spec>") -> Spec:
    """Validate a spec's text. Any problem is one SpecError naming file:line:col."""
    marks = _Marks()
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _TooDeep as e:
        raise _error(file, e.mark.line + 1, e.mark.column + 1, (), f"nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, file) from None
    if node is None:
        raise _error(file, 1, 1, (), "the spec is empty")
    data = _Builder(file, marks).build(node, ())
    if not isinstance(data, dict):
        line, col = _pos(node)
        raise _error(file, line, col, (), "the spec must be a mapping of keys to values")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        loc = _clean_loc(first["loc"])
        exc = (first.get("ctx") or {}).get("error")
        if isinstance(exc, FieldError):
            loc = exc.loc
            message = exc.message
        else:
            message = _describe(first)
        line, col = marks.find(loc, key=first["type"] == "extra_forbidden")
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _error(file, line, col, loc, message + more) from None
    spec._base_dir = Path.cwd() if file == "<spec>" else Path(file).resolve().parent
    _check_paths(spec, file, marks)
    return spec


def _check_paths(spec: Spec, file: str, marks: _Marks) -> None:
    """Host paths the build reads must exist now, not fail halfway through a build."""
    found = source_checks.problem(spec)  # a Python project, nothing of the host's beyond it
    if found:
        loc, why = found
        line, col = marks.find(loc)
        raise _error(file, line, col, loc, why)
