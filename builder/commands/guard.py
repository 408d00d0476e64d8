"""The CLI's edge cases as one line and exit 2: closed output, unusable paths, bad arguments.

`djbake images | head` closes stdout early (a broken pipe); `-o`/`--out` may
name a path that cannot be written; an argument's `type=` may raise a
UserError (an unknown provider) while argparse parses. None of them is a
traceback.
"""
from __future__ import annotations

import os
import sys

from builder.errors import UserError

MAX_ID = 2**63 - 1  # SQLite INTEGER


def entry_id(text: str) -> int:
    """A catalog id argument (`images --show`): a whole number SQLite can hold."""
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a catalog id (a whole number, 1 or more)")
    return int(text)


def parse(ap, argv):
    try:
        return ap.parse_args(argv)
    except UserError as e:  # from an argument's type= (e.g. an unknown provider)
        print(f"djbake: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None


def _silence_stdout() -> None:
    # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def call(func, args) -> int:
    try:
        return func(args) or 0
    except BrokenPipeError:
        _silence_stdout()
        raise UserError("output closed before djbake finished writing (broken pipe)") from None
    except OSError as e:
        if e.filename is None:
            raise
        where = e.filename if isinstance(e.filename, str) else os.fsdecode(e.filename)
        raise UserError(f"{where}: {e.strerror or e}", hint="check the path and that it is writable") from None


def _one_line_error(self, message: str):
    """argparse's error, as one line (its usage block is what `--help` is for)."""
    self.exit(2, f"djbake: error: {self.prog}: {message} (see {self.prog} --help)\n")


def parser_class():
    import argparse

    return type("Parser", (argparse.ArgumentParser,), {"error": _one_line_error})
