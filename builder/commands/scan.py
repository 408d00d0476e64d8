"""`djbake scan PATH...`: look for secrets where a build may leave them.

A directory is scanned file by file (an image's root -- etc/ and usr/ below
it -- also for build leftovers: proxy, CA); a SQLite file as a catalog; any
other file as text. Without PATH: build/ (templates, packer.log, manifests)
and the catalog. The values of the cloud credentials set in this
environment are looked for too, and never printed.
"""
from __future__ import annotations

from pathlib import Path

from builder import secretscan
from builder.errors import BuildFailed, UserError
from builder.paths import ROOT, catalog_path


def default_paths() -> list[Path]:
    paths = [ROOT / "build"]
    cat = catalog_path()
    if cat.exists() and not cat.resolve().is_relative_to(paths[0].resolve()):
        paths.append(cat)
    return [p for p in paths if p.exists()]


def cmd_scan(args) -> int:
    paths = [Path(p) for p in args.paths] or default_paths()
    for p in paths:
        if not p.exists():
            raise UserError(f"no such file or directory: {p}")
    needles = {} if args.no_env else secretscan.env_needles()
    for ca in args.ca or ():
        needles |= secretscan.ca_needles(Path(ca))
    found = []
    for p in paths:
        if p.is_dir():
            found += secretscan.scan_tree(p, image=True if args.image else None, needles=needles, allow=args.allow or ())
        else:
            found += secretscan.scan_file(p, needles=needles)
    for f in found:
        print(f)
    where = ", ".join(str(p) for p in paths)
    if found:
        raise BuildFailed(f"{len(found)} possible secret(s) in {where}; remove them (the image/build is not safe "
                          "to share), or rotate what leaked")
    print(f"no secrets found in {where}")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "scan", cmd_scan, "look for secrets in rendered builds, logs, the catalog or an image's files")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: build/ and the catalog)")
    p.add_argument("--image", action="store_true", help="treat each directory as an image's root filesystem")
    p.add_argument("--allow", action="append", metavar="PREFIX",
                   help="a path (relative to a scanned directory) expected to hold a secret; repeatable")
    p.add_argument("--ca", action="append", metavar="PEM",
                   help="the CA certificate(s) the build added (to trust a proxy): must be gone from the image")
    p.add_argument("--no-env", action="store_true",
                   help="do not look for the values of the cloud credentials set in this environment")
