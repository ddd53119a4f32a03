#!/bin/sh
# inner.sh - PID 1 of a new pid namespace (started by machine.py through
# unshare, with new mount, net, uts, ipc and cgroup namespaces): build the
# machine's file systems, wait for the network, become systemd.
#   inner.sh LOWER UPPER WORK MNT CONSOLE HOSTNAME DROPCAPS
# LOWER the cached root (read-only lower layer), UPPER/WORK this run's
# overlay directories, MNT the mount point, CONSOLE the pty slave that
# becomes /dev/console, DROPCAPS for setpriv --bounding-set (-cap,...).
set -eu
LOWER=$1 UPPER=$2 WORK=$3 R=$4 CONSOLE=$5 NAME=$6 DROP=$7

mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
# the kernel's tunables are the host's: read-only, as in any container;
# the network namespace's own (net.*) stay writable, as systemd-nspawn
# leaves them with a private network: sysctl.d drop-ins for net.* apply
mount --bind "$R/proc/sys" "$R/proc/sys"
mount --bind "$R/proc/sys/net" "$R/proc/sys/net"
mount -o remount,bind,ro,nosuid,nodev,noexec "$R/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid,size=4m tmpfs "$R/dev"
for n in null zero full random urandom tty; do
	touch "$R/dev/$n"
	mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
touch "$R/dev/console"
mount --bind "$CONSOLE" "$R/dev/console"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
hostname "$NAME"

read -r go        # machine.py has set up the network namespace
[ "$go" = go ] || exit 1

cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
# from here on the machine's own programs
umount -l /.oldroot
rmdir /.oldroot
exec setpriv --bounding-set "$DROP" -- /usr/bin/env -i container=tlsrptd-install TERM=linux /sbin/init </dev/console >/dev/console 2>&1
