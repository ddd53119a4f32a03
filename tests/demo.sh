#!/usr/bin/env bash
# ./run demo: the whole job on an embedded default configuration, in ./demo,
# touching nothing system-wide:
#   1. local report destinations (SMTP relay with STARTTLS, HTTPS endpoint,
#      a demo CA and DKIM key) on 127.0.0.1
#   2. the collector, fed a realistic day of Postfix 3.10 TLS results
#   3. the reporter: the day closed, reports built, DKIM-signed, spooled and
#      delivered to those destinations
# Everything it starts is stopped when it ends, however it ends (the demo
# test runs it under tests/tools/noleftovers.py). DEMO_DIR: where (./demo).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${DEMO_DIR:-$TOP/demo}
PY=/usr/bin/python3
CTL="$BUILD/reporter/tlsrptctl -c $DEMO/tlsrptd.conf"
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"
PIDS=()
stop_all() {
  if ((${#PIDS[@]})); then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  PIDS=()
}
trap stop_all EXIT

echo "==> 1. local report destinations on 127.0.0.1 (log: demo/endpoints.log)"
$PY "$TOP/tests/demo_endpoints.py" "$DEMO" > endpoints.log 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do grep -q ready endpoints.log 2>/dev/null && break; sleep 0.05; done
grep -q ready endpoints.log || { cat endpoints.log; exit 1; }

# The embedded default configuration: everything in ./demo.
cat > tlsrptd.conf <<CONF
state_directory = $DEMO/state
socket_path = $DEMO/tlsrpt.sock
spool_directory = $DEMO/state/spool
organization_name = Demo Sender Org
contact_info = tlsrpt-noreply@sender.example
sync_interval = 5s
$(cat endpoints.conf)
CONF

echo "==> 2. the collector (config demo/tlsrptd.conf, log demo/tlsrptd.log)"
# The demo counts into yesterday (a test clock offset) so that the day is
# complete and its reports can be built at once.
TLSRPTD_TEST_CLOCK_OFFSET=-86400 "$BUILD/milter/tlsrptd" -f -c tlsrptd.conf 2> tlsrptd.log &
PIDS+=($!)
for _ in $(seq 200); do grep -q collecting tlsrptd.log 2>/dev/null && break; sleep 0.05; done
echo "    feeding a realistic day of Postfix TLS results through the socket:"
echo -n "    "
$PY "$TOP/tests/demo_feed.py" "$DEMO/tlsrpt.sock" 5000 "$(cat https-rua)"
sleep 0.5
DAY=$(date -u -d yesterday +%Y-%m-%d)

echo
echo "==> tlsrptctl stats --day $DAY"
$CTL stats --day "$DAY"
echo
echo "==> tlsrptctl dump --day $DAY   (the first domains; --json gives the RFC 8460 shape)"
$CTL dump --day "$DAY" | head -24 || true   # head closes the pipe early
echo "    ..."

echo
echo "==> 3. tlsrpt-report run: the day is over, build, sign, spool and deliver its reports"
"$BUILD/reporter/tlsrpt-report" -c tlsrptd.conf run 2> report.log || { cat report.log; exit 1; }
tail -3 report.log | sed 's/^/    /'
echo
echo "==> tlsrptctl spool list"
$CTL spool list | head -15 || true
echo "    ..."
ID=$($CTL spool list --json | $PY -c 'import json,sys; d=json.load(sys.stdin); r=d if isinstance(d,list) else d.get("reports",d); print(r[0]["id"])')
echo
echo "==> tlsrptctl spool show $ID   (first lines)"
$CTL spool show "$ID" | head -30 || true
echo "    ..."

MAILS=$(ls delivered-mail | wc -l)
POSTS=$(ls delivered-https | wc -l)
echo
echo "==> delivered: $MAILS report mails to the SMTP relay, $POSTS HTTPS POSTs"
FIRST=$(ls delivered-mail | head -1)
if [ -n "$FIRST" ]; then
  echo "    headers of delivered-mail/$FIRST:"
  sed -n '/^\r\?$/q;p' "delivered-mail/$FIRST" | grep -E '^(From|To|Subject|TLS-|DKIM-Signature|Content-Type)' | cut -c1-110 | sed 's/^/      /'
fi

stop_all
trap - EXIT
echo
echo "==> where things are"
echo "  configuration    $DEMO/tlsrptd.conf"
echo "  logs             $DEMO/tlsrptd.log, $DEMO/report.log"
echo "  day file         $DEMO/state/days/$DAY.tlsrpt"
echo "  report spool     $DEMO/state/spool"
echo "  delivered        $DEMO/delivered-mail (SMTP), $DEMO/delivered-https (HTTPS POST bodies)"
echo "  try              $CTL dump --day $DAY --json"
echo "                   $CTL spool list --json"
