#!/usr/bin/env python3
"""The man pages (build/man/ferry.1 and mount.ferry.8, made by tools/mkman from
docs/man/) against what ferry says of itself and what it accepts:

- the commands and subcommands of ferry(1)'s SYNOPSIS and COMMANDS are those of the
  usage lines of `ferry --help` and of every command's and subcommand's --help;
- every flag those usage lines show is described in the command's part of COMMANDS;
- the -o options of MOUNT OPTIONS (ferry(1)) and OPTIONS (mount.ferry(8)) are those
  `ferry mount --help` names, and those fs/mount.c's parser accepts; the generic mount(8)
  options mount.ferry(8) lists as ignored are those the parser drops;
- the options of CP AND LS OPTIONS are those tools/cli/cmd_data.c accepts;
- the bash completion (packaging/completion.bash) offers exactly the commands,
  subcommands, flags and -o names of ferry(1);
- man(1) renders both pages without a warning.

Each failure lists what one side has and the other lacks. No Azurite, no mount.

Run: python3 tests/integration/test_manpage.py [test_name ...]
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check  # noqa: E402

COMPLETION = os.path.join(ft.SRC, "packaging", "completion.bash")
HELP_FLAGS = {"-h", "--help"}  # every command takes them; the pages say so once


def man_dir():
    return os.path.join(os.path.dirname(os.path.abspath(ft.ferry_bin())), "man")


def page_path(page):
    path = os.path.join(man_dir(), page)
    check(os.path.isfile(path), "%s is missing: build the target 'man' (cmake --build)" % path)
    return path


# --------------------------------------------------------------------------------------
# roff

def unroff(s):
    s = re.sub(r"\\f[BIRP]", "", s)
    s = re.sub(r"\\\[u([0-9A-F]{4,5})\]", lambda m: chr(int(m.group(1), 16)), s)
    return s.replace("\\&", "").replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\")


class Page:
    """A page made by tools/mkman: its sections' lines, its subsections, the terms of its
    definitions (.TP) by section and subsection."""

    def __init__(self, page):
        with open(page_path(page), encoding="ascii") as f:
            self.lines = f.read().splitlines()
        self.name = page
        self.sections = {}   # name -> raw lines
        self.terms = {}      # (section, subsection or None) -> [term, ...]
        section = sub = None
        for i, line in enumerate(self.lines):
            if line.startswith(".SH "):
                section, sub = unroff(line[4:]).strip('"'), None
                self.sections[section] = []
                continue
            if line.startswith(".SS "):
                sub = unroff(line[4:]).strip('"')
                self.terms.setdefault((section, sub), [])
                continue
            if section:
                self.sections[section].append(line)
            if line == ".TP" and i + 1 < len(self.lines):
                self.terms.setdefault((section, sub), []).append(unroff(self.lines[i + 1]))

    def section(self, name):
        check(name in self.sections, "%s has no section %s (it has: %s)" % (
            self.name, name, ", ".join(self.sections)))
        return self.sections[name]

    def synopsis(self):
        """The command lines of SYNOPSIS (each after a .ti request)."""
        lines = self.section("SYNOPSIS")
        return [unroff(lines[i + 1]) for i, l in enumerate(lines) if l.startswith(".ti")]

    def subsections(self, section):
        return [sub for (sec, sub) in self.terms if sec == section and sub]

    def option_names(self, section):
        names = set()
        for term in self.terms.get((section, None), []):
            for spec in term.split(", "):
                name = spec.strip().split("=")[0]
                check(re.fullmatch(r"[a-z][a-z0-9_]*", name),
                      "%s %s: %r is not an option name (term %r)" % (
                          self.name, section, name, term))
                names.add(name)
        check(names, "%s: no options in %s" % (self.name, section))
        return names

    def paragraph(self, section, start):
        """The text of the paragraph of section that starts with start."""
        lines = self.section(section)
        for i, line in enumerate(lines):
            if unroff(line).startswith(start):
                para = []
                for l2 in lines[i:]:
                    if l2.startswith("."):
                        break
                    para.append(l2)
                return "\n".join(para)
        check(False, "%s %s: no paragraph starting %r" % (self.name, section, start))


# --------------------------------------------------------------------------------------
# usage lines: the same grammar in --help and in SYNOPSIS

FLAG = re.compile(r"(?<![\w-])(-{1,2}[A-Za-z][\w-]*)")
WORD = re.compile(r"[a-z]+")


def parse_usage(statements):
    """Usage statements ("ferry job logs RUN [--rank N] | show RUN ...", without the
    leading "ferry ") -> {(command, subcommand or None): set of flags}; a statement that
    starts with a flag (ferry --version) gives ('', None)."""
    found = {}
    for st in statements:
        words = st.split()
        if not words:
            continue
        if words[0].startswith("-"):
            found.setdefault(("", None), set()).update(FLAG.findall(st))
            continue
        cmd = words[0]
        key = (cmd, None)
        # "list [--experiment NAME] | show RUN": an alternative that starts with a
        # lower-case word is another subcommand; one that starts with a flag is not
        for alt in st[len(cmd):].split(" | "):
            aw = alt.split()
            if aw and WORD.fullmatch(aw[0]):
                key = (cmd, aw[0])
            found.setdefault(key, set()).update(FLAG.findall(alt))
    return found


def term_flags(term):
    """The flags a definition's term names: the first word of each of its ", " parts
    ("-o DIR, --download-path DIR" -> -o, --download-path)."""
    return {f for part in term.split(", ") for f in FLAG.findall(part.split(" ")[0])}


def usage_statements(text):
    """The statements of the usage block of a --help text: from the line starting
    'usage:' through the lines indented below it, split at each 'ferry '."""
    lines = text.splitlines()
    block, inside = [], False
    for line in lines:
        if line.startswith("usage:"):
            inside = True
            block.append(line[len("usage:"):])
        elif inside and line[:1].isspace() and line.strip():
            block.append(line)
        elif inside:
            break
    joined = " ".join(block)
    return [s.strip() for s in re.split(r"(?:^|\s)ferry\s+", joined) if s.strip()]


def help_text(*args):
    r = ft.ferry_cli(*(list(args) + ["--help"]))
    check(r.returncode == 0, "ferry %s --help: exit %d" % (" ".join(args), r.returncode))
    return r.stdout


def help_usage():
    """{(command, sub): flags} from ferry --help and every command's and subcommand's."""
    found = parse_usage(usage_statements(help_text()))
    for cmd in sorted({c for c, _ in found if c}):
        for key, flags in parse_usage(usage_statements(help_text(cmd))).items():
            found.setdefault(key, set()).update(flags)
    for cmd, sub in sorted(k for k in found if k[1]):
        for key, flags in parse_usage(usage_statements(help_text(cmd, sub))).items():
            found.setdefault(key, set()).update(flags)
    return found


def name(key):
    cmd, sub = key
    return " ".join(w for w in ("ferry", cmd, sub) if w)


def both_ways(a, b, what, a_name, b_name):
    """Fails listing what a has that b lacks and what b has that a lacks."""
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    msg = []
    if only_a:
        msg.append("%s in %s but not in %s: %s" % (what, a_name, b_name, ", ".join(only_a)))
    if only_b:
        msg.append("%s in %s but not in %s: %s" % (what, b_name, a_name, ", ".join(only_b)))
    check(not msg, "; ".join(msg))


def commands(found):
    return {name(k) for k in found if k[0]}


# --------------------------------------------------------------------------------------
# the parsers' tables

def parser_options(path, table):
    """The names of a fuse_opt table in a C file: (kept, dropped)."""
    with open(os.path.join(ft.SRC, path), encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"struct fuse_opt %s\[\] = \{(.*?)FUSE_OPT_END" % table, src, re.S)
    check(m, "%s: no fuse_opt table %s" % (path, table))
    kept, dropped = set(), set()
    for opt, key in re.findall(r'FUSE_OPT_KEY\("([^"]+)",\s*(\w+)\)', m.group(1)):
        if key == "FUSE_OPT_KEY_DISCARD":
            dropped.add(opt)
        else:
            kept.add(opt.rstrip("="))
    if 'strncmp(arg, "x-", 2)' in src:
        dropped.add("x-*")
    return kept, dropped


# --------------------------------------------------------------------------------------
# bash completion

def complete(line):
    """The words packaging/completion.bash offers at the end of line (split into words
    as bash does, with '=' a word of its own)."""
    script = r'''
source "$1"
COMP_LINE=$2 COMP_POINT=${#2}
read -ra COMP_WORDS <<<"${2//=/ = }"
[[ $2 == *[[:space:]] || $2 == *= ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
PATH=/nonexistent _ferry
printf '%s\n' "${COMPREPLY[@]}"
'''
    r = subprocess.run(["bash", "-c", script, "bash", COMPLETION, line], capture_output=True,
                       text=True, timeout=20)
    check(r.returncode == 0 and not r.stderr, "completion of %r: exit %d, stderr %r" % (
        line, r.returncode, r.stderr))
    return {w for w in r.stdout.splitlines() if w}


# --------------------------------------------------------------------------------------

def test_commands_match_help():
    """The commands and subcommands in ferry(1)'s SYNOPSIS, in its COMMANDS subsections,
    and in the usage lines of every --help are the same."""
    page = Page("ferry.1")
    man = parse_usage(s[len("ferry "):] for s in page.synopsis())
    helps = help_usage()
    both_ways(commands(helps), commands(man), "commands", "--help", "ferry(1) SYNOPSIS")
    both_ways(commands(man), [s for s in page.subsections("COMMANDS") if s != "ferry --version"],
              "commands", "ferry(1) SYNOPSIS", "ferry(1) COMMANDS")
    both_ways(helps.get(("", None), set()), man.get(("", None), set()),
              "options of ferry itself", "ferry --help", "ferry(1) SYNOPSIS")


def test_flags_of_help_are_described():
    """Every flag a usage line shows (in --help or SYNOPSIS) is a term of the command's
    subsection of COMMANDS, and every such term names a flag some usage line shows (the
    others in it are its synonyms and long forms)."""
    page = Page("ferry.1")
    man = parse_usage(s[len("ferry "):] for s in page.synopsis())
    helps = help_usage()
    missing, unknown = [], []
    for key in sorted(set(man) | set(helps), key=lambda k: (k[0], k[1] or "")):
        if not key[0]:
            continue
        shown = helps.get(key, set()) | man.get(key, set())
        terms = page.terms.get(("COMMANDS", name(key)), [])
        described = set().union(*(term_flags(t) for t in terms)) if terms else set()
        missing += ["%s %s" % (name(key), f) for f in sorted(shown - described - HELP_FLAGS)]
        unknown += ["%s: %s" % (name(key), t) for t in terms if not term_flags(t) & shown]
    check(not missing, "flags in a usage line but not described in ferry(1) COMMANDS: %s"
          % ", ".join(missing))
    check(not unknown, "terms of ferry(1) COMMANDS with no flag of any usage line: %s"
          % "; ".join(unknown))


def mount_help_options():
    """The -o option names `ferry mount --help` gives: each NAME= in it, and the names at
    the start of the lines indented below a line that starts with 'Options' (the text
    before the first run of two spaces, split at commas: 'ro, rw   read-only ...')."""
    text = help_text("mount")
    names = set(re.findall(r"(?<![\w.-])([a-z][a-z0-9_]*)=", text))
    inside = False
    for line in text.splitlines():
        if re.match(r"(?i)options\b", line):
            inside = True
            continue
        if inside and line.startswith("  ") and line.strip():
            for spec in re.split(r"\s{2,}", line.strip())[0].split(","):
                n = spec.strip().split("=")[0]
                if re.fullmatch(r"[a-z][a-z0-9_]*", n):
                    names.add(n)
        elif inside:
            inside = False
    return names


def test_mount_options_match_help():
    """The -o options of ferry(1) MOUNT OPTIONS and of mount.ferry(8) OPTIONS are the ones
    `ferry mount --help` names."""
    helped = mount_help_options()
    both_ways(helped, Page("ferry.1").option_names("MOUNT OPTIONS"), "-o options",
              "ferry mount --help", "ferry(1) MOUNT OPTIONS")
    both_ways(helped, Page("mount.ferry.8").option_names("OPTIONS"), "-o options",
              "ferry mount --help", "mount.ferry(8) OPTIONS")


def test_mount_options_match_parser():
    """The -o options of both pages are the ones fs/mount.c's parser accepts, and the
    generic mount(8) options mount.ferry(8) calls ignored are the ones it drops."""
    kept, dropped = parser_options("fs/mount.c", "mount_opts")
    both_ways(kept, Page("ferry.1").option_names("MOUNT OPTIONS"), "-o options",
              "fs/mount.c", "ferry(1) MOUNT OPTIONS")
    page = Page("mount.ferry.8")
    both_ways(kept, page.option_names("OPTIONS"), "-o options", "fs/mount.c",
              "mount.ferry(8) OPTIONS")
    para = page.paragraph("OPTIONS", "Generic mount(8) options")
    listed = set()
    for bold in re.findall(r"\\fB(.*?)\\fR", para):
        opt = unroff(bold)
        if opt.startswith("x-") and opt != "x-*":
            continue  # an example of x-*
        listed.add(re.sub(r"=.*", "=", opt))
    both_ways(dropped, listed, "ignored generic options", "fs/mount.c",
              "mount.ferry(8) OPTIONS")


def test_cp_ls_options_match_parser():
    kept, _ = parser_options("tools/cli/cmd_data.c", "cmd_o_opts")
    both_ways(kept, Page("ferry.1").option_names("CP AND LS OPTIONS"), "-o options",
              "tools/cli/cmd_data.c", "ferry(1) CP AND LS OPTIONS")


def test_completion_matches_page():
    """packaging/completion.bash offers the commands, subcommands, flags and -o names of
    ferry(1), no more and no fewer."""
    page = Page("ferry.1")
    man = parse_usage(s[len("ferry "):] for s in page.synopsis())
    top = {c for c, _ in man if c} | man.get(("", None), set()) | {"--help"}
    both_ways(top, complete("ferry "), "words", "ferry(1)", "completion of 'ferry '")
    for cmd in sorted({c for c, s in man if s}):
        subs = {s for c, s in man if c == cmd and s} | {"--help"}
        both_ways(subs, complete("ferry %s " % cmd), "words", "ferry(1)",
                  "completion of 'ferry %s '" % cmd)
    for key in sorted((k for k in man if k[0]), key=lambda k: (k[0], k[1] or "")):
        described = set().union(set(), *(term_flags(t) for t in
                                         page.terms.get(("COMMANDS", name(key)), [])))
        line = "%s -" % name(key)
        both_ways(described | {"--help"}, complete(line), "flags", "ferry(1) COMMANDS",
                  "completion of %r" % line)
    for cmd, section in (("mount", "MOUNT OPTIONS"), ("cp", "CP AND LS OPTIONS"),
                         ("ls", "CP AND LS OPTIONS")):
        offered = {w.rstrip("=") for w in complete("ferry %s -o " % cmd)}
        both_ways(page.option_names(section), offered, "-o options",
                  "ferry(1) %s" % section, "completion of 'ferry %s -o '" % cmd)
    # values, and a list being typed
    check(complete("ferry mount -o ro,cache_d") == {"ro,cache_dir="},
          "completion of 'ferry mount -o ro,cache_d': %r" % complete("ferry mount -o ro,cache_d"))
    got = complete("ferry mount -o ro,log_level=")
    check(got == {"error", "warn", "info", "debug"}, "completion of log_level=: %r" % got)
    got = complete("ferry run --engine ")
    check(got == {"local", "slurm", "mpi"}, "completion of --engine: %r" % got)


def test_pages_render_without_warnings():
    """man(1) (groff) renders each page with no warning, and what it shows names the
    page."""
    if not shutil.which("man"):
        ft.log("SKIP rendering: man-db is not installed (apt-get install man-db)")
        return
    for page, title in (("ferry.1", "FERRY(1)"), ("mount.ferry.8", "MOUNT.FERRY(8)")):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page_path(page)],
                           capture_output=True, text=True, env=env, timeout=60)
        check(r.returncode == 0 and not r.stderr.strip(), "man -l %s: exit %d, warnings: %s" % (
            page, r.returncode, r.stderr.strip()[:1000]))
        check(r.stdout.lstrip().startswith(title), "man -l %s starts %r" % (page, r.stdout[:40]))


if __name__ == "__main__":
    ft.run()
