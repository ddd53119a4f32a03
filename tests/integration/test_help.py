#!/usr/bin/env python3
"""-h and --help everywhere (issue 11): every program and every tlsrptctl
subcommand answers both with its complete usage on stdout, nothing on
stderr, exit 0, without reading a configuration; and the usage names every
option and subcommand the code accepts. What the code accepts is read from
the sources (getopt strings, long-option tables, strcmp'd "--options" and
subcommand words), so a new option without help fails this test."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, SOURCE, check, check_eq, done  # noqa: E402

PROGRAMS = {
    "tlsrptd": os.path.join(BUILD, "milter", "tlsrptd"),
    "tlsrpt-milter": os.path.join(BUILD, "milter", "tlsrpt-milter"),
    "tlsrpt-policyd": os.path.join(BUILD, "milter", "tlsrpt-policyd"),
    "tlsrpt-report": os.path.join(BUILD, "reporter", "tlsrpt-report"),
    "tlsrptctl": os.path.join(BUILD, "reporter", "tlsrptctl"),
}
# where each program's command line is parsed
SOURCES = {
    "tlsrptd": ["lib/core/cmdline.c"],
    "tlsrpt-milter": ["lib/core/cmdline.c"],
    "tlsrpt-policyd": ["lib/core/cmdline.c"],
    "tlsrpt-report": ["reporter/tlsrpt-report.c"],
}
# tlsrptctl: the files of each subcommand (reporter/tlsrptctl.c dispatches)
CTL_SOURCES = {
    "stats": ["reporter/ctl_collector.c"], "dump": ["reporter/ctl_collector.c"],
    "spool": ["reporter/ctl_spool.c"],
    "received": ["reporter/ctl_received.c", "reporter/ctl_check.c"],
    "record": ["reporter/ctl_record.c"], "sts": ["reporter/ctl_sts.c"],
    "dkim": ["reporter/ctl_dkim.c"],
    "dashboard": ["reporter/ctl_dashboard.c"], "metrics": ["reporter/ctl_metrics.c"],
    "push": ["reporter/ctl_push.c"], "db": ["reporter/ctl_db.c"],
}
# a nonexistent configuration: help must not need one
NOCONF = "/nonexistent/tlsrptd.conf"


def read(rel):
    with open(os.path.join(SOURCE, rel)) as fp:
        return fp.read()


def options_in(text):
    """Every option the C source accepts: short options of getopt strings,
    long options of option tables, "--x" literals compared with strcmp."""
    opts = set()
    for m in re.finditer(r'getopt(?:_long)?\([^;]*?,\s*"([^"]*)"', text):
        for ch in m.group(1).lstrip("+:"):
            if ch.isalnum():
                opts.add("-" + ch)
    for m in re.finditer(r'\{\s*"([a-z][a-z-]*)",\s*(?:no|required|optional)_argument', text):
        opts.add("--" + m.group(1))
    for m in re.finditer(r'strcmp\(argv\[[a-z0-9 +]+\],\s*"(--[a-z][a-z-]*)"\)', text):
        opts.add(m.group(1))
    return opts


def words_in(text):
    """Subcommand words: strcmp(argv[1], "word")."""
    return set(re.findall(r'strcmp\(argv\[1\],\s*"([a-z]+)"\)', text))


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=20)


def help_ok(args, what):
    """Both -h and --help (appended): usage on stdout, exit 0, no stderr;
    the two agree. Returns the text."""
    outs = []
    for flag in ("-h", "--help"):
        r = run(args + [flag])
        check_eq((r.returncode, r.stderr), (0, ""), f"{what} {flag}: exit, stderr")
        check(r.stdout.startswith("usage:"), f"{what} {flag}: stdout {r.stdout[:80]!r}")
        outs.append(r.stdout)
    check_eq(outs[0], outs[1], f"{what}: -h and --help")
    return outs[1]


def names(text, opt):
    """Is 'opt' in the help text as a word of its own?"""
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


def main():
    # the daemons and the reporter
    for prog in ("tlsrptd", "tlsrpt-milter", "tlsrpt-policyd", "tlsrpt-report"):
        text = help_ok([PROGRAMS[prog], "-c", NOCONF], prog)
        want = set()
        for src in SOURCES[prog]:
            want |= options_in(read(src))
        check(len(want) >= 6, f"{prog}: found only {sorted(want)} in the sources")
        for opt in sorted(want):
            check(names(text, opt), f"{prog} --help does not name {opt}")
    r = run([PROGRAMS["tlsrpt-report"], "-c", NOCONF, "run", "--help"])
    check_eq((r.returncode, r.stderr, r.stdout.startswith("usage:")), (0, "", True),
             "tlsrpt-report run --help")
    # a usage error goes to stderr with exit 64, not to stdout
    for prog in ("tlsrptd", "tlsrpt-report", "tlsrptctl"):
        r = run([PROGRAMS[prog], "--no-such-option"])
        check_eq((r.returncode, r.stdout), (64, ""), f"{prog} --no-such-option: exit, stdout")
        check("usage:" in r.stderr, f"{prog} --no-such-option: stderr {r.stderr[:80]!r}")

    # tlsrptctl: the whole usage names every command, subcommand and option
    ctl = PROGRAMS["tlsrptctl"]
    top = help_ok([ctl, "-c", NOCONF], "tlsrptctl")
    for opt in sorted(options_in(read("reporter/tlsrptctl.c"))):
        check(names(top, opt), f"tlsrptctl -h does not name {opt}")
    commands = re.findall(r'\{\s*"([a-z]+)",\s*ctl_[a-z]+,', read("reporter/tlsrptctl.c"))
    check_eq(sorted(commands), sorted(CTL_SOURCES), "tlsrptctl commands")
    for cmd in commands:
        src = "".join(read(f) for f in CTL_SOURCES[cmd])
        own = help_ok([ctl, "-c", NOCONF, cmd], f"tlsrptctl {cmd}")
        check(names(top, cmd), f"tlsrptctl -h does not name the command {cmd}")
        opts = options_in(src)
        subs = words_in(src)
        if cmd in ("stats", "dump"):
            # one file, two commands: each option must be in one of the two
            both = own + help_ok([ctl, "-c", NOCONF, "dump" if cmd == "stats" else "stats"], "")
            for opt in sorted(opts):
                check(names(both, opt) and names(top, opt), f"tlsrptctl {cmd}: {opt} not in the help")
            continue
        for opt in sorted(opts - {"--"}):
            check(names(own, opt), f"tlsrptctl {cmd} --help does not name {opt}")
            check(names(top, opt), f"tlsrptctl -h does not name {opt} (of {cmd})")
        for sub in sorted(subs):
            check(names(own, f"{cmd} {sub}".split()[1]) and f"{cmd} {sub}" in own,
                  f"tlsrptctl {cmd} --help does not name {cmd} {sub}")
            check(f"{cmd} {sub}" in top, f"tlsrptctl -h does not name {cmd} {sub}")
            # and the subcommand's own help
            text = help_ok([ctl, "-c", NOCONF, cmd, sub], f"tlsrptctl {cmd} {sub}")
            check_eq(text, own, f"tlsrptctl {cmd} {sub} --help: the command's usage")
    # the options the issue named are there
    for opt in ("--html", "--days", "--domain", "--trusted", "--json", "--input", "--day", "--rua"):
        check(names(top, opt), f"tlsrptctl -h does not name {opt}")
    done("help")


if __name__ == "__main__":
    main()
