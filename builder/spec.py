"""Step 1: YAML image spec -> validated model.

Every error names file, line, column and the field path, in one line, so
an editor can jump to it. Unknown keys are errors with a suggestion.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)

from builder import app_source, tables
from builder.errors import SpecError
from builder.providers import PROVIDERS

NAME_RE = r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$"
APT_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stack(_Model):
    """The Django stack inside the image."""

    python: str = Field(
        "system",
        description="Python for the app's virtualenv: `system` (the OS's python3) or its version, e.g. `3.11`.",
    )
    django: str = Field(tables.PYTHON_PINS["django"], description="Pinned Django version.")
    gunicorn: str = Field(tables.PYTHON_PINS["gunicorn"], description="Pinned gunicorn version.")
    nginx: bool = Field(True, description="nginx in front of gunicorn (turn off only behind another proxy).")
    database: Literal["postgresql", "none"] = Field(
        "postgresql", description="`postgresql`: a local server; `none`: client only, for an external database."
    )
    redis: bool = Field(False, description="A local Redis for caching and queues.")
    certbot: bool = Field(True, description="certbot with its nginx plugin; certificates are issued at first boot.")
    build_tools: bool = Field(
        False,
        description="Keep a C compiler and the Python and libpq headers in the image, so deploys on the VM can "
        "compile requirements that have no wheel. Off: a lean image without them (the baked-in app's "
        "requirements are still compiled during the build, and the tools removed after).",
    )

    @field_validator("django", "gunicorn")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+){1,3}", v):
            raise ValueError(f"must be an exact version like 5.2.19, not {v!r}")
        return v


class App(_Model):
    """A Django project baked into the image (immutable style)."""

    source: str = Field(..., description="The project: a git URL, or a wheel, a tarball or a directory, as a URL "
                        "or a path relative to the spec file (copied into the image at build time).")
    module: str = Field(..., description="The project's WSGI module, e.g. `mysite.wsgi`.")
    settings: str | None = Field(None, description="DJANGO_SETTINGS_MODULE, e.g. `mysite.settings`.")
    requirements: str | None = Field(None, description="Requirements file inside the project.")

    @field_validator("module")
    @classmethod
    def _module(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", v):
            raise ValueError(f"must be a dotted Python module path, not {v!r}")
        return v


def _providers_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (cls.Settings | None, Field(None, description=f"Settings for {cls.title}."))
        for name, cls in PROVIDERS.items()
    }
    return create_model("Providers", __config__=ConfigDict(extra="forbid"), **fields)


Providers = _providers_model()


class Spec(_Model):
    """A djbake image spec (images/*.yaml)."""

    name: str = Field(..., pattern=NAME_RE, description="Image name: lowercase letters, digits and dashes.")
    version: str | None = Field(
        None, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$", description="Image version; default: `git describe`."
    )
    description: str = Field("", description="One line shown in `djbake images`.")
    os: Literal["debian-12", "ubuntu-26.04", "ubuntu-24.04", "ubuntu-22.04"] = Field("debian-12", description="Base OS.")
    arch: Literal["amd64", "arm64"] = Field("amd64", description="CPU architecture.")
    disk_size_gb: int = Field(10, ge=4, le=2048, description="Root disk size in GiB.")
    lifetime_days: int | None = Field(
        None, ge=1, le=3650, description="Images are deprecated this many days after the build (where supported)."
    )
    stack: Stack = Field(default_factory=Stack, description="The Django stack.")
    packages: list[str] = Field(default_factory=list, description="Extra apt packages.")
    app: App | None = Field(None, description="Bake a Django project into the image (default: deploy at VM creation).")
    providers: Providers = Field(default_factory=Providers, description="Per-provider settings.")  # type: ignore[valid-type]
    # The spec file's directory: local paths in the spec (app.source) are relative to it.
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @model_validator(mode="after")
    def _cross_checks(self) -> "Spec":
        for i, pkg in enumerate(self.packages):
            if not APT_PACKAGE_RE.fullmatch(pkg):
                raise _FieldError(("packages", i), f"{pkg!r} is not a Debian package name")
        for name, cls in PROVIDERS.items():
            settings = getattr(self.providers, name)
            for loc, message in cls.check_settings(settings) if settings is not None else ():
                raise _FieldError(("providers", name, *loc), message)
        have = tables.OPERATING_SYSTEMS[self.os].python
        if self.stack.python not in ("system", have):
            raise _FieldError(("stack", "python"), f"{self.os} ships Python {have}; use `system` or `{have}`")
        return self

    def providers_settings(self, provider: str):
        settings = getattr(self.providers, provider)
        return settings if settings is not None else PROVIDERS[provider].Settings()

    @property
    def python_version(self) -> str:
        return tables.OPERATING_SYSTEMS[self.os].python

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


class _FieldError(ValueError):
    """A model-level error that belongs to one field."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


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
        if isinstance(exc, _FieldError):
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
    path = app_source.local_path(spec)
    why = app_source.problem(path) if path else None
    if why:
        line, col = marks.find(("app", "source"))
        raise _error(file, line, col, ("app", "source"), why)


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://djbake.dev/schema/image-spec.json"
    schema["title"] = "djbake image spec"
    return schema
