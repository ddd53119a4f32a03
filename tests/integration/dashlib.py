"""Checks of a generated dashboard in a real browser (cdp.py): the numbers
on the pages against totals computed from the store's files (reportgen.py),
console errors, network requests, filters, keyboard reach, screenshots."""
import json
import os
import re

from tlsrpttest import BUILD, check, check_eq

ARTIFACTS = os.path.join(BUILD, "test-artifacts")

ROWS_JS = """[...document.querySelectorAll('section.cls')].map(sec => ({
  cls: sec.dataset.class,
  totals: Object.fromEntries([...sec.querySelectorAll('dl.totals dd')].map(d => [d.className, d.textContent])),
  rows: [...sec.querySelectorAll('tbody tr')].map(tr => ({
    domain: tr.dataset.domain, text: tr.querySelector('th').textContent,
    href: tr.querySelector('a').getAttribute('href'),
    sessions: tr.querySelector('.sessions').textContent, failed: tr.querySelector('.failed').textContent,
    rate: tr.querySelector('.rate').textContent, reports: tr.querySelector('.reports').textContent,
    worst: tr.querySelector('.worst').textContent, hidden: tr.hidden}))}))"""

DOMAIN_JS = """({
  totals: Object.fromEntries([...document.querySelectorAll('#totals dd')].map(d => [d.className, d.textContent])),
  days: [...document.querySelectorAll('#days-table tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
  types: [...document.querySelectorAll('#result-types tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
  mx: [...document.querySelectorAll('#failing-mx tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
  reports: [...document.querySelectorAll('#reports tbody tr')].map(tr => ({
    org: tr.dataset.org, failed: tr.dataset.failed,
    link: (tr.querySelector('a') || {getAttribute: () => null}).getAttribute('href')})),
  chart: (() => { const c = window.Chart && Chart.getChart('chart-days');
    return c ? c.data.datasets.map(d => d.data.reduce((a, p) => a + (p.y || 0), 0)) : null; })(),
  chartType: (() => { const c = window.Chart && Chart.getChart('chart-days');
    return c ? c.options.scales.y.type : null; })(),
})"""


def n(text):
    """A number as the page shows it (1,234)."""
    return int(text.replace(",", "").strip())


def as_shown(s):
    """Text as a page shows it: control characters become U+FFFD (html.h)."""
    return "".join("\ufffd" if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7f <= ord(c) < 0xa0 else c
                   for c in s)


def rate(ok, failed):
    """The success rate as the page shows it: rounded down to 0.01 %."""
    if ok + failed == 0:
        return "\u2013"
    h = ok * 10000 // (ok + failed)
    if failed and h >= 10000:
        h = 9999
    return f"{h // 100}.{h % 100:02d}\u00a0%"


def screenshot(browser, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    browser.screenshot(path)
    check(os.path.getsize(path) > 10000, f"screenshot {path} has content")
    return path


def check_overview(browser, site, want, label):
    """index.html shows, per class and domain, the store's numbers."""
    url = "file://" + os.path.join(site, "index.html")
    check(browser.goto(url), f"{label}: overview loaded and its script ran")
    secs = browser.eval(ROWS_JS)
    got = {}
    for sec in secs:
        cls = sec["cls"]
        tot = {"ok": 0, "failed": 0, "reports": 0, "domains": 0}
        for (c, dom), t in want.items():
            if c == cls and t["reports"]:
                tot["ok"] += t["ok"]
                tot["failed"] += t["failed"]
                tot["reports"] += t["reports"]
                tot["domains"] += 1
        check_eq(n(sec["totals"]["t-sessions"]), tot["ok"] + tot["failed"], f"{label} {cls} total sessions")
        check_eq(n(sec["totals"]["t-failed"]), tot["failed"], f"{label} {cls} total failed")
        check_eq(n(sec["totals"]["t-reports"]), tot["reports"], f"{label} {cls} total reports")
        check_eq(sec["totals"]["t-rate"], rate(tot["ok"], tot["failed"]), f"{label} {cls} success rate")
        for r in sec["rows"]:
            got[(cls, r["domain"])] = r
        # newest problems first
        lasts = [r for r in sec["rows"]]
        fails = [n(r["failed"]) > 0 for r in lasts]
        check(fails == sorted(fails, reverse=True), f"{label} {cls}: domains with failures come first")
    shown = {k for k, t in want.items() if t["reports"]}
    check_eq(sorted(k for k in got if got[k]["reports"] != "0"), sorted(shown), f"{label}: domains listed")
    for key in shown:
        r, t = got.get(key), want[key]
        if r is None:
            continue
        check_eq((n(r["sessions"]), n(r["failed"]), n(r["reports"]), r["rate"]),
                 (t["ok"] + t["failed"], t["failed"], t["reports"], rate(t["ok"], t["failed"])),
                 f"{label} {key} sessions, failed, reports, rate")
        if t["types"]:
            worst = sorted(t["types"].items(), key=lambda kv: (-kv[1], kv[0]))[0]
            check_eq(r["worst"], f"{as_shown(worst[0])} ({worst[1]:,})", f"{label} {key} worst failure type")
        check_eq(r["text"], as_shown(key[1]) or "(no domain)", f"{label} {key} domain shown as text")
    return got


def check_domain(browser, site, href, t, label, first=None, last=None):
    url = "file://" + os.path.join(site, href)
    check(browser.goto(url), f"{label}: {href} loaded")
    p = browser.eval(DOMAIN_JS)
    check_eq((n(p["totals"]["t-sessions"]), n(p["totals"]["t-failed"]), n(p["totals"]["t-reports"])),
             (t["ok"] + t["failed"], t["failed"], t["reports"]), f"{label} totals")
    days = {row[0]: (n(row[1]), n(row[2])) for row in p["days"]}
    check_eq(days, {d: tuple(v) for d, v in t["days"].items() if v != [0, 0] or True},
             f"{label} sessions per day (table)")
    check_eq(p["chart"], [t["ok"], t["failed"]], f"{label} chart data sums")
    check_eq(p["chartType"], "logarithmic", f"{label} chart scale")
    check_eq({r[0]: n(r[1]) for r in p["types"]}, {as_shown(k): v for k, v in t["types"].items()},
             f"{label} result types")
    check_eq({r[0]: n(r[1]) for r in p["mx"]}, {as_shown(k): v for k, v in t["mx"].items()},
             f"{label} failing MX hosts")
    check_eq(len(p["reports"]), t["reports"], f"{label} reports listed")
    ids = set()
    for i, r in enumerate(p["reports"]):
        m = re.fullmatch(r"\.\./r/([0-9a-f]{24})\.json", r["link"] or "")
        check(m is not None, f"{label} report link {r['link']!r}")
        if m:
            ids.add(m.group(1))
            path = os.path.join(site, "r", m.group(1) + ".json")
            if i >= 60:     # the link of every report is checked above; the files of the first 60
                continue
            check(os.path.exists(path), f"{label} {path} exists")
            if os.path.exists(path):
                with open(path) as fp:
                    check_eq(json.load(fp)["id"], m.group(1), f"{label} {path} is that report")
    check_eq(ids, t["ids"], f"{label} report ids")
    return p


def check_clean(browser, label):
    check_eq(browser.errors(), [], f"{label}: console errors")
    check_eq([u for u in browser.requests() if not u.startswith("file://")], [],
             f"{label}: requests other than file://")
    check_eq(browser.dialogs(), [], f"{label}: dialogs")
