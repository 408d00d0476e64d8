"""Every spec value against what its destination accepts (called by the spec model, so `djbake check` sees it).

A spec is untrusted input (it arrives through pull requests) and its values
end up in Packer templates, cloud tags, apt's command line and guest shell
scripts. The checks here are general where the danger is general:

- No string anywhere in the spec (keys included) may hold `${`, `%{` or `{{`:
  Packer's HCL2 interpolation, template directives and its legacy Go
  templates. Refused in the model, so no template ever has to escape them.
- No control characters or lone surrogates in any string (they break
  one-line output, tags, the guest's env files).
- apt package names: Debian policy, minus what apt reads as an operator
  (a trailing `-` removes, a trailing `+` installs) or as a regex.
- Tags per provider, against each cloud's documented limits; the prefixes
  djbake's provenance and the clouds reserve are refused.
- Regions and continents given once; arm64 only where the provider's OS
  table has arm64 images; the image version mapped to each provider's
  name rules (`provider_version`) and the full names checked.

Each check returns (path in the spec, message); the spec reports the first.
"""
from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import BaseModel

from builder.errors import UserError
from builder.providers import PROVIDERS

if TYPE_CHECKING:
    from builder.spec import Spec

# Packer (HCL2) interpolation `${...}` and directives `%{...}`; legacy JSON templates' `{{ ... }}`.
INTERPOLATION = ("${", "%{", "{{")

# -- apt ------------------------------------------------------------------
# Debian policy 5.6.7: lowercase letters, digits, `+ - .`, at least two characters, starting alphanumeric.
APT_POLICY = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# apt-get reads a trailing `-` as "remove" and a trailing `+` as "install" when the name is not a package,
# and a name with any of `.?+*|[^$` as a regular expression when it is not. A name ending in `++` (g++)
# is safe: with one `+` stripped it still names a `+` package or none. A dot only between alphanumerics
# (python3.11, gir1.2-glib-2.0); the guest script also insists every name is an exact package.
APT_SAFE = re.compile(r"^[a-z0-9](?:[a-z0-9]|[+-](?=[a-z0-9+-])|\.(?=[a-z0-9]))*(?:[a-z0-9]|\+\+)$")

# -- tags -----------------------------------------------------------------
# Provenance tags djbake sets itself (and `latest`/`prune` trust), and prefixes the clouds reserve.
RESERVED_PREFIXES = ("djbake:", "djbake/", "djbake_", "djbake-", "aws:", "azure", "microsoft", "windows",
                     "goog", "hcloud/", "linode")


class TagRule:
    """One provider's documented tag/label limits."""

    def __init__(self, key: str, value: str, max_tags: int, where: str) -> None:
        self.key = re.compile(key)
        self.value = re.compile(value)
        self.max_tags = max_tags
        self.where = where


# Sources (checked 2026-11): AWS "Tag naming limits and requirements" (EC2 user guide): key 1-128, value
# 0-256, letters, digits, spaces and `_ . : / = + - @`, 50 tags, no `aws:` prefix. GCE labels: key 1-63
# starting with a lowercase letter, key and value `[a-z0-9_-]`, value 0-63, 64 labels. Hetzner Cloud labels
# (API docs, "Labels"): Kubernetes-style, key an optional DNS prefix `/` name of 1-63 `[A-Za-z0-9._-]`
# starting and ending alphanumeric, value 0-63 of the same. Azure tags: name 1-512 without `< > % & \ ? /`,
# value 0-256, 50 tags. DigitalOcean tags: `^[a-zA-Z0-9_:-]+$`, 1-255 (djbake writes `key-value`).
# OpenStack image properties (rackspace): key and value 1-255. Linode images take no tags (only instances).
_AWS_CHARS = r"[\w .:/=+\-@]"
TAG_RULES: dict[str, TagRule] = {
    "aws": TagRule(rf"^{_AWS_CHARS}{{1,128}}$", rf"^{_AWS_CHARS}{{0,256}}$", 40, "AWS tag limits"),
    "gcp": TagRule(r"^[a-z][a-z0-9_-]{0,62}$", r"^[a-z0-9_-]{0,63}$", 50, "GCE label limits"),
    "hetzner": TagRule(r"^(?:[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$",
                       r"^(?:[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$", 50, "Hetzner label limits"),
    "azure": TagRule(r"^[^<>%&\\?/]{1,512}$", r"^.{0,256}$", 40, "Azure tag limits"),
    "digitalocean": TagRule(r"^[A-Za-z0-9_:-]{1,120}$", r"^[A-Za-z0-9_:-]{0,120}$", 50, "DigitalOcean tag limits"),
    "rackspace": TagRule(r"^[A-Za-z0-9_.:-]{1,255}$", r"^.{0,255}$", 50, "OpenStack image property limits"),
    "qemu": TagRule(r"^[A-Za-z0-9_.:-]{1,128}$", r"^.{0,256}$", 50, "catalog limits"),
    "docker": TagRule(r"^[A-Za-z0-9_.:-]{1,128}$", r"^.{0,256}$", 50, "label limits"),
}
NO_TAGS = {"linode": "Linode images have no tags (only instances have); leave providers.linode.tags out"}

