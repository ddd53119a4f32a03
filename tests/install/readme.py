"""readme - the README's install steps, as the install test does them.

The test does exactly what README.md says, word for word, and checks it
both ways on every run:
  * every step the test runs quotes its README text, and that text must be
    in the README (a command line of a code block, or the code block of a
    named subsection);
  * every command line of the code blocks of the "Installing" section must
    be a step the test runs (or one it names as done on the build host:
    building the packages).
So a README change that the test does not follow, or a test step that the
README does not say, fails the test with the line in question.
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
README = os.path.join(SOURCE_DIR, "README.md")


class ReadmeError(RuntimeError):
    pass


def read_readme():
    with open(README, encoding="utf-8") as fp:
        return fp.read()


def section(text, title, level=2):
    """The text of the section whose heading is '#'*level + ' ' + title, up
    to the next heading of the same or a higher level (headings inside
    code blocks do not count)."""
    want = "#" * level + " " + title
    out, inside, fence = [], False, False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"(#{1,6}) ", line)
        if m and inside and len(m.group(1)) <= level:
            break
        if inside:
            out.append(line)
        elif m and line.strip() == want:
            inside = True
    if not inside:
        raise ReadmeError("README.md has no section %r" % want)
    return "\n".join(out)


def code_blocks(text):
    """[(the paragraph before the block, [lines of the block])]."""
    blocks, cur, para, last, before = [], None, [], "", ""
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            if cur is None:
                cur = []
                before = "\n".join(para).strip() or last
            else:
                blocks.append((before, cur))
                cur, para, last = None, [], ""
            continue
        if cur is not None:
            cur.append(line)
        elif line.strip():
            para.append(line)
        elif para:
            last, para = "\n".join(para).strip(), []
    if cur is not None:
        raise ReadmeError("unterminated code block in the README")
    return blocks


def command_lines(lines):
    """The commands of a code block: no blank lines, no comment lines,
    continuation lines (ending in a backslash) joined as the shell joins
    them; a trailing comment is kept (it is part of the line)."""
    out, cur = [], ""
    for l in lines:
        t = l.strip()
        if not cur and (not t or t.startswith("#")):
            continue
        if t.endswith("\\"):
            cur += t[:-1].rstrip() + " "
            continue
        out.append(cur + t)
        cur = ""
    if cur:
        out.append(cur.rstrip())
    return out


def flat(text):
    """Text with markup quotes and line breaks gone, for finding a command
    the README gives inline in its prose."""
    return " ".join(text.replace("`", "").split())



def set_conf(text, key, value):
    """The edit an operator makes: the line that sets key, or else its
    commented-out sample line ('# key = ...'), becomes 'key = value';
    without either, the line is appended."""
    lines = text.split("\n")
    rx = re.compile(r"^\s*(#\s*)?%s\s*=" % re.escape(key))
    for commented in (False, True):
        for i, l in enumerate(lines):
            if rx.match(l) and l.lstrip().startswith("#") == commented:
                lines[i] = "%s = %s" % (key, value)
                return "\n".join(lines)
    return text.rstrip("\n") + "\n%s = %s\n" % (key, value)


# What the test does for each command of the Installing section, in the
# README's order. Steps are (README text, what the test runs) or, for
# commands given inline in the prose, prose=True. RELEASE in a README
# text is the release the test installs: the README gives Debian 13's
# paths and says "Debian 12: build-deb/bookworm/".
HOST_BUILD = [          # done on the build host by ./run test, not on the machine
    "./run deb           # packages for this machine's Debian release",
    "./run deb trixie    # Debian 13 packages, built in a Debian 13 build chroot",
    "./run deb bookworm  # Debian 12 packages",
]
CLONE = "/root/tlsrptd"       # the machine's copy of build-deb/ ("a clone")


class Steps:
    """The install steps of the README for one release, done in the
    machine word for word."""

    def __init__(self, release, milter_rua, authserv_id):
        self.release = release
        self.gen = "3.10" if release == "trixie" else "3.7"
        self.text = read_readme()
        self.install = section(self.text, "Installing")
        self.milter_rua = milter_rua
        self.authserv_id = authserv_id
        self.done = list(HOST_BUILD)
        self.units = []

    # -- the README, both ways
    def install_lines(self):
        out = []
        for _, lines in code_blocks(self.install):
            out += command_lines(lines)
        return out

    def quote(self, line, log, prose=False):
        """A command of the Installing section that the test carries out:
        it must be there, word for word (a code block line, or inline in
        the prose)."""
        if prose:
            if flat(line) not in flat(self.install):
                raise ReadmeError("the test runs %r, which the README's Installing "
                                  "section does not say" % line)
        elif line not in self.install_lines():
            raise ReadmeError("the test runs %r, which is not a command line of the "
                              "README's Installing section: %r" % (line, self.install_lines()))
        self.done.append(line)
        log("README: " + line)

    def not_done(self):
        """Command lines of the Installing section the test did not do."""
        return [l for l in self.install_lines() if l not in self.done]

    def packages(self):
        return ["tlsrptd", "tlsrpt-milter", "tlsrpt-policyd"]

    def enabled(self, unit):
        return unit in self.units

    # -- doing it
    def here(self, line):
        """The README's Debian 13 paths, for the release being installed."""
        return line.replace("build-deb/trixie/", "build-deb/%s/" % self.release)

    def sh(self, c, line, log, prose=False, release=None, **kw):
        """Run one README command in the machine's shell, as root, in the
        directory with build-deb/ (the README's "clone")."""
        if release and release != self.release:
            self.done.append(line)          # the other release's variant
            return None
        self.quote(line, log, prose)
        return c.m.sh("cd %s && %s" % (CLONE, self.here(line)), **kw)

    def run_install(self, c, log, debs, repo):
        m = c.m
        # the operator's copy of build-deb/RELEASE/ (the .debs are on the
        # machine's disk already, in the local repository)
        dest = "%s/build-deb/%s" % (CLONE, self.release)
        m.run(["mkdir", "-p", dest])
        m.run(["cp"] + ["%s/%s" % (repo, d.rsplit("/", 1)[1]) for d in debs] + [dest])
        # 1. Install (the operator answers apt's question). The README's
        # line is tlsrptd alone; "Add ... tlsrpt-milter ... and tlsrpt-policyd
        # ... to the same line": the test installs all three.
        base = "apt install ./build-deb/trixie/tlsrptd_*_amd64.deb"
        self.quote(base, log)
        for extra in ("./build-deb/trixie/tlsrpt-milter_*_amd64.deb",
                      "./build-deb/trixie/tlsrpt-policyd_*_amd64.deb"):
            if flat(extra) not in flat(self.install):
                raise ReadmeError("the README no longer says to add %s" % extra)
        line = self.here(base + " ./build-deb/trixie/tlsrpt-milter_*_amd64.deb "
                         "./build-deb/trixie/tlsrpt-policyd_*_amd64.deb")
        log("README (one line, three packages): " + line)
        m.sh("cd %s && %s" % (CLONE, line), input="Y\n",
             env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
        # 2. The one file
        blocks = [command_lines(l) for _, l in code_blocks(self.install)]
        sed = [b for b in blocks if b and b[0].startswith("sed -i")]
        if len(sed) != 2:
            raise ReadmeError("expected two sed blocks in Installing (all, Debian 12): %r" % sed)
        self.sh(c, sed[0][0], log)
        for line in sed[1]:
            self.sh(c, line, log, release="bookworm")
        # the milter's keys ("uncomment and set milter_rua_addresses (and
        # milter_authserv_id)"), as the operator edits them
        for k in ("milter_rua_addresses", "milter_authserv_id"):
            if k not in self.install:
                raise ReadmeError("the README no longer names %s" % k)
        conf = m.read("/etc/tlsrptd/tlsrptd.conf")
        conf = set_conf(conf, "milter_rua_addresses", self.milter_rua)
        conf = set_conf(conf, "milter_authserv_id", self.authserv_id)
        log("README: uncomment and set milter_rua_addresses = %s, milter_authserv_id = %s" % (
            self.milter_rua, self.authserv_id))
        # "with tlsrpt-policyd on Debian 12, postfix_generation = 3.7"
        if self.release == "bookworm":
            self.quote("with tlsrpt-policyd on Debian 12, postfix_generation = 3.7", log,
                       prose=True)
            conf = set_conf(conf, "postfix_generation", "3.7")
        m.write("/etc/tlsrptd/tlsrptd.conf", conf)
        # 3. DKIM key
        self.sh(c, "tlsrptctl dkim generate", log)
        # 4. Postfix
        pc = [b for b in blocks if b and b[0].startswith("postconf -e")]
        if len(pc) != 2 or len(pc[0]) != 2 or len(pc[1]) != 2:
            raise ReadmeError("expected two Postfix blocks (postconf, master.cf) in "
                              "Installing: %r" % pc)
        for i, rel in enumerate(("trixie", "bookworm")):
            for line in pc[i]:
                self.sh(c, line, log, release=rel)
        self.sh(c, "postconf -e 'smtpd_milters = unix:run/tlsrpt-milter/milter.sock' "
                "'milter_default_action = accept'", log, prose=True)
        # the machine has a policy table of its own (self.test verify):
        # the README's form that keeps it in front of the policy service
        self.sh(c, "postconf -e 'smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy "
                "socketmap:unix:run/tlsrpt-policyd/policy.sock:postfix'",
                log, prose=True)
        # 5. Start
        self.sh(c, "systemctl enable --now tlsrptd tlsrpt-report.timer", log)
        self.sh(c, "systemctl reload postfix", log)
        self.sh(c, "systemctl enable --now tlsrpt-milter tlsrpt-policyd", log, prose=True)
        self.units = ["tlsrptd.service", "tlsrpt-report.timer", "tlsrpt-milter.service",
                      "tlsrpt-policyd.service"]
