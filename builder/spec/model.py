"""The image spec's model: fields, defaults, cross-field checks, the JSON schema.

Reading a spec file (YAML with positions, one-line errors) is loader.py.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    field_validator,
    model_validator,
)

from builder import tables
from builder.os_facts import django_python_mismatch, python_mismatch
from builder.providers import PROVIDERS
from builder.spec import values as validate_values

NAME_RE = r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$"
APT_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class _Model(BaseModel):
    # strict: no coercion (`cpus: true` is not 1, `lifetime_days: "7"` not 7).
    model_config = ConfigDict(extra="forbid", strict=True)


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
    os: Literal["debian-13", "debian-12", "ubuntu-26.04", "ubuntu-24.04", "ubuntu-22.04"] = Field(
        tables.DEFAULT_OS, description="Base OS.")
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
        for loc, message in validate_values.problems(self):  # every value against its destination
            raise FieldError(loc, message)
        for i, pkg in enumerate(self.packages):
            if not APT_PACKAGE_RE.fullmatch(pkg):
                raise FieldError(("packages", i), f"{pkg!r} is not a Debian package name")
        for name, cls in PROVIDERS.items():
            settings = getattr(self.providers, name)
            for loc, message in cls.check_settings(settings) if settings is not None else ():
                raise FieldError(("providers", name, *loc), message)
        have = tables.OPERATING_SYSTEMS[self.os].python
        if self.stack.python not in ("system", have):
            raise FieldError(("stack", "python"), python_mismatch(self.os, self.stack.python))
        if message := django_python_mismatch(self.os, self.stack.django):
            raise FieldError(("stack", "django"), message)
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


class FieldError(ValueError):
    """A model-level error that belongs to one field."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://djbake.dev/schema/image-spec.json"
    schema["title"] = "djbake image spec"
    return schema
