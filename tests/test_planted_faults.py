"""Planted faults: the image suite (tests/image) must notice a broken image, naming the right checks.

From the session's verified docker image (tests/conftest.py `built_image`), one container per fault
is booted the way the docker verifier boots one (builder/docker/base_image.py `start`), the fault is
planted with `docker exec` (or, for a fault that must exist before the first boot, in an image
derived from the verified one), and the suite runs as the verifier runs it (builder/bake/gate.py
`run_suite`: fresh-boot markers without `kernel`, the sealed suite on a container that has not
booted). Each fault must fail exactly the checks FAULTS names for it, and the fault-free image must
pass every check (the verifier's own runs of it are read for that). FAULTS is the one table of fault -> checks; docs/verification.md prints it
(`python -m tests.test_planted_faults` writes the section; test_docs_table_is_current checks it).

Not planted here (they need a kernel of their own, so they belong to the QEMU end-to-end run): a
firewall ruleset that nftables itself would refuse at boot, kernel parameters. A pending security
update is planted as a local repository that calls itself the security suite (PENDING_SECURITY): the
archive serves only current versions, so there is no honest downgrade to plant instead.

Cost: each suite run takes ~1.5 minutes on an idle 2-core host. `make test` plants the faults in
GROUPS, four containers at once: the faults of a group name pairwise disjoint checks, so the run
must fail exactly the union, and each failing check is its own fault's (19 minutes one fault per
container under CI-like load, 251 s in groups; with 44 faults 240 s in a CI run, with 48 218 s on an
idle host; with 54 451 s on an idle host, 317 s of it group-c's kill -9 check waiting out RESTART_SECONDS
for the gunicorn that no_restart_policy keeps down, as it has since that wait became 300 s in 2a04f8f). `make test-faults` (DJBAKE_PLANTED_FAULTS=each) plants every fault alone, which also shows
that no fault makes another fault's checks fail.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from builder.bake import gate
from builder.docker import base_image as docker_base
from builder.docker import client as docker_client
from builder.paths import ROOT
from tests.docker_build import built_id

DOC = ROOT / "docs" / "verification.md"
DOC_BEGIN = "<!-- planted-faults: begin (python -m tests.test_planted_faults) -->"
DOC_END = "<!-- planted-faults: end -->"
# The build user a QEMU verifier names (builder/qemu/fresh_boot.py passes DJBAKE_BUILD_USER): the
# docker provider builds as root, so the fault "build user still present" plants one by this name.
BUILD_USER = "djbake-builder"
# A SHA-512 crypt hash (`openssl passwd -6 -salt plantedfault plantedfault`): a root password.
ROOT_HASH = "$6$plantedfault$mdrziGqHQtGzQ8ltqlmLt9CE35jfuCbGQgpiMtPR8kBOvx0GqmggoFZfrVOc0EN/2SDKYIlXgCpF04yFLOkew/"
# A pending security update, planted honestly: a local apt repository whose Release says it is the release's
# security suite (Debian's Origin, Label, Suite and Codename), carrying htop (a spec package) rebuilt with
# dpkg-deb from its installed files at a higher version. apt then sees a newer version in a -security
# suite, as it would the day after Debian's security team published one (unattended-upgrade --dry-run
# selects it too). Exits 0 only if `apt-get -s dist-upgrade` would install it from that suite.
PENDING_SECURITY = """\
r=/var/local/djbake-planted-security; p=htop; . /etc/os-release
v="$(dpkg-query -W -f '${Version}' $p)+djbake1"; a="$(dpkg-query -W -f '${Architecture}' $p)"
rm -rf "$r" && mkdir -p "$r/stage/DEBIAN" "$r/dists/$VERSION_CODENAME-security/main/binary-$a" "$r/pool"
dpkg-query -L $p | while read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then cp -a --parents "$f" "$r/stage"; fi; done
dpkg-query -W -f 'Package: ${Package}\\nVersion: '"$v"'\\nArchitecture: ${Architecture}\\nMaintainer: ${Maintainer}\\nDepends: ${Depends}\\nDescription: ${Description}\\n' $p > "$r/stage/DEBIAN/control"
dpkg-deb -Zgzip --build "$r/stage" "$r/pool/${p}_$a.deb" >/dev/null
P="$r/dists/$VERSION_CODENAME-security/main/binary-$a/Packages"
{ dpkg-deb -f "$r/pool/${p}_$a.deb"; echo "Filename: pool/${p}_$a.deb"; echo "Size: $(stat -c %s "$r/pool/${p}_$a.deb")"; echo "SHA256: $(sha256sum < "$r/pool/${p}_$a.deb" | cut -d' ' -f1)"; echo; } > "$P"
printf 'Origin: Debian\\nLabel: Debian-Security\\nSuite: stable-security\\nCodename: %s-security\\nVersion: %s\\nArchitectures: %s\\nComponents: main\\nSHA256:\\n %s %s main/binary-%s/Packages\\n' "$VERSION_CODENAME" "$VERSION_ID" "$a" "$(sha256sum < "$P" | cut -d' ' -f1)" "$(stat -c %s "$P")" "$a" > "$r/dists/$VERSION_CODENAME-security/Release"
echo "deb [trusted=yes] file:$r $VERSION_CODENAME-security main" > /etc/apt/sources.list.d/djbake-planted-security.list
apt-get update -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/djbake-planted-security.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/dev/null
apt-get -s dist-upgrade | grep -q "^Inst $p .*-security"
"""
WORKERS = 4
# What the default spec's docker image skips, by verifier run: no kernel of its own, no cloud-init, no Redis.
UNFAULTED_SKIPS = {
    "sealed": {"test_hygiene::test_cloud_init_present_on_vm_images"},
    "fresh-boot-a": {"test_firstboot::test_cloud_init_done", "test_services::test_redis_when_asked"},
    "fresh-boot-b": {"test_firstboot::test_cloud_init_done"},  # the per-VM checks only (gate.SECOND_BOOT)
}


@dataclass(frozen=True)
class Fault:
    what: str                  # the fault as a user would name it
    plant: str                 # shell, run as root in the container; must exit 0 only if the fault is in place
    fresh_boot: frozenset[str]  # checks (module::test) that must fail on a fresh boot
    sealed: frozenset[str] | None = None  # for a fault planted before boot: checks that fail in the sealed image
    before_boot: bool = False   # plant in a derived image (the fault must exist when systemd starts)


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


def _drop_in(unit: str, name: str, *settings: str) -> str:
    """Shell writing a systemd drop-in NAME.conf for UNIT (its [Service] or [Socket] section) and
    reloading systemd; the fault's own restart and proof follow it."""
    section = "Socket" if unit.endswith(".socket") else "Service"
    body = "".join(f"{line}\\n" for line in (f"[{section}]", *settings))
    return (f"mkdir -p /etc/systemd/system/{unit}.d && printf '{body}' > /etc/systemd/system/{unit}.d/{name}.conf"
            " && systemctl daemon-reload")


