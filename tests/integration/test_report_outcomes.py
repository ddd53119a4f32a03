#!/usr/bin/env python3
"""What a failed delivery is about, with the real tlsrpt-report (issue 10,
items 13 and 14).

Two days of reports, one domain per kind of refusal, delivered by SMTP to
tests/tools/smtpsink.py (which logs every RCPT) and by HTTPS to a local
endpoint. Day 1 is reported, then day 2 (a day later, with the retries that
are due). Wanted (deliver.h's rule):

  about the destination: suppressed, and day 2's report is not attempted
    RCPT 550 5.1.1 (no such mailbox), RCPT 550 5.1.2 (no such domain),
    HTTP 410 Gone
  about this report: rejected (not retried), day 2's report is attempted
    RCPT 550 5.7.1 (policy), RCPT 550 without an enhanced code, 554 to
    DATA, 554 after the message, 552 (too big), HTTP 413
  temporary: retried
    HTTP 404
  delivered: HTTP 201 followed by a reset connection (curl 56) counts as
    delivered and is never sent again (item 14)

Before, every 5xx suppressed the destination for suppress_period, so day
2's report to a destination that refused one report for its size was never
attempted; a 410 or 413 was retried; the 201 was retried.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import check, check_eq, cleanup, datagram, done, tempdir  # noqa: E402
from reporterlib import Endpoint, Sink, dest_states, mkday, run, spool_list, spool_show  # noqa: E402

MAIL = {  # local part: (state after day 1, RCPT tries after day 2)
    "reject5": ("suppressed", 1),
    "nodomain5": ("suppressed", 1),
    "policy5": ("rejected", 2),
    "plain5": ("rejected", 2),
    "datacmd5": ("rejected", 2),
    "datareject5": ("rejected", 2),
    "toobig5": ("rejected", 2),
}
HTTPS = {  # path: (state after day 1, POSTs after day 2)
    "/410": ("suppressed", 1),
    "/413": ("rejected", 2),
    "/404": ("pending", 3),        # day 1's report retried once, day 2's tried
    "/rst201": ("delivered", 2),   # one POST per report, none again
}


def main():
    tmp = tempdir("test_report_outcomes")
    ep = sink = None
    try:
        ep = Endpoint(tmp)
        sink = Sink(tmp)
        state = os.path.join(tmp, "state")
        for day in ("2025-05-22", "2025-05-23"):
            dgrams = []
            for lp in MAIL:
                dgrams.append(datagram(f"{lp}.example", f"v=TLSRPTv1;rua=mailto:{lp}@{lp}.example",
                                       [{"type": 9}]))
            for path in HTTPS:
                d = f"h{path[1:]}.example"
                dgrams.append(datagram(d, f"v=TLSRPTv1;rua={ep.base}{path}", [{"type": 9}]))
            mkday(state, day, dgrams)
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {state}\nspool_directory = {tmp}/spool\n"
                     "organization_name = Org\ncontact_info = tlsrpt-noreply@sender.example\n"
                     "report_delay = 0\ndkim_sign = no\ndelivery_mail = smtp\n"
                     f"smtp_relay = smtp://127.0.0.1:{sink.port}\nsmtp_starttls = off\n"
                     f"https_ca_file = {ep.ca}\nallow_loopback_destinations = yes\n"
                     "https_timeout = 10s\nretry_initial = 5m\nretry_period = 1h\nsuppress_period = 7d\n")

        rc, out, err = run(conf, "--now", "2025-05-23T03:00:00Z")
        check_eq(rc, 0, f"day 1 run exit ({err})")
        st = dest_states(conf)
        for lp, (want, _) in MAIL.items():
            check_eq(st.get((f"{lp}.example", f"mailto:{lp}@{lp}.example")), want, f"day 1: mail refused by {lp}")
        for path, (want, _) in HTTPS.items():
            check_eq(st.get((f"h{path[1:]}.example", f"{ep.base}{path}")), want, f"day 1: HTTPS {path}")

        rc, out, err = run(conf, "--now", "2025-05-24T03:00:00Z")
        check_eq(rc, 0, f"day 2 run exit ({err})")
        figures = []
        for lp, (_, want) in MAIL.items():
            got = sink.rcpts(f"{lp}@{lp}.example")
            check_eq(got, want, f"RCPT tries for {lp} after day 2")
            figures.append(f"{lp} {got}")
        for path, (_, want) in HTTPS.items():
            got = ep.count(path)
            check_eq(got, want, f"POSTs to {path} after day 2")
            figures.append(f"{path} {got}")
        day2 = [e["id"] for e in spool_list(conf)
                if e["policy-domain"] == "reject5.example" and e["day"] == "2025-05-23"]
        check("not attempted: suppressed until" in (spool_show(conf, day2[0]) if day2 else ""),
              "day 2's report to the unknown mailbox does not say why it was not attempted")
        print("attempts after two days (a report a day): " + ", ".join(figures))
    finally:
        if ep:
            ep.stop()
        if sink:
            sink.stop()
        cleanup(tmp)
    done("test_report_outcomes")


if __name__ == "__main__":
    main()
