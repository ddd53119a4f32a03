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
        if line.startswith("```"):
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
        if line.startswith("```"):
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
    """The commands of a code block: no blank lines, no comment lines;
    a trailing comment after two spaces is kept (it is part of the line)."""
    return [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]


POSTFIX_SECTION = "Postfix: what to add to an existing Postfix"
GEN_SECTION = {"3.10": "Postfix 3.10 and later", "3.7": "Postfix 3.7 to 3.9"}
# the README's placeholder for the report sender, and what it becomes here
SENDER_PLACEHOLDER = "tlsrpt-noreply@example.com"


def block_after(blocks, lead, where):
    """The first code block whose preceding paragraph starts with lead."""
    for before, lines in blocks:
        if before.startswith(lead):
            return lines
    raise ReadmeError("README %s: no code block after a paragraph starting %r" % (where, lead))


def conf_lines(lines):
    """key = value lines of a config block (comments dropped)."""
    out = []
    for l in command_lines(lines):
        k, sep, v = l.partition("=")
        if not sep:
            raise ReadmeError("not a key = value line: %r" % l)
        out.append((k.strip(), v.strip()))
    return out


class Postfix:
    """The README's Postfix lines for one generation: main.cf (applied with
    postconf -e), the master.cf entry (appended), and the tlsrptd.conf
    lines that go with them."""

    def __init__(self, text, gen):
        sec = section(section(text, POSTFIX_SECTION), GEN_SECTION[gen], level=3)
        where = "section %r" % GEN_SECTION[gen]
        blocks = code_blocks(sec)
        self.main_cf = command_lines(block_after(blocks, "`/etc/postfix/main.cf`", where))
        self.master_cf = [l for l in block_after(blocks, "`/etc/postfix/master.cf`", where)
                          if l.strip()]
        self.tlsrptd_conf = conf_lines(block_after(blocks, "tlsrptd side", where))


def set_conf(text, key, value):
    """The edit an operator makes: the first line that sets key, or the
    commented-out sample line for it ('# key = ...'), becomes 'key = value';
    without either, the line is appended."""
    lines = text.split("\n")
    rx = re.compile(r"^\s*(#\s*)?%s\s*=" % re.escape(key))
    for i, l in enumerate(lines):
        if rx.match(l) and not l.lstrip().startswith("#"):
            lines[i] = "%s = %s" % (key, value)
            return "\n".join(lines)
    for i, l in enumerate(lines):
        if rx.match(l):
            lines[i] = "%s = %s" % (key, value)
            return "\n".join(lines)
    return text.rstrip("\n") + "\n%s = %s\n" % (key, value)


class Steps:
    """The install steps for one release, each quoting the README."""

    CONF = "/etc/tlsrptd/tlsrptd.conf"

    def __init__(self, release, sender, organization):
        self.release = release
        self.gen = "3.10" if release == "trixie" else "3.7"
        self.text = read_readme()
        self.postfix = Postfix(self.text, self.gen)
        self.sender = sender
        self.organization = organization
        self.units = []
        self.install = section(self.text, "Installing")
        self.done = []          # README command lines the test carried out

    def quote(self, line, log):
        """A command line of the Installing section that the test carries
        out now: it must be there, word for word."""
        if line not in self.install_lines():
            raise ReadmeError("the test runs %r, which the README's Installing section "
                              "does not say (its commands: %r)" % (line, self.install_lines()))
        self.done.append(line)
        log("README: " + line)

    def install_lines(self):
        out = []
        for _, lines in code_blocks(self.install):
            out += command_lines(lines)
        return out

    def not_done(self):
        """Command lines of the Installing section the test did not do."""
        return [l for l in self.install_lines() if l not in self.done]

    def packages(self):
        return ["tlsrptd", "tlsrpt-milter", "tlsrpt-policyd"]

    def enabled(self, unit):
        return unit in self.units

    def sub(self, line):
        return line.replace(SENDER_PLACEHOLDER, self.sender)

    def run_install(self, c, log):
        m = c.m
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        # the operator answers apt's question
        cmd = "apt install " + " ".join(self.packages())
        self.quote(cmd, log)
        m.sh(cmd, input="Y\n", env=env, timeout=600)
        # the one config file
        conf = m.read(self.CONF)
        edits = [("organization_name", self.organization), ("contact_info", self.sender)]
        edits += [(k, self.sub(v)) for k, v in self.postfix.tlsrptd_conf]
        for k, v in edits:
            log("README: %s: %s = %s" % (self.CONF, k, v))
            conf = set_conf(conf, k, v)
        m.write(self.CONF, conf)
        # the Postfix lines
        for line in self.postfix.main_cf:
            log("README: postconf -e '%s'" % self.sub(line))
            m.run(["postconf", "-e", self.sub(line)])
        entry = "\n".join(self.sub(l) for l in self.postfix.master_cf) + "\n"
        log("README: append to /etc/postfix/master.cf:\n" + entry)
        m.sh("cat >> /etc/postfix/master.cf", input=entry)
        for cmd in ("systemctl enable --now tlsrptd tlsrpt-report.timer", "postfix reload"):
            self.quote(cmd, log)
            m.sh(cmd)
        self.units = ["tlsrptd.service", "tlsrpt-report.timer"]