FAULTS: dict[str, Fault] = {
    "extra_port": Fault(
        "a service listening on a spare public port (8089)",
        "systemd-run --unit=djbake-fault-listener python3 -m http.server 8089 --bind 0.0.0.0"
        " && for i in $(seq 30); do ss -Htln 'sport = :8089' | grep -q . && exit 0; sleep 1; done; exit 1",
        _f("test_network::test_only_ssh_http_https_listen_on_public_addresses")),
    "firewall_accepts_tcp": Fault(
        "an nftables rule accepting every TCP port",
        "nft insert rule inet filter input meta l4proto tcp accept"
        " && nft list chain inet filter input | grep -q 'meta l4proto tcp accept'",
        _f("test_network::test_firewall_refuses_a_spare_port_from_outside")),
    "root_login": Fault(
        "sshd: PermitRootLogin yes",
        "sed -i 's/^PermitRootLogin .*/PermitRootLogin yes/' /etc/ssh/sshd_config.d/10-djbake.conf"
        " && sshd -T | grep -qx 'permitrootlogin yes'",
        _f("test_security::test_sshd_no_root_login_no_passwords")),
    "password_auth": Fault(
        "sshd: PasswordAuthentication yes",
        "sed -i 's/^PasswordAuthentication .*/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/10-djbake.conf"
        " && sshd -T | grep -qx 'passwordauthentication yes'",
        _f("test_security::test_sshd_no_root_login_no_passwords")),
    "ssh_keys_left": Fault(
        "a leftover authorized_keys and private key in root's home",
        "mkdir -p /root/.ssh && ssh-keygen -q -t ed25519 -N '' -C planted -f /root/.ssh/id_ed25519"
        " && cp /root/.ssh/id_ed25519.pub /root/.ssh/authorized_keys",
        _f("test_hygiene::test_booted_only_per_vm_secrets"),
        sealed=_f("test_hygiene::test_sealed_no_ssh_access_or_history",
                  "test_hygiene::test_sealed_no_secrets_or_private_keys"),
        before_boot=True),
    "env_world_readable": Fault(
        "/etc/djbake/app.env readable by everyone",
        "chmod 0644 /etc/djbake/app.env && test \"$(stat -c %a /etc/djbake/app.env)\" = 644",
        _f("test_files::test_owner_and_mode", "test_security::test_env_file_private")),
    "bytecode_gone": Fault(
        "the live release without its bytecode (workers compile Django at every start)",
        "find /srv/app/current/venv/ /srv/app/current/src/ -name __pycache__ -type d -prune -exec rm -rf {} +"
        " && ! find /srv/app/current/venv/lib/ -name '*.pyc' | grep -q .",
        _f("test_files::test_release_bytecode_compiled")),
    "fail2ban_bans_baked": Fault(
        "fail2ban's database left in the image (with the build's bans, restored at every start)",
        "mkdir -p /var/lib/fail2ban && cp /dev/null /var/lib/fail2ban/fail2ban.sqlite3"
        " && test -e /var/lib/fail2ban/fail2ban.sqlite3",
        _f(),
        sealed=_f("test_hygiene::test_sealed_no_fail2ban_bans"),
        before_boot=True),
    "debug_on": Fault(
        "Django's DEBUG on",
        "sed -i 's/^DEBUG = False$/DEBUG = True/' /srv/app/current/src/welcome/settings.py"
        " && grep -qx 'DEBUG = True' /srv/app/current/src/welcome/settings.py"
        " && systemctl restart gunicorn.service",
        _f("test_http::test_debug_off")),
    "app_not_preloaded": Fault(
        "gunicorn without preload_app (every worker imports the project itself)",
        "sed -i 's/^preload_app = True$/preload_app = False/' /etc/djbake/gunicorn.conf.py"
        " && grep -qx 'preload_app = False' /etc/djbake/gunicorn.conf.py && systemctl restart gunicorn.service"
        " && for i in $(seq 60); do curl -sf -o /dev/null -H 'Host: localhost' http://127.0.0.1/ && exit 0; sleep 1;"
        " done; exit 1",
        _f("test_services::test_gunicorn_workers_share_the_preloaded_app")),
    "app_as_root": Fault(
        "the app (gunicorn) running as root, with root's capabilities",
        # User=root alone no longer starts: the sandbox's empty capability set leaves root unable to
        # write where the django user may (gunicorn's control socket in its home).
        _drop_in("gunicorn.service", "zz-planted", "User=root", "Group=root", "CapabilityBoundingSet=~")
        + " && systemctl restart gunicorn.service"
        " && test \"$(ps -o user= -C gunicorn | sort -u)\" = root",
        _f("test_services::test_gunicorn_service_unit", "test_services::test_gunicorn_workers_run_as_django",
           "test_hardening::test_app_service_is_sandboxed")),
    "fail2ban_stopped": Fault(
        "fail2ban stopped",
        "systemctl stop fail2ban.service && ! systemctl is-active -q fail2ban.service",
        _f("test_services::test_services_enabled_and_running", "test_services::test_fail2ban_reads_the_journal",
           "test_services::test_fail2ban_bans_after_failed_logins")),
    "no_security_suite": Fault(
        "the security suite missing from apt's sources",
        "sed -i '/-security/d' /etc/apt/sources.list"
        " && ! apt-get indextargets --no-release-info --format '$(RELEASE)' | grep -q -- -security",
        _f("test_services::test_security_updates_configured",
           "test_services::test_unattended_upgrade_selects_the_security_origin",
           "test_services::test_no_pending_security_updates")),
    "failed_unit": Fault(
        "a failed systemd unit",
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/false\\n' > /etc/systemd/system/djbake-planted.service"
        " && systemctl daemon-reload && ! systemctl start djbake-planted.service"
        " && systemctl is-failed -q djbake-planted.service",
        _f("test_services::test_no_failed_units")),
    "root_password": Fault(
        "root with a password hash",
        f"usermod -p {shlex.quote(ROOT_HASH)} root && getent shadow root | grep -q '^root:\\$6\\$'",
        frozenset(),
        sealed=_f("test_hygiene::test_sealed_root_password_locked", "test_hygiene::test_sealed_no_password_hashes"),
        before_boot=True),
    "build_user_present": Fault(
        f"the build user ({BUILD_USER}) still present",
        f"useradd -m -s /bin/bash {BUILD_USER} && getent passwd {BUILD_USER}",
        _f("test_firstboot::test_build_user_removed"),
        sealed=frozenset(),
        before_boot=True),
    "apt_proxy_left": Fault(
        "the build's apt proxy setting left behind",
        # A build host's cache is gone on the user's VM: a proxy nothing answers on (refused at once).
        "echo 'Acquire::http::Proxy \"http://127.0.0.1:9\";' > /etc/apt/apt.conf.d/01djbake-proxy"
        " && apt-config dump Acquire::http::Proxy | grep -q 127.0.0.1:9",
        _f("test_hygiene::test_no_build_leftovers", "test_hygiene::test_booted_only_per_vm_secrets",
           "test_services::test_unattended_upgrade_selects_the_security_origin",
           "test_services::test_no_pending_security_updates")),
    "host_keys_not_made": Fault(
        "the host-key unit runs but makes no keys (its condition and enablement intact)",
        _drop_in("djbake-ssh-hostkeys.service", "zz-planted", "ExecStart=", "ExecStart=/bin/true")
        + " && systemctl is-enabled -q djbake-ssh-hostkeys.service",
        _f("test_security::test_host_keys_regenerated_when_missing")),
    "db_trusts_any_password": Fault(
        "PostgreSQL accepting any password over TCP (pg_hba trust)",
        "for f in /etc/postgresql/*/main/pg_hba.conf; do sed -i -E 's/(scram-sha-256|md5)$/trust/' \"$f\"; done"
        " && systemctl reload postgresql.service && sleep 2"
        " && PGPASSWORD=wrong psql -h localhost -U django -d django -c 'select 1' >/dev/null",
        _f("test_firstboot::test_database_role_uses_the_generated_password")),
    "code_writable": Fault(
        "a file of the code tree writable by the app's group",
        "chmod g+w /srv/app/current/src/manage.py && runuser -u django -- test -w /srv/app/current/src/manage.py",
        _f("test_files::test_code_not_writable_by_the_app")),
    "pending_security_update": Fault(
        "a security update pending (a newer htop in a -security suite)",
        PENDING_SECURITY,
        _f("test_services::test_no_pending_security_updates")),
    "backup_timer_off": Fault(
        "the nightly backup timer disabled",
        "systemctl disable --now djbake-backup.timer && ! systemctl is-enabled -q djbake-backup.timer",
        _f("test_backup::test_backup_timer_enabled")),
    # gunicorn, not nginx: its socket starts it again at the next request, so the suite's later checks
    # still reach the site (a dead nginx would fail every later HTTP check too).
    "no_restart_policy": Fault(
        "gunicorn not restarted after a crash (Restart=no)",
        _drop_in("gunicorn.service", "zz-planted-restart", "Restart=no")
        + " && test \"$(systemctl show -p Restart --value gunicorn.service)\" = no",
        _f("test_resilience::test_restart_policies", "test_resilience::test_services_come_back_after_kill_9")),
    "static_not_cached": Fault(
        "nginx's /static/ location without its cache headers (a deploy's rewrite lost them)",
        "sed -i '/expires 30d;/d; /Cache-Control \"public\"/d' /etc/nginx/djbake/app-files.conf"
        " && nginx -t 2>/dev/null && systemctl reload nginx.service && sleep 1"
        " && ! curl -sI -H 'Host: localhost' http://127.0.0.1/static/djbake/welcome.css | grep -qi '^cache-control:'",
        _f("test_http::test_static_file_served_by_nginx")),
    "media_scripts_typed": Fault(
        "uploaded scripts served with their own type instead of text/plain",
        "sed -i '/types { }/d; /default_type text\\/plain;/d' /etc/nginx/djbake/app-files.conf"
        " && ! grep -q 'default_type text/plain' /etc/nginx/djbake/app-files.conf"
        " && nginx -t 2>/dev/null && systemctl reload nginx.service && sleep 1",
        _f("test_http::test_media_served_as_files_never_executed")),
    "allowed_hosts_unrouted": Fault(
        "Django allowing a host name nginx does not route",
        "djbake-env set DJANGO_ALLOWED_HOSTS \"$(djbake-env get DJANGO_ALLOWED_HOSTS),unrouted.example\""
        " && djbake-env get DJANGO_ALLOWED_HOSTS | grep -q unrouted.example"
        " && ! grep -q unrouted.example /etc/nginx/djbake/server_names.conf",
        _f("test_firstboot::test_allowed_hosts_match_the_vm")),
    "nginx_version_shown": Fault(
        "nginx announcing its version (server_tokens on)",
        "sed -i 's/server_tokens off;/server_tokens on;/' /etc/nginx/nginx.conf /etc/nginx/sites-available/*.conf"
        " && nginx -t 2>/dev/null && systemctl reload nginx.service && sleep 1"
        " && curl -sI -H 'Host: localhost' http://127.0.0.1/ | grep -qi '^server: nginx/'",
        _f("test_security::test_nginx_hides_its_version")),
    "catch_all_answers": Fault(
        "nginx answering requests for other host names (the catch-all server returns 404, not 444)",
        "sed -i 's/return 444;/return 404;/' /etc/nginx/sites-available/django.conf"
        " && nginx -t 2>/dev/null && systemctl reload nginx.service && sleep 1"
        " && test \"$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.invalid' http://127.0.0.1/)\" = 404",
        _f("test_http::test_unknown_host_gets_444", "test_http::test_request_without_host_gets_444")),
    "firewall_not_at_boot": Fault(
        "the firewall not loaded at boot (nftables.service disabled)",
        "systemctl disable nftables.service && ! systemctl is-enabled -q nftables.service",
        _f("test_hygiene::test_firewall_enabled_for_every_boot", "test_network::test_firewall_loaded_at_boot",
           "test_services::test_services_enabled_and_running")),
    "time_sync_off": Fault(
        "time synchronisation disabled",
        "systemctl disable --now systemd-timesyncd.service && ! systemctl is-enabled -q systemd-timesyncd.service",
        _f("test_services::test_time_sync_enabled")),
    "logrotate_gone": Fault(
        "the app's logs not rotated (/etc/logrotate.d/django removed)",
        "rm /etc/logrotate.d/django && ! test -e /etc/logrotate.d/django",
        _f("test_services::test_logrotate_covers_app_logs", "test_hardening::test_app_logs_rotated")),
    "unattended_upgrades_off": Fault(
        "unattended upgrades switched off (APT::Periodic::Unattended-Upgrade \"0\")",
        "printf 'APT::Periodic::Unattended-Upgrade \"0\";\\n' > /etc/apt/apt.conf.d/99djbake-planted"
        " && apt-config dump APT::Periodic::Unattended-Upgrade | grep -q '\"0\"'",
        _f("test_services::test_unattended_upgrades_enabled")),
    "django_user_shell": Fault(
        "the app user given a login shell",
        "usermod -s /bin/bash django && getent passwd django | grep -q ':/bin/bash$'",
        _f("test_security::test_django_user_cannot_log_in")),
    "client_sets_proto": Fault(
        "nginx passing the client's X-Forwarded-Proto on (a client can claim HTTPS)",
        "sed -i 's/X-Forwarded-Proto \\$scheme;/X-Forwarded-Proto $http_x_forwarded_proto;/'"
        " /etc/nginx/sites-available/django.conf && grep -q 'Proto \\$http_x_forwarded_proto' "
        "/etc/nginx/sites-available/django.conf && nginx -t 2>/dev/null && systemctl reload nginx.service && sleep 1",
        _f("test_security::test_forwarded_proto_set_by_nginx_not_the_client")),
    "secret_key_copied": Fault(
        "a copy of SECRET_KEY outside app.env",
        "sed -n 's/^DJANGO_SECRET_KEY=//p' /etc/djbake/app.env > /var/lib/djbake/planted-copy"
        " && test -s /var/lib/djbake/planted-copy",
        _f("test_hygiene::test_secret_key_only_in_env_file")),
    "build_log_left": Fault(
        "a build log left in /var/log",
        "echo 'planted build output' > /var/log/djbake-planted.log && test -s /var/log/djbake-planted.log",
        frozenset(),
        sealed=_f("test_hygiene::test_sealed_logs_and_apt_lists_empty"),
        before_boot=True),
    "secret_key_baked": Fault(
        "a SECRET_KEY baked into the image's app.env (first boot keeps it: every VM would share it)",
        "djbake-env set DJANGO_SECRET_KEY baked-into-the-image-0123456789abcdefghijklmnopqrstuvwxyz"
        " && djbake-env get DJANGO_SECRET_KEY | grep -q baked-into-the-image",
        frozenset(),   # one boot cannot tell a kept key from a made one: compare_boots' two boots do
        sealed=_f("test_hygiene::test_sealed_env_file_has_no_secrets"),
        before_boot=True),
    "random_seed_baked": Fault(
        "systemd's random seed baked into the image (every VM starts from the same seed)",
        "head -c 512 /dev/urandom > /var/lib/systemd/random-seed && test -s /var/lib/systemd/random-seed",
        frozenset(),
        sealed=_f("test_hygiene::test_sealed_identity_removed"),
        before_boot=True),
    "package_missing": Fault(
        "a package the spec asks for missing (htop removed)",
        "dpkg -r htop >/dev/null && ! dpkg-query -W -f '${db:Status-Abbrev}' htop 2>/dev/null | grep -q '^ii'",
        _f("test_packages::test_stack_packages_installed")),
    "nodoc_rule_gone": Fault(
        "dpkg's documentation exclusions removed (the next install brings docs back)",
        "rm /etc/dpkg/dpkg.cfg.d/01-djbake-nodoc && ! test -e /etc/dpkg/dpkg.cfg.d/01-djbake-nodoc",
        _f("test_packages::test_no_documentation_installed")),
    "copyright_removed": Fault(
        "a package's copyright file deleted",
        "rm /usr/share/doc/curl/copyright && ! test -e /usr/share/doc/curl/copyright",
        _f("test_packages::test_licences_stay")),
    "apt_no_retries": Fault(
        "apt giving up on the first transient error (Acquire::Retries 0)",
        "printf 'Acquire::Retries \"0\";\\n' > /etc/apt/apt.conf.d/99zzz-djbake-planted-retries"
        " && apt-config dump Acquire::Retries | grep -q '\"0\"'",
        _f("test_packages::test_apt_retries_transient_errors")),
    "backup_broken": Fault(
        "the backup command unable to run (djbake-backup not executable; its timer still enabled)",
        "chmod a-x /usr/local/sbin/djbake-backup && ! test -x /usr/local/sbin/djbake-backup",
        _f("test_backup::test_backup_restore_round_trip", "test_backup::test_backup_retention_keeps_the_newest")),
    "env_key_missing": Fault(
        "app.env without DJANGO_DEBUG (the app falls back to its own default)",
        "sed -i '/^DJANGO_DEBUG=/d' /etc/djbake/app.env && ! grep -q '^DJANGO_DEBUG=' /etc/djbake/app.env",
        _f("test_files::test_env_file_names_the_app")),
    "unit_file_gone": Fault(
        "the unit that removes the build user deleted",
        "rm /etc/systemd/system/djbake-remove-build-user.service && systemctl daemon-reload"
        " && ! test -e /etc/systemd/system/djbake-remove-build-user.service",
        _f("test_files::test_units_installed")),
    "app_unsandboxed": Fault(
        "gunicorn's sandbox undone by a drop-in (capabilities back, no system-call filter, kernel unprotected)",
        _drop_in("gunicorn.service", "zz-unsandboxed", "CapabilityBoundingSet=~", "SystemCallFilter=",
                 "NoNewPrivileges=no", "RestrictNamespaces=no", "ProtectKernelTunables=no", "ProtectKernelModules=no",
                 "PrivateDevices=no", "RestrictSUIDSGID=no", "LockPersonality=no")
        + " && systemctl restart gunicorn.service"
        " && ! grep -qx 'CapBnd:\\s*0*' /proc/$(systemctl show -p MainPID --value gunicorn.service)/status",
        _f("test_hardening::test_app_service_is_sandboxed")),
    "socket_world_open": Fault(
        "gunicorn's socket open to every local user (SocketMode=0666)",
        _drop_in("gunicorn.socket", "zz-planted", "SocketMode=0666")
        + " && test \"$(systemctl show -p SocketMode --value gunicorn.socket)\" = 0666",
        _f("test_services::test_gunicorn_socket_unit")),
    "sshd_drop_in_first": Fault(
        "an sshd drop-in read before djbake's (sshd takes the first value it reads)",
        "echo '# planted: read before 10-djbake.conf' > /etc/ssh/sshd_config.d/01-planted.conf"
        " && test -e /etc/ssh/sshd_config.d/01-planted.conf",
        _f("test_security::test_sshd_hardening_read_before_cloud_init")),
    "firstboot_stamp_gone": Fault(
        "the first-boot stamp missing (the next boot would make new secrets)",
        "rm /var/lib/djbake/firstboot.done && ! test -e /var/lib/djbake/firstboot.done",
        _f("test_services::test_firstboot_unit_ran")),
    "snakeoil_key_gone": Fault(
        "no snakeoil key after first boot (djbake-snakeoil.service did not make this VM's pair)",
        "rm /etc/ssl/private/ssl-cert-snakeoil.key && ! test -e /etc/ssl/private/ssl-cert-snakeoil.key",
        _f("test_firstboot::test_snakeoil_pair_made_for_this_vm")),
    "image_not_activated": Fault(
        "an image sealed without its release's Django steps recorded (first boot runs djbake-deploy)",
        "rm /var/lib/djbake/activated && ! test -e /var/lib/djbake/activated",
        _f("test_firstboot::test_first_boot_leaves_the_django_steps_to_the_seal"),
        sealed=frozenset(),
        before_boot=True),
    "secret_key_insecure": Fault(
        "a short, well-known SECRET_KEY in app.env",
        "sed -i 's/^DJANGO_SECRET_KEY=.*/DJANGO_SECRET_KEY=django-insecure-planted/' /etc/djbake/app.env"
        " && grep -qx 'DJANGO_SECRET_KEY=django-insecure-planted' /etc/djbake/app.env",
        _f("test_firstboot::test_secret_key_generated")),
    "uv_missing": Fault(
        "uv missing (djbake-deploy could not install a release)",
        "rm \"$(command -v uv)\" && ! command -v uv",
        _f("test_packages::test_uv_installs_releases")),
    "certificate_left": Fault(
        "a certificate directory left in the image (/etc/letsencrypt/live)",
        "mkdir -p /etc/letsencrypt/live/planted.example && echo planted > /etc/letsencrypt/live/planted.example/README",
        _f("test_services::test_certbot_installed_without_certificates")),
}

