#!/bin/sh
# Turns the docker base (Debian 12, systemd) into the stand-in for EC2
# instances: sshd, curl, and the small part of cloud-init an AMI's first boot
# needs (boot.sh). Runs once, when the stand-in image is built.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends openssh-server curl sudo
# Host keys are made at each boot (boot.sh), as cloud-init does on EC2.
rm -f /etc/ssh/ssh_host_*
install -m 0755 /tmp/standin/instance-keys.sh /usr/local/sbin/djbake-instance-keys
install -m 0755 /tmp/standin/boot.sh /usr/local/sbin/djbake-standin-boot
install -m 0644 /tmp/standin/standin-boot.service /etc/systemd/system/standin-boot.service
# Where cloud-init's own drop-in goes: after the image's hardening (10-djbake.conf),
# which the suite checks is read first.
install -m 0644 /tmp/standin/sshd.conf /etc/ssh/sshd_config.d/50-standin.conf
systemctl enable standin-boot.service ssh.service
apt-get clean
rm -rf /var/lib/apt/lists/*
