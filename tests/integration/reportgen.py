"""RFC 8460 reports for the dashboard, alert and metrics tests: made here,
written as .json files for `tlsrptctl received import`, and the store's
totals computed independently of tlsrptctl (from the store's files)."""
import datetime
import json
import os
import random


def report(org, contact, report_id, day, policies):
    """One report for UTC 'day' (a date). policies: list of dicts with
    type, domain, strings, mx, ok, failed, details [(result-type, n, mx, ip, reason)]."""
    start = datetime.datetime.combine(day, datetime.time(0, 0, 0))
    pols = []
    for p in policies:
        pol = {"policy-type": p.get("type", "sts"), "policy-domain": p["domain"]}
        if p.get("strings") is not None:
            pol["policy-string"] = p["strings"]
        if p.get("mx") is not None:
            pol["mx-host"] = p["mx"]
        entry = {"policy": pol, "summary": {"total-successful-session-count": p["ok"],
                                            "total-failure-session-count": p["failed"]}}
        det = []
        for d in p.get("details", []):
            rt, n = d[0], d[1]
            x = {"result-type": rt, "failed-session-count": n}
            if len(d) > 2 and d[2]:
                x["receiving-mx-hostname"] = d[2]
            if len(d) > 3 and d[3]:
                x["receiving-ip"] = d[3]
            if len(d) > 4 and d[4]:
                x["failure-reason-code"] = d[4]
            if len(d) > 5 and d[5]:
                x["sending-mta-ip"] = d[5]
            det.append(x)
        if det:
            entry["failure-details"] = det
        pols.append(entry)
    return {"organization-name": org, "contact-info": contact, "report-id": report_id,
            "date-range": {"start-datetime": start.strftime("%Y-%m-%dT00:00:00Z"),
                           "end-datetime": start.strftime("%Y-%m-%dT23:59:59Z")},
            "policies": pols}


def write(dirname, name, rep):
    path = os.path.join(dirname, name)
    with open(path, "w") as fp:
        json.dump(rep, fp, ensure_ascii=False)
    return path


def year(dirname, ndomains=100, first=datetime.date(2025, 1, 1), days=365, seed=13):
    """A year of daily reports for 'ndomains' domains: every domain gets one
    from "Google Inc." each day, a third of them also one from "Microsoft
    Corporation" on weekdays. Failures: most domains rarely, some often, a
    few with a bad week. Returns the list of files written."""
    rnd = random.Random(seed)
    files = []
    kinds = ["certificate-expired", "certificate-host-mismatch", "starttls-not-supported",
             "validation-failure", "sts-policy-fetch-error"]
    for i in range(ndomains):
        dom = f"d{i:03d}.example"
        mx = [f"mx{k}.{dom}" for k in (1, 2)]
        strings = ["version: STSv1", "mode: enforce", f"mx: mx1.{dom}", f"mx: mx2.{dom}",
                   "max_age: 604800"]
        volume = rnd.choice([3, 40, 400, 4000])
        bad = rnd.random()
        badweek = rnd.randrange(days) if bad < 0.1 else -100
        for n in range(days):
            day = first + datetime.timedelta(days=n)
            for org, contact, every in (("Google Inc.", "smtp-tls-reporting@google.com", True),
                                        ("Microsoft Corporation", "tlsrpt-noreply@microsoft.com",
                                         i % 3 == 0 and day.weekday() < 5)):
                if not every:
                    continue
                ok = max(1, int(volume * rnd.uniform(0.5, 1.5)))
                failed, details = 0, []
                p = 0.02 if bad < 0.6 else 0.3
                if badweek <= n < badweek + 7:
                    p = 1.0
                if rnd.random() < p:
                    failed = rnd.randint(1, max(1, ok // 50))
                    details = [(rnd.choice(kinds), failed, rnd.choice(mx), f"192.0.2.{i % 250 + 1}",
                                "X509_V_ERR_CERT_HAS_EXPIRED", "203.0.113.9")]
                rep = report(org, contact, f"{day.isoformat()}_{dom}_{org[0]}", day,
                             [{"type": "sts", "domain": dom, "strings": strings, "mx": mx,
                               "ok": ok, "failed": failed, "details": details}])
                files.append(write(dirname, f"{org[0]}-{dom}-{day.isoformat()}.json", rep))
    return files


_CACHE = {}


def store_records(store, cached=False):
    """(class, record) of every report in a received store, read from its
    files (not through tlsrptctl). cached: read a store only once."""
    if cached and store in _CACHE:
        return _CACHE[store]
    out = []
    for cls in ("verified", "unverified"):
        d = os.path.join(store, cls)
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if f.endswith(".json"):
                with open(os.path.join(d, f)) as fp:
                    out.append((cls, json.load(fp)))
    if cached:
        _CACHE[store] = out
    return out


def totals(store, first=None, last=None, cached=False):
    """Per (class, domain) over the reports whose range starts on a day in
    [first, last] (ISO strings, None: any): sessions, failed, reports,
    result types, days, report ids, as the dashboard defines them."""
    out = {}
    for cls, rec in store_records(store, cached):
        rep = rec["report"]
        day = rep["date-range"]["start-datetime"][:10]
        if (first and day < first) or (last and day > last):
            continue
        seen = set()
        for pol in rep["policies"]:
            dom = pol["policy"].get("policy-domain", "").lower()
            t = out.setdefault((cls, dom), {"ok": 0, "failed": 0, "reports": 0, "types": {},
                                            "days": {}, "ids": set(), "mx": {}})
            ok = pol["summary"].get("total-successful-session-count", 0)
            failed = pol["summary"].get("total-failure-session-count", 0)
            t["ok"] += ok
            t["failed"] += failed
            dd = t["days"].setdefault(day, [0, 0])
            dd[0] += ok
            dd[1] += failed
            for fd in pol.get("failure-details", []):
                rt = fd.get("result-type") or "(none)"
                t["types"][rt] = t["types"].get(rt, 0) + fd.get("failed-session-count", 0)
                if fd.get("receiving-mx-hostname"):
                    mxn = fd["receiving-mx-hostname"]
                    t["mx"][mxn] = t["mx"].get(mxn, 0) + fd.get("failed-session-count", 0)
            if dom not in seen:
                seen.add(dom)
                t["reports"] += 1
                t["ids"].add(rec["id"])
    return out
