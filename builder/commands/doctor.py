"""`djbake doctor`: what this machine can bake, and the command that fixes each problem."""
from __future__ import annotations

import json
import sys

from builder import doctor
from builder.commands.args import provider_list


def cmd_doctor(args) -> int:
    targets = provider_list(args.provider) if args.provider else ["qemu"]
    report = doctor.run(targets, probe=not args.no_probe)
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(report.text())
    return report.exit_code


def register(sub, add, spec_args) -> None:
    p = add(sub, "doctor", cmd_doctor,
            "check Packer, QEMU/KVM, mmdebstrap, Docker, disk space and credentials; "
            "exit 0 when the given providers (default: qemu) can be baked here, 2 otherwise")
    p.add_argument("--provider", "-p", help="provider(s) that must be ready, comma-separated, or all (default: qemu)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--no-probe", action="store_true", help="skip the KVM boot probe (it starts a tiny VM)")
