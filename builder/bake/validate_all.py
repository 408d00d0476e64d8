"""`packer validate` of several rendered providers side by side; results come back in the providers' order.

One validate is a Packer process that starts one plugin process (the whole
Packer binary again) per builder and per provisioner: about twenty for a
djbake template, each waiting on its own start-up and RPC handshake. Run
one after the other, nine providers cost nine times that; run side by side
the waiting overlaps. Each provider is still validated exactly as
render.validate() does it alone (same calls, same output, same verdict).

At most WORKERS validates run at once: each holds ~1 GiB of plugin
processes (~50 MiB each) while it runs, and the machine is shared. A
Packer 1.7+ runs `packer init` inside each validate, installing plugins
into one shared directory: those validate one at a time, as before, so
that two installs of the same plugin never race.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

from builder.bake import packer as packer_mod
from builder.bake import render, template
from builder.spec import Spec

WORKERS = max(2, os.cpu_count() or 1) + 1


@dataclass
class Timed:
    validation: render.Validation
    seconds: float  # this provider's own validate, start to end (overlaps the others')


def _timed(spec: Spec, rendered: template.Rendered, name: str, packer: packer_mod.Packer) -> Timed:
    started = time.monotonic()
    v = render.validate(spec, rendered, name, packer)
    return Timed(v, time.monotonic() - started)


def validate_all(spec: Spec, names: list[str], rendered: list[template.Rendered],
                 packer: packer_mod.Packer, workers: int = WORKERS) -> Iterator[Timed]:
    """Yield each provider's Timed validation in the order of names, as soon as it and those before it are done.

    An exception from one provider's validate (e.g. `packer init` failing)
    is raised when its turn in that order comes, as it would be one after
    the other; the validates already started finish first.
    """
    if packer.needs_plugins:
        workers = 1
    else:
        packer_mod.builtin_builders(packer)  # cached: asked once here, not by several threads at once
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        futures = [pool.submit(_timed, spec, r, name, packer) for name, r in zip(names, rendered, strict=True)]
        for f in futures:
            yield f.result()
