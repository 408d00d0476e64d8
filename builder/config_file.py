"""djbake.toml: what a team sets once instead of in every shell and CI job (today: where the catalog is).

    # djbake.toml, committed next to images/ (or ~/.config/djbake/djbake.toml for one user)
    catalog = "postgresql://djbake@db.example.com/djbake"

The first file of paths.config_files() that exists is read. DJBAKE_CATALOG (and a command's
--catalog) still win over it, so one shell or job can point elsewhere. The file is input like a spec:
an unknown key, a wrong type or a TOML error is one line naming the file, line and key, exit status 2;
a password in the URL is refused, as the file is meant to be committed (the password goes in
~/.pgpass or PGPASSWORD, which libpq reads).
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from builder import paths
from builder.catalog import backend
from builder.errors import UserError

KEYS = {"catalog": str}


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return 1


def read(path: Path) -> dict:
    """The settings of one djbake.toml, checked."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot be read ({e.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as e:
        where = re.search(r"\(at line (\d+), column \d+\)", str(e))
        raise UserError(f"{path}:{where.group(1) if where else 1}: not TOML: {str(e).split(' (at ')[0]}") from None
    for key, value in data.items():
        line = _line_of(text, key)
        if key not in KEYS:
            raise UserError(f"{path}:{line}: {key}: unknown setting", hint=f"known: {', '.join(KEYS)}")
        if not isinstance(value, KEYS[key]) or not value.strip():
            raise UserError(f"{path}:{line}: {key}: must be a non-empty string")
    catalog = data.get("catalog")
    if catalog and backend.is_url(catalog) and urlsplit(catalog).password is not None:
        raise UserError(f"{path}:{_line_of(text, 'catalog')}: catalog: the URL holds a password",
                        hint="remove it; put it in ~/.pgpass or PGPASSWORD, which libpq reads")
    if catalog and not backend.is_url(catalog) and not os.path.isabs(catalog):
        data["catalog"] = str(path.parent / catalog)   # a relative file is relative to djbake.toml
    return data


def settings() -> tuple[dict, Path | None]:
    for path in paths.config_files():
        if path.is_file():
            return read(path), path
    return {}, None


def catalog_location() -> str:
    """DJBAKE_CATALOG, else djbake.toml's catalog, else build/catalog.sqlite."""
    if os.environ.get("DJBAKE_CATALOG"):
        return os.environ["DJBAKE_CATALOG"]
    found, _ = settings()
    return found.get("catalog") or paths.catalog_location()