# -- architectures ----------------------------------------------------------
# Providers whose OS table (builder/tables.py SOURCE_IMAGES) has arm64 images: the others only x86.
ARM64 = ("aws", "gcp", "hetzner", "azure", "qemu")

# -- versions ----------------------------------------------------------------
# What each provider's image name allows. The name is `<name>-<version>-<build id>`; the build id is
# 14 digits, a dash and 6 hex digits (builder/context.py).
SAMPLE_BUILD_ID = "20260101000000-abcdef"
NAME_RULES: dict[str, tuple[re.Pattern, str]] = {
    "gcp": (re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"), "GCE image names: lowercase letters, digits, "
            "dashes, at most 63"),
    "aws": (re.compile(r"^[A-Za-z0-9()\[\] ./'@_-]{3,128}$"), "AMI names: 3-128 of letters, digits, ( ) [ ] . / ' @ _ -"),
    "docker": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"), "docker tags: letters, digits, _ . -, at most 128"),
    "hetzner": (re.compile(r"^.{1,128}$"), "snapshot descriptions"),
    "digitalocean": (re.compile(r"^[A-Za-z0-9_.-]{1,255}$"), "snapshot names"),
    "linode": (re.compile(r"^[A-Za-z0-9_.-]{3,64}$"), "Linode image labels: letters, digits, _ . -, 3-64"),
    "rackspace": (re.compile(r"^[A-Za-z0-9_.-]{1,255}$"), "image names"),
    "azure": (re.compile(r"^[A-Za-z0-9_.-]{1,80}$"), "Azure image names: letters, digits, _ . -, at most 80"),
    "qemu": (re.compile(r"^[A-Za-z0-9_.-]{1,200}$"), "file names"),
}


def provider_version(provider: str, version: str) -> str:
    """The version as `provider` can carry it in names and tags (documented in docs/security.md).

    GCE names allow only lowercase letters, digits and dashes: everything else becomes `-`, letters are
    lowered. Everywhere else `+` and other characters outside `[A-Za-z0-9_.-]` become `-` (AMI names and
    docker tags have no `+`). The catalog keeps the version as given.
    """
    if provider == "gcp":
        return re.sub(r"[^a-z0-9-]", "-", version.lower())
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version)


def artifact_name(provider: str, name: str, version: str, build_id: str = SAMPLE_BUILD_ID) -> str:
    return f"{name}-{provider_version(provider, version)}-{build_id}"


def name_problem(provider: str, name: str, version: str) -> str | None:
    rule, words = NAME_RULES[provider]
    if provider == "docker":
        full = provider_version(provider, version)
    else:
        full = artifact_name(provider, name, version)
    if not rule.fullmatch(full):
        return f"makes the {provider} image name {full!r}, not valid for {words}; use a shorter or simpler version"
    return None


# -- the walk over every string ----------------------------------------------

def _strings(value: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _strings(getattr(value, field), loc + (field,))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield loc + (k,), k
            yield from _strings(v, loc + (k,))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, loc + (i,))
    elif isinstance(value, str):
        yield loc, value


def text_problem(text: str) -> str | None:
    """Why this string may not go into a template, a tag, an env file or one line of output."""
    for marker in INTERPOLATION:
        if marker in text:
            return (f"{marker!r} is Packer template syntax; spec values are never interpolated, so it may not "
                    "appear in a spec value")
    for ch in text:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "contains a lone surrogate (not valid Unicode text)"
        if unicodedata.category(ch) == "Cc":
            return f"contains the control character {ch!r}"
    return None


