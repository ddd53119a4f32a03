#!/usr/bin/env python3
"""check_sample.py TLSRPTD SAMPLE: the sample configuration is valid as it
stands, and every commented "# key = value" line is a valid setting when
uncommented (no explanation trailing on the line that would become part of
the value). Exit 1 with the offending lines."""
import re
import subprocess
import sys

prog, sample = sys.argv[1], sys.argv[2]
bad = []
r = subprocess.run([prog, "-n", "-c", sample], capture_output=True, text=True)
if r.returncode != 0:
    bad.append("the sample as shipped: " + r.stderr.strip())
n = 0
for i, line in enumerate(open(sample), 1):
    m = re.match(r"^#\s*([a-z_]+)\s*=(.*)$", line.rstrip("\n"))
    if not m:
        continue
    n += 1
    # an explanation after the value: several spaces, or " (" ... ")"
    if re.search(r"\s{2,}|\s\(", m.group(2).strip()):
        bad.append("%s:%d: %s -> an explanation would become part of the value"
                   % (sample, i, line.strip()))
        continue
    r = subprocess.run([prog, "-n", "-c", "/dev/null", "-o", "%s=%s" % (m.group(1), m.group(2).strip())],
                       capture_output=True, text=True)
    if r.returncode != 0:
        bad.append("%s:%d: %s -> %s" % (sample, i, line.strip(), r.stderr.strip()))
for b in bad:
    print(b, file=sys.stderr)
print("check_sample: %d commented settings, %d bad" % (n, len(bad)))
sys.exit(1 if bad or n == 0 else 0)
