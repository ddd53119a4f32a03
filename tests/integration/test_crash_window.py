#!/usr/bin/env python3
"""kill -9 of tlsrpt-report in the middle of a batch re-sends at most the
attempts in progress (issue 10, item 11).

20 reports, each for its own domain with two destinations: a mailbox (a
fake sendmail that logs each recipient before it reads the message) and an
HTTPS endpoint that takes the POST and does not answer. The fake sendmail
hangs from the 9th message on. Once 8 messages were handed over, the 9th
is in progress and 4 posts (https_concurrency) are waiting, the reporter
(and its sendmail child) is killed with SIGKILL. The re-run, with a
sendmail and an endpoint that now answer at once, must send each of the 8
handed-over messages no second time: only the attempts that were in
progress (the 9th message, the 4 posts) go out again, each once, to its
own destination; everything else exactly once.

Before, outcomes were recorded per batch of up to 256 destinations (all
mail first, then all HTTPS): the re-run sent all 9 messages again.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import check, check_eq, cleanup, datagram, done, tempdir  # noqa: E402
from reporterlib import REPORT, Endpoint, fake_sendmail, mkday, run, sendmail_count  # noqa: E402

N = 20          # reports
HANDED = 8      # messages handed over before the crash
CONC = 4        # https_concurrency


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def main():
    tmp = tempdir("test_crash_window")
    ep = None
    try:
        ep = Endpoint(tmp)
        state = os.path.join(tmp, "state")
        rcpt = [f"r{i}@d{i}.example" for i in range(N)]
        mkday(state, "2025-05-22", [datagram(f"d{i}.example", f"v=TLSRPTv1;rua=mailto:{rcpt[i]},"
                                             f"{ep.base}/hang/{i}", [{"type": 9}]) for i in range(N)])
        sendmail, log = fake_sendmail(tmp, hang_after=HANDED)
        conf = os.path.join(tmp, "tlsrptd.conf")
        common = (f"state_directory = {state}\nspool_directory = {tmp}/spool\n"
                  "organization_name = Org\ncontact_info = tlsrpt-noreply@sender.example\n"
                  "report_delay = 0\ndkim_sign = no\n"
                  f"https_ca_file = {ep.ca}\nallow_loopback_destinations = yes\n"
                  f"https_concurrency = {CONC}\nhttps_timeout = 300s\nmail_timeout = 300s\n")
        with open(conf, "w") as fp:
            fp.write(common + f"sendmail_command = {sendmail}\n")

        proc = subprocess.Popen([REPORT, "-c", conf, "run", "--now", "2025-05-23T03:00:00Z"],
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        ok = wait_for(lambda: sendmail_count(log) >= HANDED + 1, 60)
        check(ok, f"the reporter did not hand over {HANDED + 1} messages (got {sendmail_count(log)})")
        posts_waiting = wait_for(lambda: len(ep.posts) >= CONC, 10)
        check(posts_waiting, f"HTTPS posts did not run beside the mail: {len(ep.posts)} waiting, "
                             f"want {CONC} (mail and HTTPS must interleave)")
        time.sleep(0.3)                 # let anything that would be recorded be recorded
        in_progress_posts = sorted(p for p, _ in ep.posts)
        os.killpg(proc.pid, signal.SIGKILL)     # the reporter and its sendmail
        proc.wait()
        mails_before, posts_before = sendmail_count(log), len(ep.posts)
        print(f"killed with {mails_before - 1} messages handed over, 1 in progress, "
              f"{posts_before} posts waiting")

        # the re-run: sendmail and endpoint answer at once
        sendmail2, log2 = fake_sendmail(tmp, name="sendmail2")
        with open(conf, "w") as fp:
            fp.write(common + f"sendmail_command = {sendmail2}\n")
        ep.release()
        rc, out, err = run(conf, "--now", "2025-05-23T03:10:00Z")
        check_eq(rc, 0, f"re-run exit ({err[-500:]})")

        resent_mail = [r for r in rcpt if sendmail_count(log2, r) > 0 and sendmail_count(log, r) > 0]
        for r in rcpt:
            total = sendmail_count(log, r) + sendmail_count(log2, r)
            check(1 <= total <= 2, f"{r}: {total} messages, want 1 (2 only if in progress at the crash)")
        check(len(resent_mail) <= 1, f"messages sent again after the crash: {len(resent_mail)} "
                                     f"({resent_mail}), want at most 1 (the one in progress)")
        resent_posts = []
        for i in range(N):
            path = f"/hang/{i}"
            total = ep.count(path)
            check(1 <= total <= 2, f"{path}: {total} POSTs, want 1 (2 only if waiting at the crash)")
            if total == 2:
                resent_posts.append(path)
                check(path in in_progress_posts, f"{path} sent again although it was not in progress")
        check(len(resent_posts) <= CONC, f"posts sent again: {len(resent_posts)}, want at most {CONC}")
        check_eq(sum(sendmail_count(log2, r) for r in rcpt) + sum(sendmail_count(log, r) for r in rcpt),
                 N + len(resent_mail), "messages in all")
        print(f"re-run after kill -9: {len(resent_mail)} message(s) and {len(resent_posts)} post(s) sent "
              f"again, each to its own destination; {N} reports, each delivered")
        # nothing more on a third run
        before = (sendmail_count(log2), len(ep.posts))
        run(conf, "--now", "2025-05-23T04:00:00Z")
        check_eq((sendmail_count(log2), len(ep.posts)), before, "a third run sent something")
    finally:
        if ep:
            ep.stop()
        cleanup(tmp)
    done("test_crash_window")


if __name__ == "__main__":
    main()
