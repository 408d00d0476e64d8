"""Typed import of catalog exports (`djbake catalog merge`): an export is untrusted input.

An export decides what `latest` and `launch` pick, so every field is
type- and range-checked before anything is written: exact types (no text
timestamp that sorts above every number), timestamps normalised to epoch
seconds and not in the future, names and regions in their alphabets, no
control characters in anything `djbake images` prints, artifact paths
without `..`. The merge is one transaction under a uniqueness constraint
on (build_id, provider, region), so concurrent merges of one export store
each entry once; and an existing entry only moves forward (unverified ->
verified, available -> unavailable/deregistered), so an import can never
make an older or unverified image `latest`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import time
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any

from builder import providers, tables
from builder.catalog import store
from builder.catalog.store import Entry
from builder.errors import UserError
from builder.spec.model import NAME_RE

FORMAT = "djbake-catalog"
VERSION = 3  # 2: revocation and provenance fields; 3: bills of materials (older exports still read)
STATES = ("available", "unavailable", "deregistered")
MAX_TEXT = 1024
MAX_JSON = 256 * 1024
MAX_SBOM = 32 * 1024 * 1024   # a Debian image lists ~500 packages in ~200 KiB
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp()
FUTURE_SLACK = 300.0  # clock skew between the exporting runner and this machine

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IMAGE = re.compile(NAME_RE)  # the spec's image names
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
_COMMIT = re.compile(r"^[0-9a-f]{4,40}(-dirty)?$|^unknown$")
HINT = "make one with `djbake catalog export -o FILE` on the machine that built the images"


class BadEntry(ValueError):
    pass


def printable(value: Any) -> str:
    """A value as one line of text: control characters (ANSI escapes, line breaks) shown escaped."""
    text = "" if value is None else str(value)
    if all(unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp") for c in text):
        return text
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp") else repr(c)[1:-1] for c in text)


def _text(row: dict, key: str, pattern: re.Pattern | None = None, optional: bool = False) -> str | None:
    value = row.get(key)
    if value is None and optional:
        return None
    if type(value) is not str:
        raise BadEntry(f"{key} must be text, not {type(value).__name__}")
    if not value or len(value) > MAX_TEXT:
        raise BadEntry(f"{key} must be 1-{MAX_TEXT} characters")
    if printable(value) != value:
        raise BadEntry(f"{key} holds control characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadEntry(f"{key} {value!r} does not match {pattern.pattern}")
    return value


def timestamp(value: Any, name: str = "created_at") -> float:
    """created_at (or `name`) as epoch seconds: a number, or an ISO 8601 text with a zone; not before 2020,
    not in the future."""
    if type(value) in (int, float):
        seconds = float(value)
    elif type(value) is str:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadEntry(f"{name} {printable(value)[:40]!r} is not a time") from None
        if parsed.tzinfo is None:
            raise BadEntry(f"{name} has no time zone")
        seconds = parsed.timestamp()
    else:
        raise BadEntry(f"{name} must be a number or an ISO 8601 time, not {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < EARLIEST or seconds > time.time() + FUTURE_SLACK:
        raise BadEntry(f"{name} is before 2020 or in the future")
    return seconds


def _json(row: dict, key: str) -> dict:
    value = row.get(key, {})
    if value is None:
        return {}
    if type(value) is not dict:
        raise BadEntry(f"{key} must be an object, not {type(value).__name__}")
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise BadEntry(f"{key}: {e}") from None
    if len(text) > MAX_JSON:
        raise BadEntry(f"{key} is larger than {MAX_JSON} bytes")
    return value


def parse_entry(row: Any):
    """One export row -> a checked catalog Entry (BadEntry says why not)."""
    if type(row) is not dict:
        raise BadEntry("must be an object")
    known = {"build_id", "image", "version", "provider", "region", "artifact", "sha256", "git_commit", "spec_hash",
             "os", "tools", "timings", "verified", "verification", "state", "extra", "created_at", "id",
             "revoked_at", "revoked_by", "revoke_reason", "built_by"}
    unknown = set(row) - known
    if unknown:
        raise BadEntry(f"unknown field {printable(sorted(unknown)[0])[:40]!r}")
    provider = _text(row, "provider")
    if provider not in providers.PROVIDERS:
        raise BadEntry(f"unknown provider {provider!r}")
    artifact = _text(row, "artifact")
    if ".." in Path(artifact).parts or ".." in artifact.split("/"):
        raise BadEntry("artifact has a `..` component")
    verified = row.get("verified", False)
    if type(verified) is not bool:
        raise BadEntry("verified must be true or false")
    state = row.get("state", "available")
    if state not in STATES:
        raise BadEntry(f"state must be one of {', '.join(STATES)}")
    os_name = _text(row, "os", optional=True)
    if os_name is not None and os_name not in tables.OPERATING_SYSTEMS:
        raise BadEntry(f"unknown os {os_name!r}")
    sha = _text(row, "sha256", _HEX, optional=True)
    return Entry(
        build_id=_text(row, "build_id", _IDENT), image=_text(row, "image", _IMAGE),
        version=_text(row, "version", _IDENT), provider=provider, region=_text(row, "region", _REGION),
        artifact=artifact, sha256=sha, git_commit=_text(row, "git_commit", _COMMIT, optional=True),
        spec_hash=_text(row, "spec_hash", _HEX, optional=True), os=os_name,
        tools=_json(row, "tools"), timings=_json(row, "timings"), verified=verified,
        verification=_json(row, "verification"), state=state, extra=_json(row, "extra"),
        created_at=timestamp(row.get("created_at")),
        revoked_at=None if row.get("revoked_at") is None else timestamp(row["revoked_at"], "revoked_at"),
        revoked_by=_text(row, "revoked_by", optional=True), revoke_reason=_text(row, "revoke_reason", optional=True),
        built_by=_text(row, "built_by", optional=True),
    )


def read_export(path: Path) -> list:
    """Every entry of an export file, checked; UserError names the file, the entry and the field."""
    try:
        if path.exists() and not path.is_file():
            raise UserError(f"{path}: not a regular file", hint=HINT)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, RecursionError) as e:
        raise UserError(f"{path}: not a catalog export ({printable(e)[:120]})", hint=HINT) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
        raise UserError(f"{path}: not a catalog export (no \"format\": \"{FORMAT}\")", hint=HINT)
    version = data.get("version", 0)
    if type(version) is not int or version < 1:
        raise UserError(f"{path}: catalog export version must be a whole number", hint=HINT)
    if version > VERSION:
        raise UserError(f"{path}: catalog export version {version} is newer than this djbake reads ({VERSION})",
                        hint="upgrade djbake on the merging machine")
    out = []
    for i, row in enumerate(data["entries"]):
        if isinstance(row, dict):
            missing = {"build_id", "image", "version", "provider", "region", "artifact"} - set(row)
            if missing:
                raise UserError(f"{path}: entry {i} lacks {', '.join(sorted(missing))}")
        try:
            out.append(parse_entry(row))
        except BadEntry as e:
            raise UserError(f"{path}: entry {i}: {e}", hint=HINT) from None
    return out


def check_sbom(sha: Any, document: Any) -> str:
    """A bill of materials from an export or another catalog: named by its own sha256, CycloneDX JSON."""
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise BadEntry("a bill of materials is not named by a sha256")
    if not isinstance(document, str) or len(document) > MAX_SBOM:
        raise BadEntry(f"bill of materials {sha[:12]}: not a text of at most {MAX_SBOM >> 20} MiB")
    if hashlib.sha256(document.encode()).hexdigest() != sha:
        raise BadEntry(f"bill of materials {sha[:12]}: its content does not match its sha256")
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        raise BadEntry(f"bill of materials {sha[:12]}: not JSON") from None
    if not isinstance(parsed, dict) or parsed.get("bomFormat") != "CycloneDX":
        raise BadEntry(f"bill of materials {sha[:12]}: not a CycloneDX document")
    return document


def read_sboms(path: Path) -> dict[str, str]:
    """The bills of materials of an export file (version 3 and later; none before), each checked."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))   # read_export() has vetted the file
    found = data.get("sboms", {})
    if not isinstance(found, dict):
        raise UserError(f"{path}: \"sboms\" must map sha256 to a document", hint=HINT)
    try:
        return {sha: check_sbom(sha, doc) for sha, doc in found.items()}
    except BadEntry as e:
        raise UserError(f"{path}: {e}", hint=HINT) from None


