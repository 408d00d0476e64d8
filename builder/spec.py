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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from builder import tables
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

    @field_validator("django", "gunicorn")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+){1,3}", v):
            raise ValueError(f"must be an exact version like 5.2.19, not {v!r}")
        return v


class App(_Model):
    """A Django project baked into the image (immutable style)."""

    source: str = Field(..., description="A wheel, a tarball (path or URL) or a git URL of the project.")
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
    os: Literal["debian-12", "ubuntu-24.04", "ubuntu-22.04"] = Field("debian-12", description="Base OS.")
    arch: Literal["amd64", "arm64"] = Field("amd64", description="CPU architecture.")
    disk_size_gb: int = Field(10, ge=4, le=2048, description="Root disk size in GiB.")
    lifetime_days: int | None = Field(
        None, ge=1, le=3650, description="Images are deprecated this many days after the build (where supported)."
    )
    stack: Stack = Field(default_factory=Stack, description="The Django stack.")
    packages: list[str] = Field(default_factory=list, description="Extra apt packages.")
    app: App | None = Field(None, description="Bake a Django project into the image (default: deploy at VM creation).")
    providers: Providers = Field(default_factory=Providers, description="Per-provider settings.")  # type: ignore[valid-type]

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


def _construct(node: yaml.Node, path: tuple, marks: _Marks, file: str) -> Any:
    marks.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                line, col = _pos(knode)
                raise SpecError(file, line, col, _dotted(path), "keys must be plain names")
            key = yaml.safe_load(yaml.serialize(knode))
            if not isinstance(key, (str, int)):
                key = str(key)
            if key in out:
                line, col = _pos(knode)
                raise SpecError(file, line, col, _dotted(path + (key,)), "duplicate key")
            marks.keys[path + (key,)] = _pos(knode)
            out[key] = _construct(vnode, path + (key,), marks, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), marks, file) for i, v in enumerate(node.value)]
    # Scalars: let PyYAML's safe resolver decide the type (int, bool, str...).
    return yaml.safe_load(yaml.serialize(node))


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds union branch names (e.g. "AwsSettings") to locations
    # for `Settings | None` fields; they are not part of the YAML path.
    return tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper()))


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return model


def _describe(err: dict) -> str:
    kind = err["type"]
    loc = _clean_loc(err["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else (f"; known: {', '.join(known)}" if known else "")
        return f"unknown key{hint}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{err['input']!r} is not allowed; expected {allowed}"
    if kind == "string_pattern_mismatch":
        return f"{err['input']!r} does not match {err['ctx']['pattern']}"
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
        raise SpecError(file, 1, 1, "", "no such spec file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(file, 1, 1, "", f"cannot read: {e}") from None
    return loads(text, file)


def loads(text: str, file: str = "<spec>") -> Spec:
    marks = _Marks()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(file, line, col, "", f"YAML syntax: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise SpecError(file, 1, 1, "", f"YAML: {e}") from None
    if node is None:
        raise SpecError(file, 1, 1, "", "the spec is empty")
    try:
        data = _construct(node, (), marks, file)
    except yaml.YAMLError as e:
        raise SpecError(file, 1, 1, "", f"YAML: {e}") from None
    if not isinstance(data, dict):
        line, col = _pos(node)
        raise SpecError(file, line, col, "", "the spec must be a mapping of keys to values")
    try:
        return Spec.model_validate(data)
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
        raise SpecError(file, line, col, _dotted(loc), message + more) from None


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://djbake.dev/schema/image-spec.json"
    schema["title"] = "djbake image spec"
    return schema
