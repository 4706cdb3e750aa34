"""Processes that lie about what they are: a command line (or name) that does not
match the executable the kernel says they run."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from forensics.findings.facts import (
    Facts,
    Rec,
    argv,
    exe_path,
    file_evidence,
    proc_evidence,
    proc_label,
    proc_subject,
)
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "cmdline"

#: names of kernel threads (shown in brackets by ps) that user processes imitate
KERNEL_THREAD_NAMES = (
    r"kworker",
    r"ksoftirqd",
    r"kthreadd",
    r"kswapd",
    r"migration/",
    r"rcu_",
    r"watchdog/",
    r"jbd2/",
    r"khugepaged",
    r"kdevtmpfs",
    r"kauditd",
    r"ksmd",
    r"kblockd",
    r"cpuhp/",
    r"irq/",
    r"kcompactd",
    r"oom_reaper",
)


def first_word(p: Rec) -> str | None:
    """argv[0], or its first word when the command line was rewritten into one string."""
    args = argv(p)
    if not args or not args[0].strip():
        return None
    return args[0].split()[0]


def kernel_thread_name(facts: Facts, rule: Rule) -> Iterator[Hit]:
    names = "|".join(rule.params["names"])
    pattern = re.compile(rf"^\[?(?:{names})")
    for p in facts.user_processes():
        word = first_word(p)
        comm = str(p.get("name") or "")
        shown = next((n for n in (comm, word) if n and pattern.match(n)), None)
        if shown is None:
            continue
        values = {"proc": proc_label(p), "shown": shown, "exe": p.get("exe")}
        attrs = {"pid": p.get("pid"), "name": comm, "argv0": word, "exe": p.get("exe")}
        yield Hit(proc_subject(p), values, (proc_evidence(p),), p.get("start_ns"), attrs)


def _alias(facts: Facts, name: str, exe: str) -> bool:
    """Whether ``name`` (a bare argv[0]) is a symlink of the image that leads to ``exe``."""
    for link in facts.symlinks:
        if posixpath.basename(link) == name and facts.resolve(link) == facts.resolve(exe):
            return True
    return False


def claims_other_program(facts: Facts, rule: Rule) -> Iterator[Hit]:
    for p in facts.user_processes():
        word, exe = first_word(p), exe_path(p)
        if word is None or exe is None or not exe.startswith("/") or p.get("exe_memfd"):
            continue
        claimed: str | None = None
        if word.startswith("/"):
            if facts.resolve(word) != facts.resolve(exe) and word != exe:
                claimed = word
        elif "/" not in word and word != posixpath.basename(exe):
            others = [x for x in facts.executables.get(word, []) if x != exe]
            if others and not _alias(facts, word, exe):
                claimed = others[0]
        if claimed is None:
            continue
        ev: list[Evidence] = [proc_evidence(p, "its command line and executable")]
        for path in (exe, claimed):
            entry = facts.files.get(path)
            if entry is not None:
                role = "the real executable" if path == exe else "the program it names"
                ev.append(file_evidence(entry, role))
        values = {"proc": proc_label(p), "claimed": claimed, "exe": p.get("exe")}
        attrs = {"pid": p.get("pid"), "argv0": word, "claimed": claimed, "exe": exe}
        yield Hit(proc_subject(p), values, tuple(ev), p.get("start_ns"), attrs)


RULES = (
    Rule(
        "cmdline.kernel-thread-name",
        Severity.HIGH,
        Strength.HEURISTIC,
        "{proc} is a user process named like a kernel thread ({shown}); it runs {exe}",
        "Kernel threads have no executable and never run in a container; a user process "
        "calling itself kworker, kthreadd or ksoftirqd is hiding in a process listing "
        "(a favourite of cryptominers and implants).",
        kernel_thread_name,
        params={"names": KERNEL_THREAD_NAMES},
        caveats="A program may legitimately pick such a name for a worker thread's "
        "process; rare in application containers.",
    ),
    Rule(
        "cmdline.claims-other-program",
        Severity.HIGH,
        Strength.DERIVED,
        "{proc} presents itself as {claimed} but runs {exe}",
        "argv[0] (or a rewritten command line) names a different program of the image "
        "than the executable the kernel shows in /proc/<pid>/exe: a process dressing up "
        "as a trusted service (sshd, nginx) so a glance at ps does not notice it. "
        "Symlinks of the image (busybox applets, python3 -> python3.11) are followed "
        "first, so aliases do not count.",
        claims_other_program,
        caveats="Multi-call binaries started through a name that is not a symlink of "
        "the image, and programs that set argv[0] to another installed tool's name. "
        "A bare argv[0] that no file of the image has (e.g. a worker process renamed "
        "'worker') is not reported.",
    ),
)
