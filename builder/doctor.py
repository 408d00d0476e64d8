"""`djbake doctor`: can this machine bake images, and what exactly to do if not.

Each check says what it found and, when something is wrong, the one command
that fixes it. A check names the providers that need it; the exit status
answers "can the providers I asked about (default: qemu, the local default)
be baked here?": 0 yes, 2 no. Problems that only matter for other providers
are listed as `miss` and do not change the exit status.

Status words: `ok`; `warn` (works, but slower or with a caveat); `FAIL`
(blocks a provider you asked about); `miss` (blocks only providers you did
not ask about); `info`.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder import paths, providers, tables
from builder.bake import packer as packer_mod
from builder.errors import UserError

ALL = frozenset(providers.PROVIDERS)
PACKER_DOWNLOAD = "https://developer.hashicorp.com/packer/install"


@dataclass
class Check:
    name: str
    status: str                 # ok | warn | fail | info
    detail: str
    fix: str | None = None
    needed_by: frozenset[str] = field(default_factory=lambda: ALL)

    def blocks(self, targets: frozenset[str]) -> bool:
        return self.status == "fail" and bool(self.needed_by & targets)

    def shown_status(self, targets: frozenset[str]) -> str:
        if self.status == "fail":
            return "FAIL" if self.blocks(targets) else "miss"
        return self.status

    def as_dict(self, targets: frozenset[str]) -> dict:
        d = asdict(self)
        d["needed_by"] = sorted(self.needed_by)
        d["blocks"] = self.blocks(targets)
        return d


# -- individual checks -------------------------------------------------------

def _version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def check_packer() -> tuple[list[Check], packer_mod.Packer | None]:
    try:
        pk = packer_mod.find()
    except UserError as e:
        fix = e.hint if "too old" in e.message else "make deps   (or: apt-get install packer)"
        return [Check("packer", "fail", e.message, fix)], None
    checks = [Check("packer", "ok", f"Packer {pk.version_text} at {pk.path}")]
    if pk.needs_plugins:
        checks.append(Check(
            "packer init", "info",
            f"Packer {pk.version_text} ships builders as plugins: djbake writes plugins.pkr.json and runs "
            "`packer init` before each build (needs access to github.com and releases.hashicorp.com)",
            "to install them ahead of time: djbake render -p PROVIDER && packer init build/django-web/PROVIDER",
        ))
        return checks, pk
    builtins = packer_mod.builtin_builders(pk)
    if not builtins:
        checks.append(Check("packer builders", "warn", "could not list the builders built into this Packer"))
        return checks, pk
    checks.append(Check("packer init", "info", f"Packer {pk.version_text} has builders built in: "
                        "no `packer init` (it would reject `required_plugins`)"))
    for name, cls in providers.PROVIDERS.items():
        if cls.builder_type in builtins:
            continue
        checks.append(Check(
            f"builder {cls.builder_type}", "fail",
            f"Packer {pk.version_text} has no {cls.builder_type} builder built in, and it is too old for "
            f"`packer init` (Debian's build leaves it out); {name} templates are rendered and checked, not built",
            f"install Packer >= 1.7 from HashiCorp ({PACKER_DOWNLOAD}); djbake then installs the "
            f"{cls.builder_type} plugin with `packer init`",
            frozenset({name}),
        ))
    return checks, pk


def check_qemu() -> list[Check]:
    checks = []
    for binary, package in (("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils")):
        path = shutil.which(binary)
        if path:
            checks.append(Check(binary, "ok", _version_of([path, "--version"]) or path, needed_by=frozenset({"qemu"})))
        else:
            checks.append(Check(binary, "fail", f"{binary} is not installed", f"apt-get install {package}",
                                frozenset({"qemu"})))
    iso = next((b for b in ("xorriso", "mkisofs", "genisoimage") if shutil.which(b)), None)
    if iso:
        checks.append(Check("cd image tool", "ok", f"{iso} (Packer writes the cloud-init seed CD with it)",
                            needed_by=frozenset({"qemu"})))
    else:
        checks.append(Check("cd image tool", "fail",
                            "no xorriso, mkisofs or genisoimage: Packer cannot write the cloud-init seed CD",
                            "apt-get install xorriso", frozenset({"qemu"})))
    if shutil.which("ssh-keygen"):
        checks.append(Check("ssh-keygen", "ok", "for the build VM's key pair", needed_by=frozenset({"qemu"})))
    else:
        checks.append(Check("ssh-keygen", "fail", "ssh-keygen is not installed", "apt-get install openssh-client",
                            frozenset({"qemu"})))
    return checks


def _accel():
    try:
        return importlib.import_module("builder.qemu.accel")
    except ModuleNotFoundError as e:
        if e.name != "builder.accel":
            raise
        return None


def check_kvm(probe: bool = True) -> Check:
    """KVM is judged by really booting (builder.accel), never by /dev/kvm alone."""
    qemu = frozenset({"qemu"})
    node = "present" if os.path.exists("/dev/kvm") else "absent"
    forced = os.environ.get("DJBAKE_ACCELERATOR")
    if forced:
        return Check("kvm", "info", f"DJBAKE_ACCELERATOR={forced} chooses the accelerator; probe not run",
                     needed_by=qemu)
    accel = _accel()
    if accel is None:
        return Check("kvm", "warn", f"/dev/kvm {node}; the boot probe is not run (this djbake has no "
                     "builder/qemu/accel.py), so builds use TCG software emulation (a full build about 10 min)",
                     "to try KVM anyway: export DJBAKE_ACCELERATOR=kvm", qemu)
    if not probe:
        return Check("kvm", "info", f"/dev/kvm {node}; boot probe skipped (--no-probe): a build probes "
                     "by booting, then uses KVM or TCG", needed_by=qemu)
    try:
        result = _run_probe(accel)
    except Exception as e:  # a probe failure must not end the doctor
        return Check("kvm", "warn", f"the KVM probe failed to run: {e}; builds use TCG", needed_by=qemu)
    ok, why = result
    if ok:
        return Check("kvm", "ok", f"KVM works: {why}", needed_by=qemu)
    return Check("kvm", "warn", f"KVM is not usable ({why}): builds run under TCG software emulation, "
                 "about 10 minutes for a full image", "use a machine with VT-x/AMD-V (nested virtualization "
                 "enabled) for KVM", qemu)


def _run_probe(accel) -> tuple[bool, str]:
    """builder.accel.resolve(): boots a kernel under KVM (cached per host) and says kvm or tcg."""
    out = accel.resolve()
    if isinstance(out, bool):
        return out, "probe"
    if isinstance(out, str):
        return out == "kvm", f"accelerator {out}"
    ok = getattr(out, "accelerator", None) == "kvm" if hasattr(out, "accelerator") else bool(getattr(out, "ok", False))
    return ok, str(getattr(out, "reason", "") or out)


def check_mmdebstrap() -> Check:
    path = shutil.which("mmdebstrap")
    needed = frozenset(providers.LOCAL)
    if path:
        return Check("mmdebstrap", "ok", _version_of([path, "--version"]) or path, needed_by=needed)
    return Check("mmdebstrap", "fail", "mmdebstrap is not installed: the local base images (qemu "
                 "`source_image: bootstrap`, docker) are built with it", "apt-get install mmdebstrap", needed)


def check_docker() -> Check:
    needed = frozenset({"docker"})
    if not shutil.which("docker") and not shutil.which("dockerd"):
        return Check("docker engine", "fail", "Docker is not installed", "apt-get install docker.io", needed)
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        version = client.version().get("Version", "?")
        return Check("docker engine", "ok", f"Docker engine {version} answers", needed_by=needed)
    except Exception as e:  # the SDK raises many kinds: all mean "no engine"
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        return Check("docker engine", "fail", f"no Docker engine answers ({reason})",
                     "bash scripts/host/start-dockerd.sh   (or: systemctl start docker)", needed)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_gb(path: Path = paths.BUILD_DIR) -> float:
    return shutil.disk_usage(_existing(path)).free / 1024 ** 3


def _thresholds(provider: str) -> tuple[float, float]:
    """(recommended, needed) free GB for a build of `provider` (tables.PROVIDER_DEFAULTS)."""
    facts = tables.PROVIDER_DEFAULTS[provider]
    # DJBAKE_MIN_FREE_GB raises (or lowers) the hard limit, e.g. for big disks.
    fail = float(os.environ.get("DJBAKE_MIN_FREE_GB") or facts.disk_needed_gb)
    return max(facts.disk_recommended_gb, fail), fail


def _docker_root() -> Path | None:
    """The local engine's data root, where a docker build's layers land; None if no engine answers."""
    try:
        import docker

        root = docker.from_env(timeout=5).info().get("DockerRootDir")
    except Exception:  # noqa: BLE001 - no engine: the docker engine check says so
        return None
    return Path(root) if root and Path(root).exists() else None  # a remote engine's root is not here


def disk_path(provider: str, build_dir: Path = paths.BUILD_DIR) -> Path:
    """Where a local build of `provider` writes its large files."""
    if provider == "docker":
        return _docker_root() or build_dir
    return build_dir


def _gb(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def check_disk(path: Path = paths.BUILD_DIR, provider: str = "qemu") -> Check:
    warn, fail = _thresholds(provider)
    free = free_gb(path)
    where = _existing(path)
    text = f"{free:.1f} GB free under {where}"
    name = f"disk space ({provider})"
    needed = frozenset({provider})  # cloud builds store nothing large here
    if free < fail:
        return Check(name, "fail", f"{text}; a {provider} build needs at least {_gb(fail)} GB",
                     "free space (e.g. `make clean`, `docker system prune`) or move build/ to a larger disk", needed)
    if free < warn:
        return Check(name, "warn", f"{text}; {_gb(warn)} GB recommended for a {provider} build", "make clean", needed)
    return Check(name, "ok", text, needed_by=needed)


def check_credentials() -> list[Check]:
    checks = []
    for name, cls in providers.PROVIDERS.items():
        if not cls.credentials:
            continue
        required = [c for c in cls.credentials if c.required]
        missing = [c for c in required if not os.environ.get(c.env)]
        optional = [c for c in cls.credentials if not c.required and os.environ.get(c.env)]
        target = frozenset({name})
        if missing:
            exports = "\n".join(f"export {c.env}=...  # {c.help}" if c.help else f"export {c.env}=..."
                                for c in missing)
            checks.append(Check(f"{name} credentials", "fail",
                                f"{cls.title}: not set: {', '.join(c.env for c in missing)}", exports, target))
            continue
        problems = [c.env for c in cls.credentials
                    if os.environ.get(c.env) and c.env.endswith(("_CREDENTIALS", "_FILE"))
                    and not Path(os.environ[c.env]).is_file()]
        if problems:
            checks.append(Check(f"{name} credentials", "fail", f"{', '.join(problems)} names no file",
                                f"export {problems[0]}=/path/to/key.json", target))
            continue
        extra = f" (+ {', '.join(c.env for c in optional)})" if optional else ""
        checks.append(Check(f"{name} credentials", "ok",
                            f"{cls.title}: {', '.join(c.env for c in required)} set{extra}", needed_by=target))
    return checks


# -- all of it -------------------------------------------------------------------

@dataclass
class Report:
    checks: list[Check]
    targets: frozenset[str]

    @property
    def ok(self) -> bool:
        return not any(c.blocks(self.targets) for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 2

    def ready(self) -> list[str]:
        """Providers with no failing check at all."""
        return [p for p in providers.PROVIDERS
                if not any(c.status == "fail" and p in c.needed_by for c in self.checks)]

    def as_dict(self) -> dict:
        return {"ok": self.ok, "targets": sorted(self.targets), "ready": self.ready(),
                "checks": [c.as_dict(self.targets) for c in self.checks]}

    def text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"djbake doctor: can this machine bake {', '.join(sorted(self.targets))}?", ""]
        for c in self.checks:
            lines.append(f"  {c.shown_status(self.targets):4}  {c.name:<{width}}  {c.detail}")
            if c.fix and c.status not in ("ok", "info"):
                for i, fix in enumerate(c.fix.splitlines()):
                    lines.append(f"  {'':4}  {'':<{width}}  {'fix: ' if i == 0 else '     '}{fix}")
        asked = ", ".join(sorted(self.targets))
        lines.append("")
        lines.append(f"ready to bake: {', '.join(self.ready()) or 'nothing'}")
        if self.ok:
            lines.append(f"OK: {asked} can be baked on this machine")
        else:
            blocking = sum(c.blocks(self.targets) for c in self.checks)
            lines.append(f"NOT READY: {blocking} problem(s) block {asked}; run the `fix:` command(s) above")
        return "\n".join(lines) + "\n"


def run(targets: list[str] | None = None, probe: bool = True, build_dir: Path = paths.BUILD_DIR) -> Report:
    wanted = frozenset(targets or ["qemu"])
    checks, _ = check_packer()
    checks += check_qemu()
    checks.append(check_kvm(probe))
    checks.append(check_mmdebstrap())
    checks.append(check_docker())
    checks += [check_disk(disk_path(name, build_dir), name) for name in providers.LOCAL]
    checks += check_credentials()
    return Report(checks, wanted)


def preflight(provider_name: str, build_dir: Path = paths.BUILD_DIR) -> None:
    """Before a build: the doctor's checks that matter for this provider, as one UserError (exit 2).

    Fast (no KVM probe, the Docker engine only for docker): missing
    credentials, a Packer without this builder, missing local tools, a full
    disk. The hook for `djbake image` is one line in pipeline.run, after
    packer.find(): `doctor.preflight(provider_name, ctx.build_dir)`.
    """
    name = providers.get(provider_name).name
    target = frozenset({name})
    checks, _ = check_packer()
    if name == "qemu":
        checks += check_qemu()
    if name in providers.LOCAL:
        checks += [check_mmdebstrap(), check_disk(disk_path(name, build_dir), name)]
    if name == "docker":
        checks.append(check_docker())
    checks += [c for c in check_credentials() if name in c.needed_by]
    blocking = [c for c in checks if c.blocks(target)]
    if not blocking:
        return
    first = blocking[0]
    more = f" (+{len(blocking) - 1} more: djbake doctor -p {name})" if len(blocking) > 1 else ""
    fix = "; ".join(line.split("  #")[0].strip() for line in (first.fix or "").splitlines()) or None
    raise UserError(f"cannot bake {name}: {first.detail}{more}", hint=fix)
