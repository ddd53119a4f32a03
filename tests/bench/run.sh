#!/usr/bin/env bash
# ./run bench: every benchmark, each printing its own table.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
shift || true
cd "$(dirname "$0")"
python3 bench_collector.py "$BUILD" "$@"
for extra in "$BUILD"/tests/bench/bench_report "$BUILD"/tests/bench/bench_https "$BUILD"/tests/bench/bench_policyd "$BUILD"/tests/bench/bench_received; do
  [ -x "$extra" ] && { echo; "$extra"; }
done
echo; python3 bench_dashboard.py "$BUILD"
# tlsrpt-policyd side by side with postfix-mta-sts-resolver (root: namespaces)
echo
python3 bench_compare.py "$BUILD"
exit 0
