#!/usr/bin/env bash
# Host hardening beyond each service's own script (docs/security.md):
# kernel and network parameters, unused kernel modules refused, no core
# dumps, a login banner, umask 027 for login shells, password quality, sudo
# defaults, a capped journal, and
# restart-on-failure for the services whose distribution units do not
# restart. Runs after nginx, PostgreSQL and Redis are installed (in the
# stack layer, builder/bake/stack.py), so the restart drop-ins find them.
# Inputs: none.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# kmod gives modprobe, which reads the blacklist; the base may lack it (docker).
apt_install kmod procps

# Named to sort last: systemd-sysctl applies every sysctl.d file in name order
# across directories, and Debian 12 / Ubuntu 22.04-24.04 ship
# 99-protect-links.conf (fs.protected_fifos = 1), which a 90-* file lost to.
rm -f /etc/sysctl.d/90-djbake-hardening.conf
put sysctl/99-zz-djbake-hardening.conf /etc/sysctl.d/99-zz-djbake-hardening.conf 0644
put modprobe/djbake-blacklist.conf /etc/modprobe.d/djbake-blacklist.conf 0644
# A container shares its host's kernel: systemd-sysctl skips it there
# (/proc/sys is read-only) and it applies at the VM's next boot. In a VM,
# now, so the in-build gate sees the values.
if ! in_container && systemd_running; then
    systemctl restart systemd-sysctl.service
fi

# Core dumps: none from services (systemd), none from login sessions
# (pam_limits), nothing kept where systemd-coredump is installed.
put limits/90-djbake-nocore.conf /etc/security/limits.d/90-djbake-nocore.conf 0644
put systemd/system-nocore.conf /etc/systemd/system.conf.d/90-djbake-nocore.conf 0644
put systemd/coredump-off.conf /etc/systemd/coredump.conf.d/90-djbake.conf 0644

# The login banner, for the console (issue) and SSH (issue.net, sshd's Banner).
put login/issue /etc/issue 0644
put login/issue /etc/issue.net 0644
put login/umask.sh /etc/profile.d/djbake-umask.sh 0644
put login/timeout.sh /etc/profile.d/djbake-timeout.sh 0644

# Password quality for any password an admin sets (the image's accounts have
# none): libpam-pwquality adds itself to common-password (pam-auth-update,
# retry=3); cracklib-runtime gives its dictionary check a dictionary.
apt_install libpam-pwquality cracklib-runtime
put login/pwquality.conf /etc/security/pwquality.conf 0644

# sudo: ignore_dot and use_pty; its drop-in directory closed to others (0750,
# OpenSCAP's directory_permissions_etc_sudoersd). visudo checks the whole
# policy before the build goes on: a broken sudoers would lock admins out.
if command -v sudo >/dev/null 2>&1; then
    put sudo/djbake-defaults /etc/sudoers.d/djbake-defaults 0440
    chmod 0750 /etc/sudoers.d
    visudo -c -q
else
    rm -f /etc/sudoers.d/djbake-defaults
fi

# Closed to other users (CIS Level 1, Lynis FILE-7524 and HOME-9304): sshd's
# configuration, cron's tables and directories, PostgreSQL's home (its data
# directory is 0700 already; clients use the socket in /run/postgresql).
for path in /etc/ssh/sshd_config /etc/crontab; do
    [ ! -e "$path" ] || chmod 0600 "$path"
done
for path in /etc/cron.d /etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly /etc/cron.yearly; do
    [ ! -d "$path" ] || chmod 0700 "$path"
done
[ ! -d /var/lib/postgresql ] || chmod 0750 /var/lib/postgresql
# Shell start-up files readable by their owner and group only (ANSSI BP-028,
# file_permission_user_init_files: at most 0740): in /etc/skel, for accounts
# made later (cloud-init's default user), and in the login users' homes now
# (the build user's, which the in-build gate checks).
startup_homes() {
    echo /etc/skel
    getent passwd | awk -F: '$3 >= 1000 && $3 != 65534 {print $6}'
}
startup_homes | while read -r home; do
    [ -d "$home" ] || continue
    find "$home" -maxdepth 1 -type f \( -name .bashrc -o -name .profile -o -name .bash_login \
        -o -name .bash_profile -o -name .bash_logout -o -name .zshrc -o -name .cshrc \) \
        -exec chmod go-wx,o-r {} +
done

# auditd with a small rule set (scripts/files/audit/djbake.rules: accounts,
# sudoers and sudo's use, sshd, PAM, firewall, sysctl, kernel modules;
# nothing on hot paths).
# Skipped in containers, which have no audit interface (drop-in condition):
# the drop-in goes in before the package, whose postinst starts the unit; a
# start that failed there would stay a failed unit in the container.
# auditd 4 (Debian 13) loads the rules in a unit of its own, audit-rules.service.
for unit in auditd audit-rules; do
    put systemd/auditd-vm-only.conf "/etc/systemd/system/$unit.service.d/90-djbake-vm-only.conf" 0644
done
daemon_reload
apt_install auditd
put audit/djbake.rules /etc/audit/rules.d/djbake.rules 0640
if ! in_container && systemd_running; then
    # Debian's unit refuses a manual stop (RefuseManualStop), so no restart:
    # start it if needed and load the rules into the kernel.
    systemctl enable --now auditd.service >/dev/null 2>&1
    augenrules --load >/dev/null
fi

# AppArmor (Lynis MACF-6208): Debian's and Ubuntu's kernels have it on by
# default, but a minimal base (mmdebstrap, docker) lacks the package that
# loads the profiles packages ship; the clouds' own images have it. Its unit
# loads them at every boot, in enforce mode unless a profile says otherwise.
# In a container it loads nothing (no policy of the container's own) and
# succeeds.
apt_install apparmor

# /dev/shm without set-uid, devices or executables (CIS Level 1; PostgreSQL's
# dynamic shared memory and Python's semaphores only map it). VMs only: in a
# container /dev/shm is the engine's and fstab is not applied.
if ! in_container; then
    sed -i '\#^tmpfs[[:space:]]\+/dev/shm[[:space:]]#d' /etc/fstab
    echo 'tmpfs /dev/shm tmpfs defaults,nosuid,nodev,noexec 0 0' >>/etc/fstab
    if systemd_running; then
        mount -o remount,nosuid,nodev,noexec /dev/shm
    fi
fi

# The journal: capped, so a busy site cannot fill the disk with it.
put systemd/journald-cap.conf /etc/systemd/journald.conf.d/90-djbake.conf 0644

# Come back after a crash: gunicorn.service restarts by its own unit; the
# distributions' nginx, PostgreSQL (one unit per cluster) and Redis units
# do not (Redis does on Debian; the drop-in makes it the same everywhere).
for unit in nginx.service postgresql@.service redis-server.service; do
    dropin=/etc/systemd/system/$unit.d/90-djbake-restart.conf
    if [ -n "$(systemctl list-unit-files --no-legend "$unit" 2>/dev/null)" ]; then
        put systemd/restart-on-failure.conf "$dropin" 0644
    else
        rm -f "$dropin"
    fi
done

if systemd_running; then
    # New manager defaults (DefaultLimitCORE) need a re-exec; the journal cap a restart.
    systemctl daemon-reexec
    systemctl restart systemd-journald.service
fi
