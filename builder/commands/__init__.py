"""Every `djbake` subcommand. Each module exports `register(sub, add, spec_args)`; args.py holds what they share.

One module per command keeps cli.py to the parser and lets each pipeline
step own its own arguments. The order here is the order of `djbake --help`.
"""
from __future__ import annotations

from builder.commands import (
                              bench,
                              catalog,
                              channel,
                              check,
                              docs,
                              doctor,
                              gate,
                              image,
                              images,
                              launch,
                              prune,
                              regions,
                              render,
                              revoke,
                              scan,
                              verify,
)

MODULES = (check, render, images, doctor, catalog, channel, regions, docs, prune, image, verify, revoke, launch, gate,
           scan, bench)
REGISTER = [m.register for m in MODULES]
