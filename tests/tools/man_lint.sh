#!/bin/sh
# Every man page passes `mandoc -T lint -W style` (Debian package mandoc)
# and `groff -man -w all` without a message. A missing checker is a
# failure, not a skip (./run installs both).
# usage: man_lint.sh PAGE...
status=0
for tool in mandoc groff; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is not installed (./run deps)"; exit 1; }
done
for page in "$@"; do
  out=$(mandoc -T lint -W style "$page" 2>&1; groff -man -w all -z "$page" 2>&1)
  if [ -n "$out" ]; then
    echo "FAIL: $page:"; echo "$out"; status=1
  fi
done
echo "$# man pages checked"
exit $status
