"""The `djbake` command. Each subcommand is one step of the pipeline, or a look at its results."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from builder import cli_guard, providers
from builder.errors import BuildFailed, UserError
from builder.template import ROOT

DEFAULT_SPEC = ROOT / "images" / "django-web.yaml"


def _spec_path(args) -> Path:
    if getattr(args, "spec", None):
        return Path(args.spec)
    name = getattr(args, "image", None)
    if name:
        path = ROOT / "images" / f"{name}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in (ROOT / "images").glob("*.yaml")))
            raise UserError(f"no image spec images/{name}.yaml (known: {known})")
        return path
    return DEFAULT_SPEC


def _load_spec(args):
    from builder import spec

    return spec.load(_spec_path(args))


def _provider_list(value: str | None) -> list[str]:
    if not value or value == "all":
        return list(providers.PROVIDERS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise UserError(f"--provider {value!r} names no provider", hint="e.g. --provider qemu, or all")
    for n in names:
        providers.get(n)
    return names


# -- commands -------------------------------------------------------------

def cmd_schema(args) -> int:
    from builder import spec

    text = json.dumps(spec.json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_check(args) -> int:
    s = _load_spec(args)
    print(f"{_spec_path(args)}: ok ({s.name}, {s.os}/{s.arch}, spec hash {s.spec_hash()})")
    return 0


def cmd_render(args) -> int:
    from builder import packer, render

    s = _load_spec(args)
    names = _provider_list(args.provider)
    pk = None if args.no_packer else _packer_or_none()
    for r in render.render(s, names, pk, Path(args.out) if args.out else None):
        print(r.template.relative_to(ROOT) if r.template.is_relative_to(ROOT) else r.template)
    return 0


def _packer_or_none():
    from builder import packer

    try:
        return packer.find()
    except UserError:
        return None


def cmd_validate(args) -> int:
    from builder import packer, render

    s = _load_spec(args)
    names = _provider_list(args.provider)
    pk = packer.find()
    failed = 0
    for name, r in zip(names, render.render(s, names, pk, Path(args.out) if args.out else None)):
        v = render.validate(s, r, name, pk)
        status = "ok" if v.ok else "FAILED"
        print(f"{name:13} {status:7} {v.how}")
        if not v.ok:
            failed += 1
            for line in v.output.splitlines():
                print(f"    {line}")
    if failed:
        raise BuildFailed(f"{failed} template(s) failed validation")
    return 0


def cmd_images(args) -> int:
    from builder import catalog, catalog_import

    cat = catalog.Catalog()
    if args.show:
        e = cat.get(args.show)
        if e is None:
            raise UserError(f"no image with id {args.show} in {cat.path}")
        if args.json:
            print(json.dumps(e.__dict__, indent=2, default=str))
            return 0
        _print_entry(e)
        return 0
    rows = cat.query(provider=args.provider, image=args.name, state=None)
    if not rows:
        print(f"no images recorded in {cat.path}; bake one with `make image`")
        return 0
    print(f"{'id':>4}  {'provider':12} {'region':14} {'image':14} {'version':16} {'verified':8}  artifact")
    for e in rows:
        ver = "yes" if e.verified else "no"
        if e.state != "available":
            ver += f" ({e.state})"
        p = catalog_import.printable  # an imported value never moves the cursor or starts a line
        print(f"{e.id:>4}  {p(e.provider):12} {p(e.region):14} {p(e.image):14} {p(e.version):16} {ver:8}  "
              f"{p(e.artifact)}")
    return 0


def _print_entry(e) -> None:
    """Everything recorded about one image, for people; the timings as a table."""
    import datetime as dt

    from builder import progress

    fields = dict(e.__dict__)
    timings = fields.pop("timings") or {}
    fields["created_at"] = dt.datetime.fromtimestamp(fields["created_at"], dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")
    width = max(map(len, fields))
    for key, value in fields.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, default=str) if value else "-"
        print(f"{key:<{width}}  {'-' if value is None else catalog_import.printable(value)}")
    print()
    print(progress.timings_text(timings, "timings:"), end="")


def cmd_latest(args) -> int:
    from builder import catalog, catalog_import

    from builder import regions

    cls = providers.get(args.provider)
    known = [r.id for r in cls.region_table(cls.Settings())]
    if args.region and known and args.region not in known:
        raise UserError(regions.unknown_region_message(args.region, known, cls.name))
    cat = catalog.Catalog()
    for e in cat.query(provider=args.provider, image=args.name, region=args.region, verified=True):
        # The cloud has the last word: an image deleted outside djbake is skipped (and noted).
        if cls.available(e.region, e.artifact):
            print(catalog_import.printable(e.artifact))
            return 0
        cat.update(e.id, state="unavailable")
    where = f" in {args.region}" if args.region else ""
    raise UserError(f"no verified {args.provider} image{where} in the catalog",
                    hint=f"make image PROVIDER={args.provider}")


COMMANDS = {}


def _add(sub, name, func, help_text):
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    COMMANDS[name] = p
    return p


def _spec_args(p) -> None:
    p.add_argument("--image", help="image spec name in images/ (default: django-web)")
    p.add_argument("--spec", help="path to a spec file (instead of --image)")


def parser() -> argparse.ArgumentParser:
    ap = cli_guard.parser_class()(prog="djbake", description="Bake verified, Django-ready server images with Packer.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "schema", cmd_schema, "print the spec's JSON Schema")
    p.add_argument("-o", "--output", help="write to this file")

    p = _add(sub, "check", cmd_check, "validate a spec and print its summary")
    _spec_args(p)

    for name, func, help_text in (
        ("render", cmd_render, "write Packer templates to build/<image>/<provider>/"),
        ("validate", cmd_validate, "render, then `packer validate` every template"),
    ):
        p = _add(sub, name, func, help_text)
        _spec_args(p)
        p.add_argument("--provider", "-p", help="provider(s), comma-separated, or all (default: all)")
        p.add_argument("--out", help="output base directory (default: build/)")
        if name == "render":
            p.add_argument("--no-packer", action="store_true", help="render for Packer 1.6 without looking for Packer")

    p = _add(sub, "images", cmd_images, "list the images in the catalog")
    p.add_argument("--provider", "-p")
    p.add_argument("--name", help="image name")
    p.add_argument("--show", type=cli_guard.entry_id, metavar="ID", help="everything recorded about one image, with its timings")
    p.add_argument("--json", action="store_true", help="with --show: the entry as JSON")

    p = _add(sub, "latest", cmd_latest, "print the newest verified image to select")
    p.add_argument("--provider", "-p", required=True, type=lambda v: providers.get(v).name)
    p.add_argument("--region", "-r")
    p.add_argument("--name", help="image name")

    for extension in EXTENSIONS:
        extension(sub, _add, _spec_args)
    return ap


# Later steps register their subcommands here (image, gate, verify, launch, ...).
EXTENSIONS: list = []


def _load_extensions() -> None:
    import importlib

    if EXTENSIONS:
        return  # already loaded (main() may run more than once in a process, as in tests)

    for mod in ("builder.commands",):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        EXTENSIONS.extend(m.REGISTER)


def _terminated(signum, frame) -> None:
    # SIGTERM (a CI runner cancelling, `kill`) unwinds like Ctrl-C: every `finally` runs
    # (provider cleanup, build key removal) instead of the process vanishing mid-step.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    _load_extensions()
    ap = parser()
    args = cli_guard.parse(ap, argv)
    import signal
    import threading

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
