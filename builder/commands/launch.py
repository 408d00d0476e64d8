"""`djbake launch`: boot a VM from the newest verified image (qemu: a local VM, builder/qemu/launch.py)."""
from __future__ import annotations

from pathlib import Path

from builder import providers, safe_paths
from builder.catalog import channels
from builder.catalog import store as catalog
from builder.commands.args import load_spec
from builder.docker import launch as docker_launch
from builder.errors import UserError
from builder.qemu import launch


def cmd_launch(args) -> int:
    provider = providers.get(args.provider).name
    if provider == "docker":  # a local container (builder/docker/launch.py)
        return docker_launch.cmd(args)
    if provider != "qemu":
        return _launch_cloud(args, provider)
    name = safe_paths.check_vm_name(args.name)
    if args.stop:
        stopped = launch.stop(name, keep=args.keep_disk)
        if stopped is None:
            raise UserError(f"no VM named {name} was launched", hint="djbake launch --provider qemu --list")
        print(f"stopped VM {name} (PID {stopped.pid})" + ("; disk kept" if args.keep_disk else ""))
        return 0
    if args.list:
        vms = launch.running()
        for item in vms:
            print(item.describe())
        if not vms:
            print("no launched VM is running")
        return 0
    entry = selected(args, "qemu")
    if entry is None:
        raise UserError("no verified qemu image in the catalog", hint="make image PROVIDER=qemu")
    user_data = None
    if args.user_data:
        try:
            user_data = Path(args.user_data).read_text()
        except OSError as e:
            raise UserError(f"--user-data {args.user_data}: {e.strerror or e}") from None
    print(f"launching {entry.image} {entry.version} (catalog id {entry.id}); waiting for SSH...", flush=True)
    launched = launch.start(Path(entry.artifact), name, user_data, cpus=args.cpus, memory_mb=args.memory,
                            wait=not args.no_wait)
    print(launched.describe())
    return 0


def selected(args, provider: str):
    """The entry a local launch boots: the channel's build with --channel, else the newest verified one."""
    cat = catalog.Catalog()
    if args.channel:
        return channels.resolve(cat, args.channel, provider, args.image_name)[0]
    return cat.latest(provider, image=args.image_name)


def _launch_cloud(args, provider: str) -> int:
    """A cloud VM from the newest verified image in --region, through the provider's launch() hook."""
    spec = load_spec(args)
    cls = providers.get(provider)
    entry = None
    cat = catalog.Catalog()
    if args.channel:  # the channel's build only (refused if revoked or unverified)
        found = channels.resolve(cat, args.channel, provider, args.image_name or spec.name, args.region)
    else:
        found = cat.query(provider=provider, image=args.image_name or spec.name, region=args.region, verified=True)
    for e in found:
        if cls.available(e.region, e.artifact):
            entry = e
            break
    if entry is None:
        raise UserError(f"no verified, available {provider} image of {spec.name}"
                        f"{' in ' + args.region if args.region else ''} in the catalog",
                        hint=f"make image PROVIDER={provider}")
    user_data = ""
    if args.user_data:
        try:
            user_data = Path(args.user_data).read_text()
        except OSError as e:
            raise UserError(f"--user-data {args.user_data}: {e.strerror or e}") from None
    command = cls(spec).launch_command(entry.region, entry.artifact, args.user_data)
    if command is not None:  # clouds driven through their own CLI: the exact command to run
        import shlex

        print(shlex.join(command))
        return 0
    instance, address = cls(spec).launch(entry.region, entry.artifact, user_data)
    print(f"{instance} {address} ({entry.artifact} in {entry.region})")
    return 0


def register(sub, add, spec_args) -> None:
    p = add(sub, "launch", cmd_launch, "boot a VM from the newest verified image (qemu: a local VM)")
    p.add_argument("--provider", "-p", default="qemu", help="provider (default: qemu)")
    p.add_argument("--name", default="djbake", help="the VM's name (default: djbake)")
    p.add_argument("--image-name", help="image name in the catalog (default: the newest of any)")
    p.add_argument("--channel", help="boot the build this release channel points at (djbake channel)")
    p.add_argument("--docker-image", help="docker: an image name or id instead of the catalog's newest verified one")
    p.add_argument("--user-data", metavar="FILE", help="cloud-init user-data for the VM (merged with djbake's)")
    p.add_argument("--region", "-r", help="cloud providers: the region (default: any)")
    spec_args(p)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory", type=int, default=2048, help="MiB")
    p.add_argument("--no-wait", action="store_true", help="return once QEMU runs, without waiting for SSH")
    p.add_argument("--stop", action="store_true", help="power the VM off and remove it")
    p.add_argument("--keep-disk", action="store_true", help="with --stop: keep the VM's disk")
    p.add_argument("--list", action="store_true", help="list the running launched VMs")
