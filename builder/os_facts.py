"""Questions answered from the OS table: which OS ships a Python, can an OS's
Python run a Django release. The spec's cross-checks word their errors here.
"""
from __future__ import annotations

from builder import tables


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def python_mismatch(os_name: str, asked: str) -> str:
    """The error for stack.python naming an OS that ships the asked version."""
    have = tables.OPERATING_SYSTEMS[os_name].python
    message = f"{os_name} ships Python {have}; use `system` or `{have}`"
    if others := tables.oses_with_python(asked):
        return f"{message}, or os: {' / '.join(others)} for Python {asked}"
    shipped = ", ".join(f"{n} {o.python}" for n, o in tables.OPERATING_SYSTEMS.items())
    return f"{message}; no supported OS ships Python {asked} ({shipped})"


def django_python_mismatch(os_name: str, django: str) -> str | None:
    """Why the OS's Python cannot install this Django (None: it can, or the series is unknown)."""
    series = ".".join(django.split(".")[:2])
    need = tables.DJANGO_MIN_PYTHON.get(series)
    have = tables.OPERATING_SYSTEMS[os_name].python
    if need is None or _version(have) >= _version(need):
        return None
    fits = [n for n, o in tables.OPERATING_SYSTEMS.items() if _version(o.python) >= _version(need)]
    return (f"Django {django} needs Python >= {need}; {os_name} ships {have}: "
            f"use os: {' / '.join(fits)}, or Django {tables.DJANGO_LTS} (LTS, Python >= 3.10)")
