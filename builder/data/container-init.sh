#!/bin/sh
# PID 1 of djbake's docker images of an OS whose systemd needs cgroup v2
# (systemd 258 and later dropped cgroup v1). Installed as
# /usr/local/sbin/djbake-init by builder/docker_base.py. On a host whose
# Docker gives the container cgroup v2 it is plain /sbin/init. On a cgroup v1
# (hybrid) host it moves itself into a cgroup of its own under the
# container's cgroup in the host's unified hierarchy, enters a new cgroup
# namespace rooted there, and mounts cgroup2 on /sys/fs/cgroup: systemd then
# manages only this container's processes, never the host's or another
# container's.
set -eu
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
    exec /sbin/init "$@"
fi
mine=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ -n "$mine" ] || { echo "djbake-init: this host has no unified cgroup hierarchy (cgroup v2)" >&2; exit 1; }
mkdir -p /run/djbake-cgroup
mount -t cgroup2 cgroup2 /run/djbake-cgroup
own="/run/djbake-cgroup${mine%/}/djbake-init"
mkdir -p "$own"
echo $$ > "$own/cgroup.procs"
umount /run/djbake-cgroup
rmdir /run/djbake-cgroup
# shellcheck disable=SC2016  # expanded by the inner shell
exec unshare --cgroup /bin/sh -c 'umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
exec /sbin/init "$@"' djbake-init "$@"
