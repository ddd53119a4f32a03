#!/usr/bin/env python3
"""check_sample.py CONF_DOC SAMPLE DEFAULTS FILES_TABLE: the sample
configuration follows the privilege layout (test conf-sample-layout; the
syntax of the whole sample, with every setting on, is test conf-sample).

  * every commented "# key = value" line is a valid setting on its own
    (conf_doc --check) and has no explanation trailing the value (several
    spaces, or " (" ...) that would become part of it when uncommented;
  * no 'user' is set: systemd starts each daemon as its own user;
  * every path the sample names (set or commented, sockets inside unix:
    and socketmap: values too) is the key's default of the key table
    (DEFAULTS is conf/tlsrptd-defaults.conf, kept current by the
    conf-reference test), and it, or its directory, is a row of
    conf/files.table (what the packages create, with which owner).

Exit 1 with the offending lines."""
import fnmatch
import os
import re
import subprocess
import sys
import tempfile

conf_doc, sample, defaults_file, table_file = sys.argv[1:5]


def settings(path, commented):
    """[(line number, key, value)] of "key = value" lines (or of
    "# key = value" lines when 'commented')."""
    rx = r"^#\s*([a-z_]+)\s*=(.*)$" if commented else r"^([a-z_]+)\s*=(.*)$"
    out = []
    with open(path) as fp:
        for i, line in enumerate(fp, 1):
            m = re.match(rx, line.rstrip("\n"))
            if m:
                out.append((i, m.group(1), m.group(2).strip()))
    return out


def valid_alone(key, value):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as fp:
        fp.write("%s = %s\n" % (key, value))
    try:
        r = subprocess.run([conf_doc, "--check", fp.name], capture_output=True, text=True)
    finally:
        os.unlink(fp.name)
    return r.returncode == 0 and not r.stdout and not r.stderr, (r.stdout + r.stderr).strip()


def paths_in(value):
    """Absolute paths in a value: a path, unix:PATH, socketmap:unix:PATH:NAME."""
    m = re.match(r"^(?:socketmap:)?unix:(/[^:]+)", value)
    if m:
        return [m.group(1)]
    return [value] if value.startswith("/") else []


defaults = {k: v for _, k, v in settings(defaults_file, False)}
table = []
with open(table_file) as fp:
    for line in fp:
        if line.strip() and not line.startswith("#"):
            table.append(line.split()[0])


def in_table(p):
    return any(fnmatch.fnmatchcase(p, row) for row in table)


bad = []
commented = settings(sample, True)
active = settings(sample, False)
for i, key, value in commented:
    if re.search(r"\s{2,}|\s\(", value):
        bad.append("%s:%d: %s = %s -> an explanation would become part of the value"
                   % (sample, i, key, value))
        continue
    ok, why = valid_alone(key, value)
    if not ok:
        bad.append("%s:%d: # %s = %s -> not valid uncommented: %s" % (sample, i, key, value, why))
npaths = 0
for i, key, value in commented + active:
    if key == "user" and (i, key, value) in active:
        bad.append("%s:%d: user is set: systemd starts each daemon as its own user" % (sample, i))
    if key not in defaults:
        bad.append("%s:%d: %s is not a key of the table" % (sample, i, key))
        continue
    for p in paths_in(value):
        npaths += 1
        dflt = paths_in(defaults[key])
        # log_policy_map has no path default: its socket must be policy_socket's
        if key == "log_policy_map":
            dflt = paths_in(defaults["policy_socket"])
        if dflt and p not in dflt:
            bad.append("%s:%d: %s = %s: the layout's path is %s (the key's default)"
                       % (sample, i, key, value, dflt[0]))
        if not in_table(p) and not in_table(os.path.dirname(p)):
            bad.append("%s:%d: %s: %s (nor its directory) is not in conf/files.table"
                       % (sample, i, key, p))
for b in bad:
    print(b, file=sys.stderr)
print("check_sample: %d commented settings, %d paths, %d bad" % (len(commented), npaths, len(bad)))
sys.exit(1 if bad or not commented or npaths < 8 else 0)
