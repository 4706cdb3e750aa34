"""Environment variables that make a program load someone else's code."""

from __future__ import annotations

import re
from collections.abc import Iterator

from forensics.findings.facts import (
    Facts,
    environ,
    file_evidence,
    proc_evidence,
    proc_label,
    proc_subject,
)
from forensics.findings.model import Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "environment"

#: name -> (severity, a regular expression the value must match to count, why)
PRELOAD_VARIABLES: dict[str, tuple[Severity, str, str]] = {
    "LD_PRELOAD": (Severity.HIGH, r".", "loads a library into every program it starts"),
    "LD_AUDIT": (Severity.HIGH, r".", "loads an auditing library into every program"),
    "LD_LIBRARY_PATH": (
        Severity.MEDIUM,
        r"(^|:)(/tmp|/var/tmp|/dev/shm|/run)(/|:|$)|(^|:)\.?(:|$)",
        "searches a writable or the current directory for libraries first",
    ),
    "PYTHONSTARTUP": (Severity.MEDIUM, r".", "runs a file in every interactive Python"),
    "PERL5OPT": (Severity.MEDIUM, r"-[MmI]", "loads modules into every Perl program"),
    "NODE_OPTIONS": (Severity.MEDIUM, r"--(require|import|loader)|-r\b", "preloads a module"),
    "JAVA_TOOL_OPTIONS": (Severity.MEDIUM, r"-javaagent|-agentpath|-agentlib", "loads an agent"),
    "BASH_ENV": (Severity.MEDIUM, r".", "runs a file in every non-interactive bash"),
}
PRELOAD_FILE = "/etc/ld.so.preload"


def preload_env(facts: Facts, rule: Rule) -> Iterator[Hit]:
    table: dict[str, tuple[Severity, str, str]] = dict(rule.params["variables"])
    init = facts.init_process()
    init_env = (environ(init) if init is not None else None) or {}
    for p in facts.user_processes():
        env = environ(p)
        if env is None:
            continue
        for name, (severity, expr, why) in table.items():
            value = env.get(name)
            if not isinstance(value, str) or not re.search(expr, value):
                continue
            inherited = init_env.get(name) == value and p is not init
            source = (
                "also in the main process's environment"
                if inherited
                else "set for this process only"
                if p is not init
                else "in the main process's environment"
            )
            values = {"proc": proc_label(p), "name": name, "value": value[:200], "why": why,
                      "source": source}  # fmt: skip
            attrs = {"pid": p.get("pid"), "variable": name, "value": value, "inherited": inherited}
            yield Hit(
                f"{proc_subject(p)}:{name}", values, (proc_evidence(p, "its environment"),),
                p.get("start_ns"), attrs, severity,
            )  # fmt: skip


def preload_file(facts: Facts, rule: Rule) -> Iterator[Hit]:
    f = facts.files.get(PRELOAD_FILE)
    if f is None or f.get("type") != "file":
        return
    changed = f.get("changed") is True
    values = {"path": PRELOAD_FILE, "when": "written since start" if changed else "in the image"}
    yield Hit(f"path:{PRELOAD_FILE}", values, (file_evidence(f, "the file"),),
              f.get("mtime_ns"), {"path": PRELOAD_FILE, "changed": changed})  # fmt: skip


RULES = (
    Rule(
        "env.preload",
        Severity.HIGH,
        Strength.DIRECT,
        "{proc} has {name}={value} ({source})",
        "{name} {why}: the classic way to hook a program (steal credentials, hide files "
        "and processes) without changing it on disk.",
        preload_env,
        params={"variables": PRELOAD_VARIABLES},
        caveats="The environment is the one the process was started with "
        "(/proc/<pid>/environ); a variable set later with setenv() is not seen. Some "
        "images set LD_LIBRARY_PATH or JAVA_TOOL_OPTIONS deliberately: 'also in the main "
        "process's environment' says it came with the workload.",
    ),
    Rule(
        "env.ld-so-preload",
        Severity.HIGH,
        Strength.DIRECT,
        "{path} exists ({when})",
        "The dynamic loader reads /etc/ld.so.preload before every dynamically linked "
        "program: a library named there is loaded into all of them (a rootkit's usual "
        "place). Distroless and most application images have no such file.",
        preload_file,
        caveats="A few hardening or profiling setups use it deliberately.",
    ),
)
