#!/usr/bin/env python3
"""`tlsrptctl dashboard` for the 25 real sample reports, in headless
Chromium (Debian's chromium over the DevTools pipe, offline from file://):
every number on the overview and the domain pages equals the store's
totals computed here from the store's files; no console error; no request
but file://; filters and keyboard reach; screenshots in
BUILD/test-artifacts. Then hostile text in every report field stays text
(HTML, attributes, JSON in <script>, file names), and the sending side's
page shows the spool."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import cdp  # noqa: E402
import dashlib  # noqa: E402
import reportgen  # noqa: E402
from tlsrpttest import SOURCE, TLSRPTCTL, check, check_eq, done  # noqa: E402

SAMPLES = os.path.join(SOURCE, "tests", "data", "real-reports")
CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"

# Each one tries to run script (window.__xss) or add markup; 20 payloads,
# for element text, attribute values, JSON inside <script>, and file names.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    "\"><img src=x onerror=\"window.__xss=2\">",
    "'><svg onload=window.__xss=3>",
    "</script><script>window.__xss=4</script>",
    "javascript:window.__xss=5",
    "<iframe srcdoc=\"<script>parent.__xss=6</script>\"></iframe>",
    "\" onmouseover=\"window.__xss=7\" x=\"",
    "<!--<script>window.__xss=8</script>-->",
    "\u2028\u2029</script><script>window.__xss=9</script>",
    "<a href=\"javascript:window.__xss=10\">x</a>",
    "{{constructor.constructor('window.__xss=11')()}}",
    "<style>*{background:url(\"javascript:window.__xss=12\")}</style>",
    "`-window.__xss=13-`",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=14>",
    "&lt;script&gt;window.__xss=15&lt;/script&gt;",
    "<scr<script>ipt>window.__xss=16</script>",
    "../../index.html",
    "<object data=\"javascript:window.__xss=18\"></object>",
    "<base href=\"javascript:window.__xss=19//\">",
    "\x1b[31m<b onclick=window.__xss=20>\x7f\u0085",
]


def ctl(conf, *args, timeout=120):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def keyboard_reach(b, ids, label, presses=25):
    """Tab from the top of the page; every control in 'ids' gets the focus."""
    b.eval("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); 1")
    reached = []
    for _ in range(presses):
        b.key("Tab")
        reached.append(b.eval("document.activeElement.id || document.activeElement.tagName"))
    for i in ids:
        check(i in reached, f"{label}: Tab reaches #{i} (reached {reached})")


def samples(tmp, b):
    conf = os.path.join(tmp, "s.conf")
    store = os.path.join(tmp, "store")
    os.makedirs(store, exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
    with open(conf, "w") as fp:
        fp.write(f"received_directory = {store}\nspool_directory = {tmp}/nospool\n"
                 f"dashboard_chartjs = {CHARTJS}\n")
    files = sorted(f for f in os.listdir(SAMPLES) if f != "MANIFEST.md")
    check_eq(len(files), 25, "sample files")
    rc, out, err = ctl(conf, "received", "import", *[os.path.join(SAMPLES, f) for f in files])
    check_eq(rc, 0, f"import ({err})")
    rc, out, err = ctl(conf, "received", "import", "--trusted", os.path.join(SAMPLES, "google-2.json"))
    check_eq(rc, 0, f"trusted import ({err})")
    site = os.path.join(tmp, "site")
    rc, out, err = ctl(conf, "dashboard", "--output", site, "--days", "0")
    check_eq(rc, 0, f"dashboard ({err})")
    check(re.match(r".*: 15 domain pages, 25 reports, \d+ bytes written", out) is not None,
          f"dashboard output {out!r}")
    want = reportgen.totals(store)
    check_eq(sum(t["reports"] for t in want.values()), 25, "reports in the store (24 + 1 trusted)")
    rows = dashlib.check_overview(b, site, want, "samples")
    # filters: text, failures only, class
    b.eval("document.getElementById('f-domain').focus(); 1")
    b.type("krvtz")
    check_eq(b.eval("[...document.querySelectorAll('table.domains tbody tr')].filter(t => !t.hidden)"
                    ".map(t => t.dataset.domain)"), ["krvtz.net"], "filter by domain text")
    check_eq(b.eval("document.getElementById('f-count').textContent"), "1 of 15 domains shown",
             "filter count announced")
    b.eval("const e = document.getElementById('f-domain'); e.value = ''; "
           "e.dispatchEvent(new Event('input')); 1")
    b.eval("document.getElementById('f-failing').focus(); 1")
    b.key(" ")
    failing = sorted(k[1] for k, t in want.items() if t["failed"] > 0 and k[0] == "unverified")
    check_eq(sorted(b.eval("[...document.querySelectorAll('section[data-class=unverified] tbody tr')]"
                           ".filter(t => !t.hidden).map(t => t.dataset.domain)")), failing,
             "filter: only domains with failures (space on the checkbox)")
    b.key(" ")
    b.eval("const s = document.getElementById('f-class'); s.value = 'verified'; "
           "s.dispatchEvent(new Event('change')); 1")
    check_eq(b.eval("document.querySelector('section[data-class=unverified]').hidden"), True,
             "filter: signed only hides the unverified section")
    b.eval("const s = document.getElementById('f-class'); s.value = 'all'; "
           "s.dispatchEvent(new Event('change')); 1")
    keyboard_reach(b, ["f-domain", "f-failing", "f-class"], "overview")
    dashlib.screenshot(b, "dashboard-overview.png")
    # every domain page
    for key, r in sorted(rows.items()):
        dashlib.check_domain(b, site, r["href"], want[key], f"samples {key}")
    # the domain page of example.com: 4,525 sessions next to 2 failures, filters, keyboard
    ex = rows[("unverified", "example.com")]
    dashlib.check_domain(b, site, ex["href"], want[("unverified", "example.com")], "example.com")
    keyboard_reach(b, ["linear-scale", "f-org", "f-rfailing"], "domain page", presses=40)
    b.eval("document.getElementById('f-rfailing').focus(); 1")
    b.key(" ")
    check_eq(b.eval("[...document.querySelectorAll('#reports tbody tr')].filter(t => !t.hidden).length"),
             2, "example.com: reports with failures (google-1 and the 2024-01-09 one)")
    b.eval("document.getElementById('linear-scale').focus(); 1")
    b.key(" ")
    check_eq(b.eval("Chart.getChart('chart-days').options.scales.y1.type"), "linear",
             "linear scale: failures on their own axis")
    check_eq(b.eval("Chart.getChart('chart-days').data.datasets[1].yAxisID"), "y1", "failures axis")
    b.eval("window.scrollTo(0, 0); document.getElementById('linear-scale').click(); 1")
    dashlib.screenshot(b, "dashboard-domain.png")
    # the verified section has the trusted import, with its label
    check_eq([k for k in rows if k[0] == "verified"], [k for k, t in want.items() if k[0] == "verified"],
             "the trusted import is listed among signed reports")
    check_eq(len([k for k in rows if k[0] == "verified"]), 1, "one signed domain")
    dashlib.check_clean(b, "samples")
    # the old one-page summary still works
    rc, out, err = ctl(conf, "received", "summary", "--html", os.path.join(tmp, "old.html"))
    check_eq(rc, 0, "received summary --html still works")


def hostile(tmp, b):
    conf = os.path.join(tmp, "h.conf")
    store = os.path.join(tmp, "hstore")
    src = os.path.join(tmp, "hsrc")
    os.makedirs(src)
    os.makedirs(store, exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
    with open(conf, "w") as fp:
        fp.write(f"received_directory = {store}\nspool_directory = {tmp}/nospool\n"
                 f"dashboard_chartjs = {CHARTJS}\n")
    import datetime
    day = datetime.date(2026, 3, 1)
    files = []
    for i, p in enumerate(PAYLOADS):
        rep = reportgen.report(p, f"x@{p}", f"id-{i}-{p}", day + datetime.timedelta(days=i % 5), [
            {"type": p, "domain": p if i % 2 == 0 else f"d{i}.example", "strings": [p, "mode: " + p],
             "mx": [p], "ok": 10 + i, "failed": 1 + i,
             "details": [(p, 1 + i, p, p, p, p)]}])
        # file names with payloads too (the store keeps the import file name)
        name = f"p{i}-" + re.sub(r"[/\x00]", "_", p)[:60] + ".json"
        files.append(reportgen.write(src, name, rep))
    rc, out, err = ctl(conf, "received", "import", *files)
    check_eq(rc, 0, f"import of hostile reports ({err[:300]})")
    site = os.path.join(tmp, "hsite")
    rc, out, err = ctl(conf, "dashboard", "--output", site, "--days", "0")
    check_eq(rc, 0, f"dashboard of hostile reports ({err})")
    # files stay inside the site, with safe names
    for root, dirs, fnames in os.walk(site):
        for f in fnames:
            check(re.fullmatch(r"[a-z0-9._-]+", f) is not None and not f.startswith("."),
                  f"file name {os.path.join(root, f)!r}")
    # the raw pages never contain a payload's markup
    pages = [os.path.join(site, "index.html")] + [os.path.join(site, "d", f)
                                                 for f in os.listdir(os.path.join(site, "d"))]
    for path in pages:
        html = open(path, encoding="utf-8").read()
        for bad in ("<script>window", "<img", "<svg", "<iframe", "<object", "<base", "<math",
                    "<b onclick", "<!--", "</script><script>", "<style>*", "<scr<script>"):
            check(bad not in html, f"{os.path.basename(path)}: raw {bad!r}")
        for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S):
            for bad in ("<", ">", "&", "\u2028", "\u2029"):
                check(bad not in block, f"{os.path.basename(path)}: {bad!r} inside JSON in <script>")
        check_eq(html.count("<script"), html.count("</script>"), f"{os.path.basename(path)}: script tags pair")
    want = reportgen.totals(store)
    rows = dashlib.check_overview(b, site, want, "hostile")
    alien = ("[...document.querySelectorAll('*')].filter(e => ['IMG','SVG','IFRAME','OBJECT','BASE','MATH',"
             "'STYLE','B','svg','math'].includes(e.tagName) || [...e.attributes].some(a => a.name.startsWith('on')))"
             ".map(e => e.tagName)")
    scripts = "[...document.scripts].map(s => s.getAttribute('src') || s.type)"
    check_eq(b.eval(alien), [], "overview: no element or handler from a payload")
    check_eq(b.eval(scripts), ["assets/chart.min.js", "assets/dashboard.js"], "overview: only our scripts")
    texts = b.eval("[...document.querySelectorAll('tbody th.domain')].map(t => t.textContent)")
    for i, p in enumerate(PAYLOADS):
        if i % 2 == 0:
            check(p.lower().replace("\x1b", "\ufffd").replace("\x7f", "\ufffd").replace("\u0085", "\ufffd")
                  in texts, f"payload {i} shown as text in the overview")
    for key, r in sorted(rows.items()):
        t = want[key]
        dashlib.check_domain(b, site, r["href"], t, f"hostile {key}")
        check_eq(b.eval(alien), [], f"hostile {key}: no element or handler from a payload")
        check_eq(b.eval(scripts), ["../assets/chart.min.js", "../assets/dashboard.js",
                                   "application/json"], f"hostile {key}: only our scripts and the data block")
        check_eq(b.eval("window.__xss === undefined && window.parent.__xss === undefined"), True,
                 f"hostile {key}: no payload ran")
        data = b.eval("JSON.parse(document.getElementById('chart-data').textContent).result_types.map(r => r.k)")
        check_eq(sorted(data), sorted(t["types"]), f"hostile {key}: JSON in <script> parses to the same strings")
    check_eq(b.dialogs(), [], "hostile: no dialog")
    check_eq(b.eval("window.__xss === undefined"), True, "hostile: no payload ran")


def sent(tmp, b):
    """The sending side's page from a spool the real reporter wrote."""
    from tlsrpttest import BUILD
    mkday = os.path.join(BUILD, "tests", "mkday")
    report = os.path.join(BUILD, "reporter", "tlsrpt-report")
    state = os.path.join(tmp, "state")
    spool = os.path.join(tmp, "spool")
    conf = os.path.join(tmp, "r.conf")
    sink = os.path.join(tmp, "sendmail.sh")
    with open(sink, "w") as fp:
        fp.write("#!/bin/sh\n# accepts report mail for one domain, refuses the other permanently\n"
                 "case \"$*\" in *refuse*) cat >/dev/null; echo '550 5.1.1 no such user' >&2; exit 67;; esac\n"
                 f"cat > {tmp}/last-mail\n")
    os.chmod(sink, 0o755)
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {state}\nspool_directory = {spool}\nreceived_directory = {tmp}/store\n"
                 f"organization_name = Example Org\ncontact_info = tlsrpt@example.net\n"
                 f"dkim_sign = no\nsendmail_command = {sink}\nreport_delay = 0\n"
                 f"dashboard_chartjs = {CHARTJS}\n")
    from tlsrpttest import datagram
    dgrams = []
    for dom, rua in (("ok.example", "mailto:tlsrpt@ok.example"), ("bad.example", "mailto:refuse@bad.example")):
        dgrams += [datagram(dom, f"v=TLSRPTv1; rua={rua}", [{"type": 2, "domain": dom, "mx": [f"mx.{dom}"],
                   "strings": ["version: STSv1", "mode: enforce", f"mx: mx.{dom}", "max_age: 86400"]}])] * 3
    r = subprocess.run([mkday, "--dir", state, "--day", "2026-03-01"], input=b"\n".join(dgrams) + b"\n",
                       capture_output=True)
    check_eq(r.returncode, 0, f"mkday ({r.stderr.decode().strip()})")
    r = subprocess.run([report, "-c", conf, "run", "--now", "2026-03-02T12:00:00Z"], capture_output=True,
                       text=True, timeout=60)
    check_eq(r.returncode, 0, f"tlsrpt-report run ({r.stderr.strip()})")
    rc, out, err = ctl(conf, "spool", "list", "--json")
    entries = json.loads(out) if rc == 0 else []
    check_eq(len(entries), 2, f"two reports spooled ({err})")
    site = os.path.join(tmp, "ssite")
    rc, out, err = ctl(conf, "dashboard", "--output", site, "--now", "2026-03-02")
    check_eq(rc, 0, f"dashboard with a spool ({err})")
    check(b.goto("file://" + os.path.join(site, "sent.html")), "sent.html loaded")
    page = b.eval("""({
      totals: Object.fromEntries([...document.querySelectorAll('#totals dd')].map(d => [d.className, d.textContent])),
      dests: [...document.querySelectorAll('#destinations tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
      fails: [...document.querySelectorAll('#failures tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
      supp: [...document.querySelectorAll('#suppressed tbody tr')].map(tr => tr.children[0].textContent),
      days: [...document.querySelectorAll('#sent-days tbody tr')].map(tr => [...tr.children].map(c => c.textContent)),
      chart: Chart.getChart('chart-sent').data.datasets.map(d => d.data.reduce((a, p) => a + p.y, 0)),
    })""")
    status = {}
    for e in entries:
        status[e["status"]] = status.get(e["status"], 0) + 1
    check_eq(page["totals"]["t-reports"], "2", "sent: reports")
    check_eq(page["totals"]["t-delivered"], str(status.get("delivered", 0)), "sent: delivered")
    check_eq(page["totals"]["t-failed"], str(status.get("failed", 0)), "sent: failed")
    check_eq(status, {"delivered": 1, "failed": 1}, "one delivered, one refused")
    check_eq(sorted(d[0] for d in page["dests"]), ["mailto:refuse@bad.example", "mailto:tlsrpt@ok.example"],
             "sent: destinations")
    check_eq([f[0] for f in page["fails"]], ["mailto:refuse@bad.example"], "sent: failures by destination")
    check_eq(page["supp"], ["mailto:refuse@bad.example"], "sent: suppressed destinations")
    check_eq(page["days"][0][:2], ["2026-03-01", "2"], "sent: reports per day")
    check_eq(page["chart"], [1, 0, 1, 0], "sent: chart delivered/pending/failed/no destination")
    b.eval("document.getElementById('f-dest').focus(); 1")
    b.type("ok.example")
    check_eq(b.eval("document.getElementById('d-count').textContent"), "1 of 2 destinations shown",
             "sent: destination filter")
    dashlib.screenshot(b, "dashboard-sent.png")
    dashlib.check_clean(b, "sent")


def main():
    tmp = tempfile.mkdtemp(prefix="test_dashboard.")
    b = None
    try:
        check(os.path.exists(CHARTJS), f"{CHARTJS} (Debian package libjs-chart.js, ./run deps)")
        check(os.path.exists(cdp.CHROMIUM), f"{cdp.CHROMIUM} (Debian package chromium, ./run deps)")
        b = cdp.Browser()
        samples(tmp, b)
        hostile(tmp, b)
        sent(tmp, b)
        # missing chart library: a clear error, not a broken site
        conf = os.path.join(tmp, "s.conf")
        rc, out, err = ctl(conf, "dashboard", "--output", os.path.join(tmp, "x"), "--chartjs", "/nonexistent.js")
        check_eq(rc, 74, "missing chart library: CTL_IOERR")
        check("libjs-chart.js" in err, f"error names the package: {err!r}")
        rc, out, err = ctl(conf, "dashboard")
        check_eq(rc, 64, "dashboard without --output: usage")
    finally:
        if b:
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_dashboard")


if __name__ == "__main__":
    main()
