"""`djbake gate` (and `python -m builder gate`): the in-build testinfra gate Packer runs before sealing."""
from __future__ import annotations

from builder.bake import gate


def _cmd(args) -> int:
    return gate.cmd_gate(args)


def register(sub, add, spec_args) -> None:
    p = add(sub, "gate", _cmd, "run the image suite against a build VM/container (Packer's shell-local step)")
    p.add_argument("--provider", required=True, help="the provider being built (for the report)")
    p.add_argument("--host", help="build VM address (SSH)")
    p.add_argument("--port", type=int, default=22, help="SSH port (default: 22)")
    p.add_argument("--user", default="root", help="SSH user (sudo is used when not root)")
    p.add_argument("--key-file", help="SSH private key (default: the key in env DJBAKE_GATE_KEY)")
    p.add_argument("--container", help="build container id (docker provider)")
    p.add_argument("--log-dir", required=True, help="where gate.junit.xml and gate.log go")
    p.add_argument("--markers", "-m", help="pytest -m expression (default: gate, minus kernel in a container)")
