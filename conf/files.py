#!/usr/bin/env python3
"""conf/files.table -> tmpfiles.d and the README table.

  files.py tmpfiles PACKAGE   the systemd-tmpfiles lines of PACKAGE
  files.py markdown           the table for the README
  files.py check README DIR   exit 1 unless DIR/PACKAGE.conf and README match
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def rows():
    with open(os.path.join(HERE, "files.table")) as fp:
        for line in fp:
            if not line.strip() or line.startswith("#"):
                continue
            f = line.split(None, 7)
            if len(f) != 8 or f[1] not in "dfs" or len(f[2]) != 4:
                raise SystemExit("files.table: bad row: " + line.rstrip())
            yield dict(zip(("path", "type", "mode", "owner", "group", "package", "made", "writer"),
                           [x.strip() for x in f]))


def tmpfiles(pkg):
    out = ["# Generated from conf/files.table by conf/files.py: edit the table.",
           "# Directories of the %s package, made before any unit starts." % pkg]
    for r in rows():
        if r["package"] == pkg and r["made"] == "tmpfiles":
            out.append("d %s %s %s %s -" % (r["path"], r["mode"], r["owner"], r["group"]))
    return "\n".join(out) + "\n"


def markdown():
    kind = {"d": "dir", "f": "file", "s": "socket"}
    out = ["| path | type | owner:group | mode | package | made by | written by |",
           "|---|---|---|---|---|---|---|"]
    for r in rows():
        out.append("| `%s` | %s | %s:%s | %s | %s | %s | %s |" % (
            r["path"], kind[r["type"]], r["owner"], r["group"], r["mode"], r["package"],
            r["made"], r["writer"]))
    return "\n".join(out) + "\n"


def packages():
    return sorted({r["package"] for r in rows() if r["made"] == "tmpfiles"})


def main(argv):
    if len(argv) == 3 and argv[1] == "tmpfiles":
        sys.stdout.write(tmpfiles(argv[2]))
    elif len(argv) == 2 and argv[1] == "markdown":
        sys.stdout.write(markdown())
    elif len(argv) == 4 and argv[1] == "check":
        bad = []
        for p in packages():
            path = os.path.join(argv[3], p + ".conf")
            got = open(path).read() if os.path.exists(path) else ""
            if got != tmpfiles(p):
                bad.append("%s differs from conf/files.table (run: conf/files.py tmpfiles %s > %s)"
                           % (path, p, path))
        if markdown() not in open(argv[2]).read():
            bad.append("%s does not hold the table of conf/files.table (conf/files.py markdown)"
                       % argv[2])
        for b in bad:
            print(b, file=sys.stderr)
        return 1 if bad else 0
    else:
        sys.stderr.write(__doc__)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