# The image suite's modules whose every check a planted fault must reach, or UNREACHED say why not
# (test_network and test_hardening are outside this table: another change owns them).
MODULES = ("test_packages", "test_backup", "test_resilience", "test_services", "test_files", "test_hygiene",
           "test_http", "test_firstboot", "test_security")
_CASCADE = "any fault that stops the site answering fails it together with most HTTP, backup and resilience checks, "
_QEMU = "skipped on docker for the default spec (no cloud-init in a container): "
UNREACHED: dict[str, str] = {
    "test_packages::test_build_tools_only_when_the_spec_keeps_them":
        "not planted: a compiler must be installed from the archive (~60 MB of gcc and libc6-dev) for an honest fault",
    "test_packages::test_virtualenv_has_the_pinned_versions":
        "not planted: another release must be downloaded from PyPI into the venv (no network step in this test)",
    "test_packages::test_virtualenv_imports_django_and_psycopg":
        _CASCADE + "so no group can name it alone (the app cannot start without these imports)",
    "test_services::test_time_sync_active": "marked `kernel`: QEMU only (a container shares the host's clock)",
    "test_services::test_redis_when_asked": "skipped for the default spec (no Redis)",
    "test_services::test_postgresql_is_local_or_client_only":
        "a stopped PostgreSQL fails the database, HTTP and backup checks too; its `database: none` branch passes in "
        "test_docker_loop's image without a database",
    "test_files::test_welcome_or_deployed_project_present": _CASCADE + "(an empty release serves nothing)",
    "test_files::test_build_env_recorded":
        "a missing or partial /etc/djbake/build.env fails the facts fixture, hence most of the suite, not one check",
    "test_hygiene::test_cloud_init_present_on_vm_images": _QEMU + "QEMU only",
    "test_firstboot::test_cloud_init_done": _QEMU + "QEMU only",
    "test_http::test_nginx_config_valid":
        "a config nginx -t refuses also keeps nginx down after test_resilience's kill -9 (a cascade); planted instead "
        "by test_docker_loop's broken-script test, where the in-build gate fails naming this check",
    "test_http::test_django_answers_on_localhost": _CASCADE + "(the baseline the other HTTP checks build on)",
    "test_http::test_health_url": _CASCADE + "(the database half: a stopped PostgreSQL, same cascade)",
    "test_http::test_django_answers_on_the_vm_address": _CASCADE + "(the baseline the other HTTP checks build on)",
    "test_firstboot::test_swap_active":
        "in a container swapon shows the host's swap: a swap fault is meaningful under QEMU only",
    "test_firstboot::test_host_keys_and_machine_id_exist":
        "records what the two-boot comparison compares; the same identity on two boots is caught by compare_boots "
        "(unit-tested in tests/test_gate.py), which a one-boot container here does not run",
    "test_firstboot::test_record_secret_hashes":
        "records hashes for compare_boots and asserts first boot made the secrets the spec needs; deleting one from "
        "app.env after boot cascades once test_resilience restarts gunicorn without it",
}


