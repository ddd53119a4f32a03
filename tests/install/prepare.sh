#!/bin/sh
# prepare.sh - build (once per machine) and cache the Debian roots that the
# install test boots with systemd as PID 1 (tests/install/machine.py):
#   $CACHE/install-trixie    Debian 13: systemd 257, apt, Postfix 3.10
#   $CACHE/install-bookworm  Debian 12: systemd 252, apt, Postfix 3.7
# A minimal Debian (debootstrap --variant=minbase) with systemd as init and
# Postfix installed by its package ("Internet Site", debconf defaults), as
# an operator's fresh mail server would have it. CACHE is $TLSRPT_CACHE,
# default /var/cache/tlsrptd-tests (shared with tests/e2e/prepare.sh). A
# finished root carries the stamp file .tlsrptd-root-ok; an unfinished one
# is removed and built again. Tests never change a cached root: they boot
# it under an overlay. Idempotent and fast when the roots exist.
#
# Usage: prepare.sh [trixie|bookworm ...]     (default: both)
# Exit: 0 ready; 77 (skip) not root; 1 anything else missing or failed (the
# reason is printed): in CI a missing input is a failure, not a skip.
# PREPARE_TIMEOUT (seconds, default 900) bounds each debootstrap run.
set -u

CACHE=${TLSRPT_CACHE:-/var/cache/tlsrptd-tests}
STAMP=.tlsrptd-root-ok
suites=${*:-trixie bookworm}
PACKAGES=systemd,systemd-sysv,postfix,ca-certificates

say() { printf '%s\n' "install/prepare.sh: $*" >&2; }

# the mirror of this machine's apt sources
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
archive_uri() { "$TOOLS/archive-uri"; }

if [ "$(id -u)" != 0 ]; then
	say "SKIP: needs root (debootstrap, namespaces)"
	exit 77
fi
if ! command -v debootstrap >/dev/null 2>&1; then
	say "ERROR: debootstrap is not installed (./run deps installs it)"
	exit 1
fi

mkdir -p "$CACHE" || exit 1
exec 9>"$CACHE/.install-prepare.lock"
if ! flock -w 900 9; then
	say "ERROR: $CACHE/.install-prepare.lock held for 15 minutes"
	exit 1
fi

rc=0
for suite in $suites; do
	root=$CACHE/install-$suite
	if [ -f "$root/$STAMP" ]; then
		say "$suite: cached in $root ($(cat "$root/$STAMP"))"
		continue
	fi
	uri=$(archive_uri | head -n 1)
	if [ -z "$uri" ]; then
		say "ERROR: no Debian archive URI in /etc/apt/sources.list{,.d/debian.sources}"
		exit 1
	fi
	if [ -e "$root" ]; then
		if grep -q " $root" /proc/mounts; then
			say "ERROR: $root is mounted somewhere, refusing to remove it"
			exit 1
		fi
		rm -rf "$root"
	fi
	say "$suite: building $root from $uri (about a minute)"
	start=$(date +%s)
	mkdir -p "$CACHE/install-debs-$suite"
	if ! timeout "${PREPARE_TIMEOUT:-900}" debootstrap --variant=minbase --include=$PACKAGES \
		--cache-dir="$CACHE/install-debs-$suite" \
		"$suite" "$root" "$uri" >"$CACHE/install-$suite.log" 2>&1; then
		say "ERROR: debootstrap $suite failed, last lines of $CACHE/install-$suite.log:"
		tail -n 20 "$CACHE/install-$suite.log" >&2
		rc=1
		continue
	fi
	version=$(chroot "$root" /usr/sbin/postconf -dh mail_version 2>/dev/null)
	systemd=$(chroot "$root" /lib/systemd/systemd --version 2>/dev/null | head -n 1)
	if [ -z "$version" ] || [ -z "$systemd" ]; then
		say "ERROR: $suite root has no working postconf or systemd"
		rc=1
		continue
	fi
	# no downloaded .debs kept (the machine id stays: an empty one would
	# make every boot a "first boot" with presets applied to all units)
	rm -f "$root/var/cache/apt/archives/"*.deb
	echo "postfix $version, $systemd, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$root/$STAMP"
	say "$suite: ready in $(( $(date +%s) - start )) s: $(cat "$root/$STAMP")"
done
exit $rc
