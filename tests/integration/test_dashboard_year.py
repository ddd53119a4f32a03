#!/usr/bin/env python3
"""`tlsrptctl dashboard` for a generated year of reports (100 domains, two
reporters, about 45,000 reports) in headless Chromium: over the whole year
and over the default 30 days, the overview's numbers and trends and a
sample of domain pages equal the totals computed from the store's files."""
import datetime
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import cdp  # noqa: E402
import dashlib  # noqa: E402
import reportgen  # noqa: E402
from tlsrpttest import TLSRPTCTL, check, check_eq, done  # noqa: E402

CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"


def ctl(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


def trend(t, p):
    """data-trend of the overview (site.c): failure rate against the previous period."""
    now, before = t["ok"] + t["failed"], p["ok"] + p["failed"]
    if before == 0:
        return "new" if now else "none"
    if now == 0:
        return "silent"
    d = 100.0 * t["failed"] / now - 100.0 * p["failed"] / before
    return "worse" if d > 0.005 else "better" if d < -0.005 else "same"


def main():
    # the store on tmpfs when there is one: each import fsyncs
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="test_dashboard_year.", dir=base)
    b = None
    try:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        files = reportgen.year(src)
        check(len(files) > 40000, f"generated {len(files)} reports")
        conf = os.path.join(tmp, "c.conf")
        store = os.path.join(tmp, "store")
        os.makedirs(store, exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {store}\nspool_directory = {tmp}/nospool\n"
                     f"dashboard_chartjs = {CHARTJS}\n")
        for i in range(0, len(files), 5000):
            rc, out, err = ctl(conf, "received", "import", *files[i:i + 5000])
            check_eq(rc, 0, f"import ({err[:200]})")
        b = cdp.Browser()
        for days, label in ((365, "year"), (30, "30 days")):
            site = os.path.join(tmp, f"site{days}")
            args = ["dashboard", "--output", site, "--now", "2025-12-31"]
            if days != 30:
                args += ["--days", str(days)]     # 30 is the default
            rc, out, err = ctl(conf, *args)
            check_eq(rc, 0, f"{label}: dashboard ({err})")
            last = datetime.date(2025, 12, 31)
            first = last - datetime.timedelta(days=days - 1)
            want = reportgen.totals(store, first.isoformat(), last.isoformat(), cached=True)
            check_eq(len(want), 100, f"{label}: domains in the store's period")
            rows = dashlib.check_overview(b, site, want, label)
            if days == 30:
                pf = first - datetime.timedelta(days=30)
                prev = reportgen.totals(store, pf.isoformat(), (first - datetime.timedelta(days=1)).isoformat(),
                                        cached=True)
                got = b.eval("[...document.querySelectorAll('tbody tr')].map(t => "
                             "[t.dataset.domain, t.querySelector('.trend').dataset.trend])")
                check_eq(dict(got), {k[1]: trend(t, prev[k]) for k, t in want.items()}, f"{label}: trends")
            # a sample of domain pages: the busiest, those with most failures, a quiet one
            keys = sorted(want, key=lambda k: -want[k]["failed"])[:4] + \
                sorted(want, key=lambda k: -(want[k]["ok"]))[:2] + sorted(want)[:2]
            for key in dict.fromkeys(keys):
                dashlib.check_domain(b, site, rows[key]["href"], want[key], f"{label} {key}")
            dashlib.check_clean(b, label)
            if days == 365:
                dashlib.screenshot(b, "dashboard-year-domain.png")
                b.goto("file://" + os.path.join(site, "index.html"))
                dashlib.screenshot(b, "dashboard-year-overview.png")
    finally:
        if b:
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_dashboard_year")


if __name__ == "__main__":
    main()
