#!/usr/bin/env bash
# sshd hardening: no root login, no passwords, strong algorithms only, the
# login banner (/etc/issue.net, written by harden.sh); host keys generated per VM.
# Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

apt_install openssh-server
put ssh/10-djbake.conf /etc/ssh/sshd_config.d/10-djbake.conf 0644
# Post-quantum ML-KEM first where this OpenSSH has it (9.9 and later); the
# file's list is the one every supported release knows. (grep reads it all:
# under pipefail an early exit would fail ssh with SIGPIPE.)
if ssh -Q kex | grep -x mlkem768x25519-sha256 >/dev/null; then
    sed -i 's/^KexAlgorithms /&mlkem768x25519-sha256,/' /etc/ssh/sshd_config.d/10-djbake.conf
fi
grep -Eq '^Include /etc/ssh/sshd_config.d/\*\.conf' /etc/ssh/sshd_config \
    || die "sshd_config does not include sshd_config.d: the hardening would be ignored"
put systemd/djbake-ssh-hostkeys.service /etc/systemd/system/djbake-ssh-hostkeys.service 0644
daemon_reload
# Ubuntu (22.10 and later) starts sshd from ssh.socket, whose port comes from a
# generator, not from sshd_config: from the next boot on, one sshd started as
# a service, as on Debian. (The socket is not stopped now: the build may be
# connected through it.)
if systemctl cat ssh.socket >/dev/null 2>&1; then
    systemctl disable ssh.socket
fi
systemctl enable djbake-ssh-hostkeys.service ssh.service
ssh-keygen -A >/dev/null   # sshd -t needs host keys; seal.sh removes them again
# sshd's privilege separation directory; ssh.service makes it (RuntimeDirectory)
# but sshd -t wants it even when the service has not run yet (socket activation).
install -d -m 0755 /run/sshd
sshd -t
# sshd is deliberately not restarted: on providers that build as root the
# in-build gate connects as root over a new SSH connection, which the new
# config would refuse. The running sshd keeps the old config until the
# image's first boot; `sshd -T` (the gate's check) reads the new one.
# Where nothing started it yet (Ubuntu's socket activation, no SSH connection
# in a container build), start it: no connection is there to lock out.
if systemd_running && ! systemctl is-active --quiet ssh.service; then
    systemctl start ssh.service
fi
