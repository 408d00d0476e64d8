"""The `djbake` command: the parser and main(). Each subcommand lives in builder/commands/<name>.py."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from builder import commands
from builder.commands import guard as cli_guard
from builder.commands.args import add_spec_args
from builder.errors import BuildFailed, UserError

COMMANDS: dict[str, argparse.ArgumentParser] = {}


def _add(sub, name, func, help_text):
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    COMMANDS[name] = p
    return p


def parser() -> argparse.ArgumentParser:
    ap = cli_guard.parser_class()(prog="djbake", description="Bake verified, Django-ready server images with Packer.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in commands.REGISTER:
        register(sub, _add, add_spec_args)
    return ap


def _terminated(signum, frame) -> None:
    # SIGTERM (a CI runner cancelling, `kill`) unwinds like Ctrl-C: every `finally` runs
    # (provider cleanup, build key removal) instead of the process vanishing mid-step.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = cli_guard.parse(ap, argv)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    try:
        return cli_guard.call(args.func, args)  # broken pipe, unwritable path: a UserError
    except UserError as e:
        if args.debug:
            raise
        print(f"djbake: error: {e}", file=sys.stderr)
        return e.exit_code
    except BuildFailed as e:
        if args.debug:
            raise
        print(f"djbake: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("djbake: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
