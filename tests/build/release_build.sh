#!/bin/sh
# The build a package makes: `meson setup --buildtype=release -Dtests=false`
# then `meson install`. It must compile without a single warning (-Werror)
# and build and install the programs only: no test or benchmark target.
# usage: release_build.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson setup "$tmp/b" "$src" --buildtype=release -Dtests=false --werror \
  --prefix=/usr --sysconfdir=/etc >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
if ! meson install -C "$tmp/b" --destdir "$tmp/root" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"; echo "FAIL: the release build or install failed"; exit 1
fi
status=0
if grep -i 'warning' "$tmp/install.log"; then
  echo "FAIL: the release build printed warnings"; status=1
fi
linked=$(grep -o 'Linking target [^ ]*' "$tmp/install.log" | sed 's/Linking target //' | sort | tr '\n' ' ')
want="milter/tlsrpt-milter milter/tlsrpt-policyd milter/tlsrptd reporter/tlsrpt-report reporter/tlsrptctl "
if [ "$linked" != "$want" ]; then
  echo "FAIL: linked: got '$linked', want '$want'"; status=1
fi
progs=$(cd "$tmp/root" && ls usr/sbin | tr '\n' ' ')
if [ "$progs" != "tlsrpt-milter tlsrpt-policyd tlsrpt-report tlsrptctl tlsrptd " ]; then
  echo "FAIL: installed programs: got '$progs'"; status=1
fi
echo "release build: linked $linked"
exit $status
