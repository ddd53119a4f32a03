#!/usr/bin/env python3
"""The sample configuration (conf/tlsrptd.conf) loads without an error or
a warning as it is, and with every commented-out setting ("# key = value")
switched on: no explanation trails a value that an operator uncomments.

usage: conf_sample.py CONF_DOC SAMPLE"""
import os
import re
import subprocess
import sys
import tempfile


def check(conf_doc, text, what):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as fp:
        fp.write(text)
    try:
        r = subprocess.run([conf_doc, "--check", fp.name], capture_output=True, text=True)
    finally:
        os.unlink(fp.name)
    if r.returncode != 0 or r.stdout or r.stderr:
        print(f"FAIL: {what}: exit {r.returncode}\n{r.stdout}{r.stderr}".replace(fp.name, "SAMPLE"))
        return False
    return True


def main():
    conf_doc, sample = sys.argv[1], sys.argv[2]
    with open(sample) as fp:
        text = fp.read()
    on = re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", text)
    n = len(re.findall(r"(?m)^# [a-z_]+ = ", text))
    ok = check(conf_doc, text, "the sample as shipped")
    ok = check(conf_doc, on, f"the sample with its {n} commented-out settings on") and ok
    print(f"{n} commented-out settings")
    sys.exit(0 if ok and n >= 10 else 1)


if __name__ == "__main__":
    main()