def problems(spec: "Spec") -> Iterator[tuple[tuple, str]]:
    for loc, text in _strings(spec, ()):
        why = text_problem(text)
        if why:
            yield loc, why
    for i, pkg in enumerate(spec.packages):
        why = apt_problem(pkg)
        if why:
            yield ("packages", i), why
    if len(set(spec.packages)) != len(spec.packages):
        dup = next(p for i, p in enumerate(spec.packages) if p in spec.packages[:i])
        yield ("packages", spec.packages.index(dup, spec.packages.index(dup) + 1)), f"{dup!r} is listed twice"
    if spec.app is not None and spec.app.settings is not None:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", spec.app.settings):
            yield ("app", "settings"), f"must be a dotted Python module path, not {spec.app.settings!r}"
    if spec.version is not None:
        for provider in NAME_RULES:
            why = name_problem(provider, spec.name, spec.version)
            if why:
                yield ("version",), why
                break
    yield from provider_problems(spec)


def provider_problems(spec: "Spec") -> Iterator[tuple[tuple, str]]:
    for name in PROVIDERS:
        settings = getattr(spec.providers, name)
        if settings is None:
            continue
        loc = ("providers", name)
        if spec.arch == "arm64" and name not in ARM64:
            yield loc, arch_message(name)
        for field in ("regions", "near"):
            values = getattr(settings, field)
            for i, v in enumerate(values):
                if v in values[:i]:
                    yield loc + (field, i), f"{v!r} is listed twice"
        if settings.tags and name in NO_TAGS:
            yield loc + ("tags",), NO_TAGS[name]
        yield from tag_problems(name, settings.tags, loc + ("tags",))
        for field in ("instance_size", "source_image", "volume_type"):
            value = getattr(settings, field, None)
            if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/@ -]{0,254}", value):
                yield loc + (field,), (f"{value!r} is not a {field.replace('_', ' ')}: letters, digits and "
                                       "`_ . : / @ -` only")
        for i, net in enumerate(getattr(settings, "networks", None) or ()):
            if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", net):
                yield loc + ("networks", i), f"{net!r} is not a network UUID"


def arch_message(provider: str) -> str:
    return (f"arch arm64: {provider} has only x86 images in djbake's OS table (arm64 with: {', '.join(ARM64)}); "
            "use arch amd64 for it")


def tag_problems(provider: str, tags: dict[str, str], loc: tuple) -> Iterator[tuple[tuple, str]]:
    rule = TAG_RULES.get(provider)
    if rule is None:
        return
    if len(tags) > rule.max_tags:
        yield loc, f"{len(tags)} tags; {rule.where} leave room for {rule.max_tags} besides djbake's own"
    for key, value in tags.items():
        lowered = key.lower()
        reserved = next((p for p in RESERVED_PREFIXES if lowered.startswith(p)), None)
        if reserved:
            yield loc + (key,), f"tag {key!r}: the prefix {reserved!r} is reserved (djbake's provenance or the cloud's)"
        elif not rule.key.fullmatch(key):
            yield loc + (key,), f"tag key {key!r} is outside the {rule.where}"
        elif not rule.value.fullmatch(value):
            yield loc + (key,), f"tag value {value!r} is outside the {rule.where}"


def apt_problem(name: str) -> str | None:
    if not APT_POLICY.fullmatch(name):
        return f"{name!r} is not a Debian package name (lowercase letters, digits, + - . ; two or more)"
    if not APT_SAFE.fullmatch(name):
        return (f"{name!r}: apt would read it as an operator (a trailing - removes, a trailing + installs) or a "
                "regular expression; give the exact package name")
    return None


# -- at render time: the provider chosen on the command line ---------------------

def require_renderable(spec: "Spec", provider: str) -> None:
    """The checks the model makes for providers the spec configures, for one chosen on the command line."""
    if spec.arch == "arm64" and provider not in ARM64:
        raise UserError(arch_message(provider))


def provenance_for(provider: str, provenance: dict[str, str]) -> dict[str, str]:
    """The provenance variables as this provider's template gets them: the version mapped to its names."""
    out = dict(provenance)
    if "image_version" in out:
        out["image_version"] = provider_version(provider, out["image_version"])
    return out
