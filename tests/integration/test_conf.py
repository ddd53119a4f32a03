#!/usr/bin/env python3
"""Configuration mistakes are caught where they are made (issue 11 item 5,
issue 9 item 4): tests/conf/*.conf holds one configuration per file, each
broken in one way (or good), with the command to run and the exact result
in its header:

    # run: tlsrptd -n              program and arguments (-c FILE is added)
    # as: nobody                   optional: run as this user (needs root)
    # root: yes                    optional: the case needs root
    # exit: 78
    # stderr: tlsrptd: fatal: @FILE@:9: rua_source: ...   (one line each)
    # stdout: ...                  (one line each; none: empty)

In the expected text and in the configuration, @FILE@ is the file's path
and @TMP@ a fresh directory of the case with:
    @TMP@/w          a directory everyone may write (1777)
    @TMP@/rootonly   a directory only root may enter (0700)
    @TMP@/key.pem    a file everyone may read; @TMP@/secret.pem root's only
    @TMP@/journal/system.journal      a journal file everyone may read
    @TMP@/rootjournal/system.journal  one only root may read
@CHECKUSER@ is the user -n says it checked as (see confcheck.h)."""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, SOURCE, check, check_eq, done  # noqa: E402

PROGRAMS = {
    "tlsrptd": os.path.join(BUILD, "milter", "tlsrptd"),
    "tlsrpt-milter": os.path.join(BUILD, "milter", "tlsrpt-milter"),
    "tlsrpt-policyd": os.path.join(BUILD, "milter", "tlsrpt-policyd"),
    "tlsrpt-report": os.path.join(BUILD, "reporter", "tlsrpt-report"),
    "tlsrptctl": os.path.join(BUILD, "reporter", "tlsrptctl"),
}
# the program's own user in the privilege layout (TEAM.md)
SERVICE_USER = {"tlsrptd": "tlsrptd", "tlsrpt-milter": "tlsrpt-milter",
                "tlsrpt-policyd": "tlsrpt-policyd", "tlsrpt-report": "tlsrpt-report"}
CASES = os.path.join(SOURCE, "tests", "conf")


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check_user(prog, conf_text, as_user):
    """Whom -n checks as: 'user' (daemons), else as root the program's own
    user if it exists, else the caller."""
    for line in conf_text.splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "user" and v.strip() and prog != "tlsrpt-report":
            return v.strip()
    if as_user:
        return as_user
    if os.geteuid() == 0 and user_exists(SERVICE_USER.get(prog, "")):
        return SERVICE_USER[prog]
    return pwd.getpwuid(os.geteuid()).pw_name


def make_tmp():
    tmp = tempfile.mkdtemp(prefix="conf.")
    os.chmod(tmp, 0o755)
    os.mkdir(os.path.join(tmp, "w"))
    os.chmod(os.path.join(tmp, "w"), 0o1777)
    os.mkdir(os.path.join(tmp, "rootonly"), 0o700)
    for name, mode in (("key.pem", 0o644), ("secret.pem", 0o600),
                       ("journal/system.journal", 0o644), ("rootjournal/system.journal", 0o600)):
        os.makedirs(os.path.dirname(os.path.join(tmp, name)), mode=0o755, exist_ok=True)
        with open(os.path.join(tmp, name), "w") as fp:
            fp.write("not a key, only its permissions matter here\n")
        os.chmod(os.path.join(tmp, name), mode)
    return tmp


def parse(path):
    head = {"stderr": [], "stdout": []}
    with open(path) as fp:
        text = fp.read()
    for line in text.splitlines():
        if not line.startswith("# "):
            continue
        key, sep, val = line[2:].partition(": ")
        if not sep and line[2:].endswith(":"):
            key, val = line[2:-1], ""
        if key in ("stderr", "stdout"):
            head[key].append(val)
        elif key in ("run", "as", "root", "exit"):
            head[key] = val
    return text, head


def run_case(path):
    name = os.path.basename(path)
    text, head = parse(path)
    if "run" not in head or "exit" not in head:
        check(False, f"{name}: no '# run:' or '# exit:' line")
        return
    if (head.get("root") == "yes" or head.get("as")) and os.geteuid() != 0:
        print(f"{name}: not run: needs root (to check as another user)")
        return
    tmp = make_tmp()
    try:
        conf = os.path.join(tmp, "tlsrptd.conf")
        body = text.replace("@TMP@", tmp)
        with open(conf, "w") as fp:
            fp.write(body)
        os.chmod(conf, 0o644)
        argv = head["run"].split()
        prog = argv[0]
        cmd = [PROGRAMS[prog], "-c", conf] + argv[1:]
        if head.get("as"):
            cmd = ["setpriv", "--reuid=" + head["as"], "--regid=nogroup", "--clear-groups"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=tmp)
        subst = {"@FILE@": conf, "@TMP@": tmp,
                 "@CHECKUSER@": check_user(prog, body, head.get("as"))}

        def expect(lines):
            out = "".join(line + "\n" for line in lines)
            for k, v in subst.items():
                out = out.replace(k, v)
            return out
        check_eq(r.returncode, int(head["exit"]), f"{name}: exit (stderr {r.stderr!r})")
        check_eq(r.stderr, expect(head["stderr"]), f"{name}: stderr")
        check_eq(r.stdout, expect(head["stdout"]), f"{name}: stdout")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    cases = sorted(glob.glob(os.path.join(CASES, "*.conf")))
    check(len(cases) >= 20, f"only {len(cases)} cases in {CASES}")
    for path in cases:
        run_case(path)
    print(f"{len(cases)} configurations")
    done("conf")


if __name__ == "__main__":
    main()