# The containers of `make test`: no two faults of a group name the same check, and a group is planted
# either all before first boot (one derived image) or all after it. Faults that touch the same thing
# (sshd's two settings; a listener and the firewall) are in different groups.
GROUPS: dict[str, tuple[str, ...]] = {
    "group-a": ("extra_port", "root_login", "env_world_readable", "debug_on", "no_security_suite",
                "backup_timer_off", "nginx_version_shown", "client_sets_proto", "secret_key_copied",
                "nodoc_rule_gone", "apt_no_retries", "unit_file_gone", "socket_world_open",
                "uv_missing", "static_not_cached", "app_unsandboxed"),
    "group-b": ("firewall_accepts_tcp", "password_auth", "app_as_root", "failed_unit", "host_keys_not_made",
                "pending_security_update", "time_sync_off", "firewall_not_at_boot", "django_user_shell",
                "copyright_removed", "backup_broken", "secret_key_insecure",
                "certificate_left", "media_scripts_typed", "app_not_preloaded"),
    "group-c": ("fail2ban_stopped", "apt_proxy_left", "db_trusts_any_password", "code_writable",
                "no_restart_policy", "logrotate_gone", "catch_all_answers", "unattended_upgrades_off",
                "package_missing", "env_key_missing", "sshd_drop_in_first", "firstboot_stamp_gone",
                "allowed_hosts_unrouted", "snakeoil_key_gone", "bytecode_gone"),
    "group-d": ("ssh_keys_left", "root_password", "build_user_present", "build_log_left", "random_seed_baked",
                "secret_key_baked", "image_not_activated", "fail2ban_bans_baked"),
}