_FORWARD_STATES = {"available": ("unavailable", "deregistered"), "unavailable": ("deregistered",)}


def _changes(have: dict, e) -> dict:
    """What an incoming entry may change in a stored one: it only moves forward."""
    out: dict[str, Any] = {}
    if e.revoked_at is not None and have["revoked_at"] is None:  # revocation is never undone by an import
        out.update(revoked_at=e.revoked_at, revoked_by=e.revoked_by, revoke_reason=e.revoke_reason)
    if e.verified and not have["verified"]:
        out["verified"] = 1
        out["verification"] = json.dumps(e.verification, sort_keys=True)
    if e.state != have["state"] and e.state in _FORWARD_STATES.get(have["state"], ()):
        out["state"] = e.state
    for key in ("timings", "extra"):
        value = json.dumps(getattr(e, key), sort_keys=True)
        if getattr(e, key) and value != have[key]:
            out[key] = value
    return out


def merge(cat, entries: list) -> dict[str, int]:
    """Add new entries and move existing ones forward, in one transaction. Idempotent, also concurrently."""
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    with cat.write() as db:
        for e in entries:
            key = (e.build_id, e.provider, e.region)
            have = db.execute("SELECT * FROM images WHERE build_id = ? AND provider = ? AND region = ? "
                              "ORDER BY id LIMIT 1", key).fetchone()
            if have is None:
                store.insert(db, e)
                counts["added"] += 1
                continue
            changes = _changes(have, e)
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                db.execute(f"UPDATE images SET {sets} WHERE id = ?", [*changes.values(), have["id"]])
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts
