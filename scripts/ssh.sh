#!/usr/bin/env bash
# sshd hardening: no root login, no passwords; host keys generated per VM.
# Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install openssh-server
put ssh/10-djbake.conf /etc/ssh/sshd_config.d/10-djbake.conf 0644
grep -Eq '^Include /etc/ssh/sshd_config.d/\*\.conf' /etc/ssh/sshd_config \
    || die "sshd_config does not include sshd_config.d: the hardening would be ignored"
put systemd/djbake-ssh-hostkeys.service /etc/systemd/system/djbake-ssh-hostkeys.service 0644
daemon_reload
systemctl enable djbake-ssh-hostkeys.service ssh.service
ssh-keygen -A >/dev/null   # sshd -t needs host keys; seal.sh removes them again
sshd -t
# sshd is deliberately not restarted: on providers that build as root the
# in-build gate connects as root over a new SSH connection, which the new
# config would refuse. The running sshd keeps the old config until the
# image's first boot; `sshd -T` (the gate's check) reads the new one.
