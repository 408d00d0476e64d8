#!/bin/sh
# Runs inside the chroot of the bootstrapped Debian base (builder/qemu/base_image.py)
# after mmdebstrap, with the root filesystem mounted as / and the disk at
# $DJBAKE_DISK. It turns a bare rootfs into what a cloud image is: it boots
# from its own disk, gets an address by DHCP, and takes users and keys from
# cloud-init (NoCloud). Nothing unique or secret is left in it.
set -eu

: "${DJBAKE_DISK:?}" "${DJBAKE_ROOT_UUID:?}"

# Networking: systemd-networkd with DHCP on any Ethernet, resolved for DNS.
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/80-djbake-dhcp.network <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
systemctl enable systemd-networkd.service systemd-resolved.service
ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# resolved answers LLMNR/mDNS on every address by default (port 5355): a
# server listens on 22/80/443 only.
mkdir -p /etc/systemd/resolved.conf.d
printf '[Resolve]\nLLMNR=no\nMulticastDNS=no\n' > /etc/systemd/resolved.conf.d/djbake.conf
# mmdebstrap's own apt options were for bootstrapping only.
rm -f /etc/apt/apt.conf.d/99mmdebstrap
# unattended-upgrades, when the spec's stack packages brought it, wrote
# 20auto-upgrades: apt's timers would then catch up at the build VM's boot and
# race the build's own dpkg. base.sh removes it too; upgrades.sh switches it on.
rm -f /etc/apt/apt.conf.d/20auto-upgrades

# cloud-init: NoCloud only (no slow probing of cloud metadata services),
# networking stays with networkd above, and apt's sources stay those the
# base was built from (Ubuntu's cloud-init rewrites them from a template
# otherwise, with a release name it cannot find in a minimal system).
cat > /etc/cloud/cloud.cfg.d/90-djbake-datasource.cfg <<'EOF'
datasource_list: [NoCloud, None]
network: {config: disabled}
locale: C.UTF-8
apt: {preserve_sources_list: true}
EOF
echo LANG=C.UTF-8 > /etc/default/locale

# The root filesystem by UUID, grown to the disk at first boot (cloud-init
# growpart + resizefs do that).
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$DJBAKE_ROOT_UUID" > /etc/fstab
echo localhost > /etc/hostname

# GRUB on the MBR, with the console on the serial port too (boot logs).
cat > /etc/default/grub <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 net.ifnames=0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
# grub-install cannot map a loop device's partition to a BIOS drive, so do
# what it does by hand: a core.img that finds the root filesystem by UUID,
# written after the MBR, and boot.img's code in the MBR (the partition
# table at bytes 446..511 stays).
mkdir -p /boot/grub/i386-pc
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst /boot/grub/i386-pc/
printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$DJBAKE_ROOT_UUID" > /tmp/early.cfg
grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -c /tmp/early.cfg -p /boot/grub \
    biosdisk part_msdos ext2 search_fs_uuid
rm -f /tmp/early.cfg
test "$(stat -c %s /boot/grub/i386-pc/core.img)" -lt $(( (2048 - 1) * 512 ))
dd if=/usr/lib/grub/i386-pc/boot.img of="$DJBAKE_DISK" bs=440 count=1 conv=notrunc status=none
dd if=/boot/grub/i386-pc/core.img of="$DJBAKE_DISK" bs=512 seek=1 conv=notrunc status=none
grub-mkconfig -o /boot/grub/grub.cfg
# grub-mkconfig in a chroot names the loop device: boot by UUID instead.
sed -i -E "s#root=/dev/[a-z0-9]+#root=UUID=$DJBAKE_ROOT_UUID#g" /boot/grub/grub.cfg
grep -q "root=UUID=$DJBAKE_ROOT_UUID" /boot/grub/grub.cfg

# Nothing unique: host keys and machine-id are made at first boot.
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old
