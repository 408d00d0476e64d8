"""`djbake image --provider aws,linode,rackspace` (or `all`): several builds at once.

Each provider runs the ordinary single-provider pipeline (builder/bake/pipeline.py)
in its own thread: the work is Packer and cloud API calls, so threads wait
rather than compute. The progress view shows one row per build. A failing
build ends only itself: the others finish, and every pipeline cleans up
after itself (provider.cleanup runs in its `finally`). At the end a summary
table: provider, result, artifact ids, time. The exit status is 1 when any
build failed or was not verified.

`all` means every provider whose credentials are in the environment
(base.Provider.has_credentials); the local providers (qemu, docker) are
named explicitly, as they need no account.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from builder import providers
from builder.bake import pipeline
from builder.errors import UserError
from builder.spec import Spec


def parse(value: str, spec=None) -> list[str]:
    """Provider names from `a,b,c` or `all` (the clouds with credentials present)."""
    if value.strip() == "all":
        names = [n for n, cls in providers.PROVIDERS.items()
                 if n not in providers.LOCAL and _has_credentials(cls, spec)]
        if not names:
            wanted = ", ".join(c.env for n, cls in providers.PROVIDERS.items() if n not in providers.LOCAL
                               for c in cls.credentials if c.required)
            raise UserError("--provider all: no cloud credentials in the environment",
                            hint=f"export the variables of at least one provider ({wanted})")
        return names
    names = [providers.get(v.strip()).name for v in value.split(",") if v.strip()]
    if not names:
        raise UserError("no provider given")
    if len(set(names)) != len(names):
        raise UserError(f"a provider is named twice in --provider {value}")
    return names


def _has_credentials(cls, spec) -> bool:
    if spec is None:
        spec = Spec(name="probe-image")
    return cls(spec).has_credentials()


@dataclass
class Result:
    provider: str
    ok: bool
    verified: bool = False
    artifacts: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def status(self) -> str:
        if not self.ok:
            return "FAILED"
        return "verified" if self.verified else "not verified"


def _one(run_one: Callable, spec, name: str, view, base_dir: Path | None, verify: bool) -> Result:
    started = time.monotonic()
    build = view.build(name)
    try:
        outcome = run_one(spec, name, build, base_dir, verify=verify)
    except BaseException as e:  # noqa: BLE001 - one build's failure must not end the others
        if isinstance(e, KeyboardInterrupt):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        return Result(name, False, seconds=time.monotonic() - started, error=msg)
    return Result(name, True, outcome.verified, list(outcome.artifacts), time.monotonic() - started,
                  "" if outcome.verified or not verify else outcome.verification.summary)


def run(spec, names: list[str], view, base_dir: Path | None = None, verify: bool = True,
        run_one: Callable | None = None, max_parallel: int | None = None) -> list[Result]:
    """Run the pipeline for every provider in parallel; results in the order given."""
    if run_one is None:
        run_one = pipeline.run
    results: dict[str, Result] = {}
    lock = threading.Lock()

    def job(name: str) -> None:
        r = _one(run_one, spec, name, view, base_dir, verify)
        with lock:
            results[name] = r

    with ThreadPoolExecutor(max_workers=max_parallel or len(names), thread_name_prefix="djbake-build") as pool:
        for f in [pool.submit(job, n) for n in names]:
            f.result()
    return [results[n] for n in names]


def summary(results: list[Result]) -> str:
    lines = [f"{'provider':13} {'result':13} {'time':>8}  artifacts"]
    for r in results:
        arts = ", ".join(f"{region}:{ident}" for region, ident in r.artifacts) or "-"
        lines.append(f"{r.provider:13} {r.status:13} {_clock(r.seconds):>8}  {arts}")
        if r.error:
            lines.append(f"{'':13} {'':13} {'':>8}  {r.error}")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
