#!/bin/sh
# prepare.sh - build (once per machine) and cache the Debian trees that the
# e2e tests run a real Postfix from:
#   $CACHE/trixie    Debian 13, Postfix 3.10.x (with TLSRPT support)
#   $CACHE/bookworm  Debian 12, Postfix 3.7.x (log source only)
# CACHE is $TLSRPT_CACHE, default /var/cache/tlsrptd-tests. A finished tree
# carries the stamp file .tlsrptd-tree-ok; an unfinished one is removed and
# built again. Idempotent and fast (a few ms) when both trees exist.
#
# Usage: prepare.sh [trixie|bookworm ...]     (default: both)
# Exit: 0 all requested trees ready; 77 (skip) not root; 1 debootstrap or
# the archive URI missing, or a build failed (the reason is printed loudly):
# a missing input is a failure, not a skip.
# PREPARE_TIMEOUT (seconds, default 900) bounds each debootstrap run.
# The archive URI is read at run time from the system's apt sources.
set -u

CACHE=${TLSRPT_CACHE:-/var/cache/tlsrptd-tests}
STAMP=.tlsrptd-tree-ok
suites=${*:-trixie bookworm}

say() { printf '%s\n' "prepare.sh: $*" >&2; }

# the mirror of this machine's apt sources
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
archive_uri() { "$TOOLS/archive-uri"; }

if [ "$(id -u)" != 0 ]; then
	say "SKIP: needs root (debootstrap, chroot, network namespaces)"
	exit 77
fi
if ! command -v debootstrap >/dev/null 2>&1; then
	say "ERROR: debootstrap is not installed (./run deps installs it)"
	exit 1
fi

mkdir -p "$CACHE" || exit 1
# one builder at a time (tests may call this script in parallel)
exec 9>"$CACHE/.prepare.lock"
if ! flock -w 600 9; then
	say "ERROR: $CACHE/.prepare.lock held for 10 minutes"
	exit 1
fi

rc=0
for suite in $suites; do
	tree=$CACHE/$suite
	if [ -f "$tree/$STAMP" ]; then
		say "$suite: cached in $tree ($(cat "$tree/$STAMP"))"
		continue
	fi
	uri=$(archive_uri | head -n 1)
	if [ -z "$uri" ]; then
		say "ERROR: no Debian archive URI in /etc/apt/sources.list{,.d/debian.sources}"
		exit 1
	fi
	# an unfinished tree from an interrupted run: remove, but never follow
	# a mount point left inside it
	if [ -e "$tree" ]; then
		if grep -q " $tree/" /proc/mounts; then
			say "ERROR: $tree has mounts inside, refusing to remove it"
			exit 1
		fi
		rm -rf "$tree"
	fi
	say "$suite: building tree in $tree from $uri (about a minute)"
	start=$(date +%s)
	# the .debs stay in $CACHE/debs-$suite: a rebuild downloads nothing
	mkdir -p "$CACHE/debs-$suite"
	if ! timeout "${PREPARE_TIMEOUT:-900}" debootstrap --variant=minbase --include=postfix,ca-certificates \
		--cache-dir="$CACHE/debs-$suite" \
		"$suite" "$tree" "$uri" >"$CACHE/$suite.log" 2>&1; then
		say "ERROR: debootstrap $suite failed, last lines of $CACHE/$suite.log:"
		tail -n 20 "$CACHE/$suite.log" >&2
		rc=1
		continue
	fi
	version=$(chroot "$tree" /usr/sbin/postconf -dh mail_version 2>/dev/null)
	if [ -z "$version" ]; then
		say "ERROR: $suite tree has no working postconf"
		rc=1
		continue
	fi
	# the tree is ours only: no apt caches, no services started by anything
	rm -rf "$tree/var/cache/apt/archives/"*.deb
	echo "postfix $version built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tree/$STAMP"
	say "$suite: postfix $version ready in $(( $(date +%s) - start )) s"
done
exit $rc
