#!/usr/bin/env python3
"""The real tlsrpt-report under a clock that jumps (issue 10, item 10).

Day files for 2025-03-01, 2025-05-22 and 2025-05-23, and an HTTPS endpoint.
The right time is 2025-05-23T03:00Z. In order:

  1. 2025-03-02: day 2025-03-01 is reported (old.example);
  2. the right time: day 2025-05-22 is reported, a.example delivered,
     b.example's endpoint fails (503), a retry is pending; the old report
     and its day mark are pruned (normally: older than spool_retention);
  3. five years ahead (--now 2030-05-23): nothing may be pruned, b's retry
     may not be given up, a may not be sent again;
  4. the right time again, b's endpoint works: b is delivered (its retry,
     set by the clock ahead, counts from now), day 2025-05-22 is not
     reported again;
  5. the next day: day 2025-05-23 is reported once;
  6. the clock behind (2025-03-05): day 2025-03-01, whose mark was pruned,
     may not be reported again;
  7. a last run at the right time sends nothing.

Every report must have been accepted by its endpoint exactly once. Before,
the run five years ahead pruned every report and day mark (so day
2025-05-22 went out a second time) and gave b up (lost); the clock behind
reported 2025-03-01 again.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import check, check_eq, cleanup, datagram, done, tempdir  # noqa: E402
from reporterlib import Endpoint, mkday, run, spool_list  # noqa: E402


def main():
    tmp = tempdir("test_clock")
    ep = None
    try:
        ep = Endpoint(tmp)
        state = os.path.join(tmp, "state")
        rec = lambda path: f"v=TLSRPTv1;rua={ep.base}{path}"  # noqa: E731
        mkday(state, "2025-03-01", [datagram("old.example", rec("/ok/old"), [{"type": 9}])])
        mkday(state, "2025-05-22", [datagram("a.example", rec("/ok/a"), [{"type": 9}]),
                                    datagram("b.example", rec("/flaky/b"), [{"type": 9}])])
        mkday(state, "2025-05-23", [datagram("today.example", rec("/ok/today"), [{"type": 9}])])
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {state}\nspool_directory = {tmp}/spool\n"
                     "organization_name = Org\ncontact_info = tlsrpt-noreply@sender.example\n"
                     "report_delay = 0\ndkim_sign = no\ndelivery_mail = off\n"
                     f"https_ca_file = {ep.ca}\nallow_loopback_destinations = yes\n"
                     "https_timeout = 10s\nretry_initial = 5m\nretry_period = 1h\n"
                     "spool_retention = 30d\n")

        def step(now, what):
            rc, out, err = run(conf, "--now", now)
            check_eq(rc, 0, f"{what}: exit ({err[-400:]})")
            return err

        step("2025-03-02T03:00:00Z", "1. the old day")
        check_eq(ep.accepted("/ok/old"), 1, "1. old.example delivered")
        step("2025-05-23T03:00:00Z", "2. the right time")
        check_eq((ep.accepted("/ok/a"), ep.count("/flaky/b")), (1, 1), "2. a delivered, b tried")
        doms = sorted(e["policy-domain"] for e in spool_list(conf))
        check_eq(doms, ["a.example", "b.example"], "2. spool after normal pruning")

        err = step("2030-05-23T03:00:00Z", "3. five years ahead")
        doms = sorted(e["policy-domain"] for e in spool_list(conf))
        check_eq(doms, ["a.example", "b.example"], "3. spool after a run five years ahead (nothing pruned)")
        st = {e["policy-domain"]: e["status"] for e in spool_list(conf)}
        check_eq(st.get("b.example"), "pending", "3. b's retry after a run five years ahead")
        check_eq(ep.accepted("/ok/a"), 1, "3. a not sent again")
        check("pruning counts from that day" in err, "3. no warning about the clock ahead")

        ep.flaky_fails = False
        step("2025-05-23T04:00:00Z", "4. the right time again")
        st = {e["policy-domain"]: e["status"] for e in spool_list(conf)}
        check_eq(st.get("b.example"), "delivered", "4. b delivered once the clock is right")
        step("2025-05-24T03:00:00Z", "5. the next day")
        check_eq(ep.accepted("/ok/today"), 1, "5. the next day reported")

        err = step("2025-03-05T03:00:00Z", "6. the clock behind")
        check("is behind the newest reported day" in err, "6. no warning about the clock behind")
        step("2025-05-24T05:00:00Z", "7. a last run")

        got = {p: ep.accepted(p) for p in ("/ok/old", "/ok/a", "/flaky/b", "/ok/today")}
        check_eq(got, {"/ok/old": 1, "/ok/a": 1, "/flaky/b": 1, "/ok/today": 1},
                 "reports accepted by their endpoints (each exactly once)")
        print(f"after runs at the right time, 5 years ahead, back, and 80 days behind: accepted "
              f"{got}, b attempted {ep.count('/flaky/b')} times")
    finally:
        if ep:
            ep.stop()
        cleanup(tmp)
    done("test_clock")


if __name__ == "__main__":
    main()
