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
    to the next heading of the same or a higher level."""
    h = "#" * level + " "
    lines = text.split("\n")
    out, inside = [], False
    for line in lines:
        m = re.match(r"(#{1,6}) ", line)
        if m and not _in_fence(out) if inside else m:
            if inside and len(m.group(1)) <= level:
                break
            if not inside and line.strip() == (h + title).strip():
                inside = True
                continue
        if inside:
            out.append(line)
    if not inside:
        raise ReadmeError("README.md has no section %r" % (h + title))
    return "\n".join(out)


def _in_fence(lines):
    return sum(1 for l in lines if l.startswith("```")) % 2 == 1


def code_blocks(text):
    """[(the paragraph before the block, [lines of the block])]."""
    blocks, cur, para, before = [], None, [], ""
    for line in text.split("\n"):
        if line.startswith("```"):
            if cur is None:
                cur = []
                before = "\n".join(para).strip()
            else:
                blocks.append((before, cur))
                cur, para = None, []
            continue
        if cur is not None:
            cur.append(line)
        elif line.strip():
            para.append(line)
        else:
            para = []
    if cur is not None:
        raise ReadmeError("unterminated code block in the README")
    return blocks


def command_lines(lines):
    """The commands of a code block: no blank lines, no comment lines;
    a trailing comment after two spaces is kept (it is part of the line)."""
    return [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