def planted_sets() -> dict[str, tuple[str, ...]]:
    """What each container carries: GROUPS, or every fault alone with DJBAKE_PLANTED_FAULTS=each."""
    if os.environ.get("DJBAKE_PLANTED_FAULTS") == "each":
        return {name: (name,) for name in FAULTS}
    return GROUPS


def combined(names: tuple[str, ...]) -> Fault:
    """The faults of one container as one: planted in order, failing the union of their checks."""
    faults = [FAULTS[n] for n in names]
    sealed = [f.sealed for f in faults if f.sealed is not None]
    return Fault(" + ".join(f.what for f in faults), " && ".join(f"( {f.plant} )" for f in faults),
                 frozenset().union(*(f.fresh_boot for f in faults)),
                 frozenset().union(*sealed) if sealed else None, faults[0].before_boot)


@dataclass
class Outcome:
    fault: str
    phase: str
    result: gate.SuiteResult
    failed: set[str] = field(default_factory=set)


def failed_checks(result: gate.SuiteResult) -> set[str]:
    """module::test of every failed check (parse_junit's ids carry a ' (reason)' tail)."""
    return {f.split(" (", 1)[0] for f in result.failed}


def _exec(container, script: str) -> None:
    code, out = container.exec_run(["sh", "-c", f"set -e; {script}"])
    if code != 0:
        raise AssertionError(f"could not plant the fault ({code}): {script}\n{out.decode(errors='replace')}")


