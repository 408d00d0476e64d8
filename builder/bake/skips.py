"""What a passing image-suite run must show besides no failures: every skip has a reason listed here,
and at least a minimum number of checks passed.

Without this a check that always skips (an environment variable nobody sets, a precondition that
never holds) counts as a pass, and so does a run in which most checks were skipped. builder/bake/gate.py
`run_suite` applies it to every run: the in-build gate, the docker and QEMU verifiers, the clouds.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

# (check pattern "module::test", the start of the skip message): the only skips a run may have.
# Each says why the check cannot apply to this image or this kind of host.
ALLOWED = (
    # A container shares its host's kernel (the AWS stand-in over SSH; `kernel` is deselected in docker).
    ("*::*", "needs a real kernel"),
    # What the spec leaves out.
    ("test_http::*", "the spec has no nginx"),
    ("test_http::*", "a project baked in by the spec's app"),
    ("test_security::test_nginx_hides_its_version", "no nginx"),
    ("test_security::test_forwarded_proto_set_by_nginx_not_the_client", "no nginx"),
    ("test_security::test_forwarded_proto_set_by_nginx_not_the_client", "reads the scheme from the welcome project"),
    ("test_network::test_https_listens_and_refuses_handshakes_without_a_certificate", "no nginx, or an nginx without"),
    ("test_services::test_certbot_installed_without_certificates", "the spec has no certbot"),
    ("test_services::test_redis_when_asked", "the spec has no redis"),
    ("test_firstboot::test_database_role_uses_the_generated_password", "external database"),
    ("test_firstboot::test_first_boot_leaves_the_django_steps_to_the_seal", "external database"),
    ("test_backup::*", "no local PostgreSQL"),
    # What the host cannot do.
    ("test_firstboot::test_cloud_init_done", "no cloud-init in this image"),
    ("test_http::test_django_answers_on_the_vm_address", "no global IPv4 address"),
    ("test_hardening::test_no_core_dumps", "cannot start a session from an unlimited parent here"),
    # A container reached over SSH through one forwarded port (the AWS stand-in); a QEMU VM's forwards are
    # named by its verifier, and without them the check fails on a VM instead of skipping.
    ("test_network::test_firewall_refuses_a_spare_port_from_outside", "the runner reaches this container only through"),
    ("test_network::test_firewall_refuses_a_spare_port_from_outside", "the in-build gate's VM is Packer's"),
    ("test_services::test_fail2ban_bans_after_failed_logins", "bans the runner's own address"),
)

# The fewest checks a complete run passes, by the phase its markers select (the default image passes
# ~80 on a fresh boot, ~12 sealed, 15-17 per_vm on a second boot; a spec without nginx or PostgreSQL
# skips up to ~20, up to 4 of them per_vm).
MIN_PASSED = {"sealed": 8, "gate": 40, "fresh_boot": 40, "per_vm": 10}


def phase_of(markers: str) -> str:
    """The phase a -m expression selects: its first word (`fresh_boot and not kernel` -> fresh_boot,
    `per_vm and fresh_boot` -> per_vm)."""
    return markers.split()[0] if markers else ""


def problems(markers: str, passed: int, skipped: list[tuple[str, str]], complete: bool = True) -> list[str]:
    """Unexpected skips and a too-small pass count of one run; skipped: (module::test, message).
    A run of some modules only (complete=False) is held to no minimum."""
    found = [f"{check} skipped: {message[:160]}" for check, message in skipped
             if not any(fnmatchcase(check, pattern) and message.startswith(reason) for pattern, reason in ALLOWED)]
    least = MIN_PASSED.get(phase_of(markers))
    if complete and least is not None and passed < least:
        found.append(f"only {passed} checks passed (a complete {phase_of(markers)} run passes at least {least})")
    return found
