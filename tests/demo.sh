#!/usr/bin/env bash
# ./run demo: the collector (and, when built, the reporter) on an embedded
# default configuration in a private directory, fed a realistic day.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$TOP/demo
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"

# The embedded default configuration: everything in ./demo, nothing system-wide.
cat > tlsrptd.conf <<CONF
state_directory = $DEMO/state
socket_path = $DEMO/tlsrpt.sock
spool_directory = $DEMO/state/spool
organization_name = Demo Sender Org
contact_info = tlsrpt-noreply@sender.example
sync_interval = 5s
CONF

echo "==> starting the collector (config $DEMO/tlsrptd.conf, log $DEMO/tlsrptd.log)"
# The demo counts into yesterday (a test clock offset) so that the day is
# complete and can be reported at once.
TLSRPTD_TEST_CLOCK_OFFSET=-86400 "$BUILD/milter/tlsrptd" -f -c tlsrptd.conf 2> tlsrptd.log &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q collecting tlsrptd.log 2>/dev/null && break; sleep 0.05; done

echo "==> feeding a realistic day of Postfix TLS results through the socket"
/usr/bin/python3 "$TOP/tests/demo_feed.py" "$DEMO/tlsrpt.sock" 5000
sleep 0.5
DAY=$(date -u -d yesterday +%Y-%m-%d)

echo
echo "==> tlsrptctl stats --day $DAY"
"$BUILD/reporter/tlsrptctl" -c tlsrptd.conf stats --day "$DAY"
echo
echo "==> tlsrptctl dump --day $DAY (first 40 lines; --json gives RFC 8460 shape)"
"$BUILD/reporter/tlsrptctl" -c tlsrptd.conf dump --day "$DAY" | head -40
kill $PID; wait $PID 2>/dev/null || true
trap - EXIT

if [ -x "$TOP/tests/demo_report.sh" ] && [ -x "$BUILD/reporter/tlsrpt-report" ]; then
  "$TOP/tests/demo_report.sh" "$BUILD" "$DEMO" "$DAY"
fi

echo
echo "==> where things are"
echo "  configuration   $DEMO/tlsrptd.conf"
echo "  collector log   $DEMO/tlsrptd.log"
echo "  day file        $DEMO/state/days/$DAY.tlsrpt"
[ -d "$DEMO/state/spool" ] && echo "  report spool    $DEMO/state/spool   (tlsrptctl -c $DEMO/tlsrptd.conf spool list)"
echo "  try             $BUILD/reporter/tlsrptctl -c $DEMO/tlsrptd.conf dump --day $DAY --json"