def derive(client, image: str, name: str, plant: str) -> str:
    """An image made from image with plant run in it, its entrypoint kept: a fault present at first boot."""
    config = client.images.get(image).attrs["Config"]
    box = client.containers.run(image, ["sleep", "infinity"], entrypoint=[], detach=True,
                                labels={docker_base.LABEL: f"planted-{name}"})
    try:
        _exec(box, plant)
        tag = f"djbake-planted-{name}-{uuid.uuid4().hex[:8]}"
        box.commit(repository=tag, tag="latest",
                   changes=[f"ENTRYPOINT {json.dumps(config['Entrypoint'])}", "CMD []"])
    finally:
        box.remove(force=True)
    return f"{tag}:latest"


def unfaulted_problems(verify_dir: Path) -> list[str]:
    """The image without a planted fault is the docker verifier's own runs of it (builder/providers/docker.py,
    this session's build): every check passed, and exactly the skips a docker container must have."""
    problems = []
    for run, skips in UNFAULTED_SKIPS.items():
        junit = verify_dir / f"{run}.junit.xml"
        passed, _, failed = gate.parse_junit(junit)
        skipped = {check for check, _ in gate.skipped_checks(junit)}
        if not passed or failed or skipped != skips:
            problems.append(f"unfaulted {run}: {passed} passed, failed {failed}, skipped {sorted(skipped)} "
                            f"(expected {sorted(skips)}; {junit})")
    return problems


def run_fault(image: str, name: str, fault: Fault | None, log_dir: Path) -> list[Outcome]:
    """The suites the docker verifier runs, on image with fault planted (None: the image as built)."""
    client = docker_client.connect()  # one per thread: a client's HTTP session is not shared across threads
    env = {"DJBAKE_BUILD_USER": BUILD_USER}
    outcomes = []
    derived = derive(client, image, name, fault.plant) if fault and fault.before_boot else None
    try:
        target_image = derived or image
        if fault is None or fault.before_boot:
            sealed = client.containers.run(target_image, ["sleep", "infinity"], entrypoint=[], detach=True,
                                           labels={docker_base.LABEL: f"planted-{name}-sealed"})
            try:
                r = gate.run_suite(gate.Target(container=sealed.id), "sealed", env, log_dir, name=f"{name}-sealed")
            finally:
                sealed.remove(force=True)
            outcomes.append(Outcome(name, "sealed", r, failed_checks(r)))
        box = docker_base.start(target_image, f"planted-{name}", client)
        try:
            if fault and not fault.before_boot:
                _exec(box, fault.plant)
            r = gate.run_suite(gate.Target(container=box.id), None, env, log_dir, name=f"{name}-fresh-boot",
                               fresh_boot=True)
        finally:
            docker_base.stop(box)
        outcomes.append(Outcome(name, "fresh_boot", r, failed_checks(r)))
    finally:
        if derived:
            client.images.remove(derived, force=True)
    return outcomes


@pytest.mark.docker
def test_every_planted_fault_fails_exactly_its_checks(engine, built_image, tmp_path):
    proc, build_dir = built_image
    if proc.returncode != 0:
        pytest.skip("the default image did not build")
    image = built_id(build_dir)
    problems = unfaulted_problems(build_dir / "verify")
    started = time.monotonic()
    sets = planted_sets()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {name: pool.submit(run_fault, image, name, combined(names), tmp_path) for name, names in sets.items()}
        outcomes = {name: f.result() for name, f in futures.items()}
    print(f"planted faults: {len(FAULTS)} faults in {len(sets)} containers, {WORKERS} at a time, "
          f"in {time.monotonic() - started:.0f} s")

    for name, runs in outcomes.items():
        fault = combined(sets[name])
        for o in runs:
            want = set(fault.fresh_boot if o.phase == "fresh_boot" else fault.sealed)
            print(f"{name} {o.phase}: {o.result.summary}")
            if o.result.passed == 0 or o.result.returncode not in (0, 1):
                problems.append(f"{name} {o.phase}: the suite did not run ({o.result.summary})")
            elif o.failed != want:
                problems.append(f"{name} {o.phase}: failed {sorted(o.failed)}, expected {sorted(want)} "
                                f"(log {o.result.log})")
    assert not problems, "\n".join(problems)


def faults_table() -> str:
    """The FAULTS table as the markdown docs/verification.md carries."""
    rows = ["| fault | planted | checks that must fail (fresh boot; sealed image) |", "|---|---|---|"]
    for name, f in FAULTS.items():
        checks = ", ".join(f"`{c}`" for c in sorted(f.fresh_boot)) or "none"
        if f.sealed is not None:
            checks += "; sealed: " + (", ".join(f"`{c}`" for c in sorted(f.sealed)) or "none")
        when = "in a derived image, before first boot" if f.before_boot else "by `docker exec` after boot"
        rows.append(f"| {f.what} (`{name}`) | {when} | {checks} |")
    return "\n".join(rows)


def image_checks() -> list[str]:
    """module::test of every check in MODULES, in file order."""
    checks = []
    for module in MODULES:
        source = (ROOT / "tests" / "image" / f"{module}.py").read_text()
        checks += [f"{module}::{name}" for name in re.findall(r"^def (test_\w+)", source, re.M)]
    return checks


def reaching_faults() -> dict[str, list[str]]:
    """check -> the faults that name it (fresh boot or sealed)."""
    reached: dict[str, list[str]] = {}
    for name, f in FAULTS.items():
        for check in sorted(f.fresh_boot | (f.sealed or frozenset())):
            reached.setdefault(check, []).append(name)
    return reached


def checks_table() -> str:
    """Every check of MODULES -> the planted faults that fail it, or why none does."""
    reached = reaching_faults()
    rows = ["| check | failed by (planted fault) or why no fault reaches it |", "|---|---|"]
    for check in image_checks():
        cell = ", ".join(f"`{n}`" for n in reached.get(check, ())) or "none: " + UNREACHED.get(check, "?")
        rows.append(f"| `{check}` | {cell} |")
    return "\n".join(rows)


def docs_section() -> str:
    return (f"{DOC_BEGIN}\n{faults_table()}\n\nEvery check of {', '.join(f'`{m}`' for m in MODULES)} "
            f"and the faults that fail it:\n\n{checks_table()}\n{DOC_END}")


def test_docs_table_is_current():
    text = DOC.read_text()
    found = re.search(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), text, re.S)
    assert found and found.group(0) == docs_section(), "run `python -m tests.test_planted_faults` and commit"


def test_groups_plant_every_fault_once_with_disjoint_checks():
    """A group's union of failures says which fault each failing check belongs to only if no check is
    named twice in it; one derived image carries a group only if all of it is planted before boot."""
    grouped = [n for names in GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(FAULTS), "every fault in exactly one group"
    for group, names in GROUPS.items():
        assert len({FAULTS[n].before_boot for n in names}) == 1, group
        for phase in ("fresh_boot", "sealed"):
            named = [c for n in names for c in (getattr(FAULTS[n], phase) or ())]
            assert len(named) == len(set(named)), (group, phase, named)


def test_every_check_is_reached_or_says_why():
    """A check no planted fault makes fail is strengthened, deleted, or has its reason in UNREACHED."""
    checks, reached = image_checks(), reaching_faults()
    assert not [c for c in reached if c.split("::")[0] in MODULES and c not in checks], "a fault names no such check"
    unexplained = [c for c in checks if c not in reached and c not in UNREACHED]
    assert not unexplained, f"reached by no fault and no reason given: {unexplained}"
    stale = [c for c in UNREACHED if c in reached or c not in checks]
    assert not stale, f"UNREACHED names a check a fault reaches, or one that does not exist: {stale}"


def test_every_fault_names_a_check():
    """A fault no check notices is a gap in the suite, not a row for this table."""
    empty = [n for n, f in FAULTS.items() if not f.fresh_boot and not f.sealed]
    assert not empty, empty


if __name__ == "__main__":
    content = DOC.read_text()
    section = docs_section()
    pattern = re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END)
    DOC.write_text(re.sub(pattern, lambda _: section, content, flags=re.S) if re.search(pattern, content, re.S)
                   else content.rstrip("\n") + "\n\n" + section + "\n")
