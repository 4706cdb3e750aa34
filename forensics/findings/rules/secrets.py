"""Credentials in reach: the Kubernetes service-account token, read by a process
other than the workload's main one."""

from __future__ import annotations

import re
from collections.abc import Iterator

from forensics.findings.facts import Facts, argv, proc_evidence, proc_label, proc_subject
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "secrets"

#: where kubelet mounts service-account tokens (the legacy path, the projected-volume
#: path of EKS/IRSA, and the usual name of extra projected token volumes)
TOKEN_PATHS = (
    r"/run/secrets/kubernetes\.io/serviceaccount/",
    r"/run/secrets/eks\.amazonaws\.com/serviceaccount/",
    r"/run/secrets/tokens/",
)


def _token_re(rule: Rule) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in rule.params["paths"]))


def token_readers(facts: Facts, rule: Rule) -> Iterator[Hit]:
    pattern = _token_re(rule)
    init = facts.init_process()
    for p in facts.user_processes():
        if init is not None and p.get("pid") == init.get("pid"):
            continue  # the workload's own client reads its token: that is what it is for
        fds = p.get("fds") if isinstance(p.get("fds"), list) else []
        held = [
            fd for fd in fds
            if isinstance(fd, dict) and isinstance(fd.get("target"), str)
            and pattern.search(fd["target"]) and not fd["target"].endswith("/")
        ]  # fmt: skip
        words = [a for a in argv(p) if pattern.search(a)]
        if not held and not words:
            continue
        how = (
            f"holds {held[0]['target']} open (fd {held[0].get('fd')})"
            if held
            else f"names {words[0]} on its command line"
        )
        ev: tuple[Evidence, ...] = (proc_evidence(p, "its open files / command line"),)
        attrs = {"pid": p.get("pid"), "fds": [fd.get("fd") for fd in held],
                 "paths": sorted({fd["target"] for fd in held}) or words}  # fmt: skip
        values = {"proc": proc_label(p), "how": how}
        severity = None if held else Severity.MEDIUM
        yield Hit(proc_subject(p), values, ev, p.get("start_ns"), attrs, severity)


RULES = (
    Rule(
        "secrets.sa-token",
        Severity.HIGH,
        Strength.DIRECT,
        "{proc}, not the main process, reads the service-account token: {how}",
        "The token under /var/run/secrets/kubernetes.io/serviceaccount authenticates to "
        "the Kubernetes API as the pod: an attacker in the container reads it to move to "
        "the cluster. The main process's own client is expected to; another process is not.",
        token_readers,
        params={"paths": TOKEN_PATHS},
        caveats="What can be seen: a descriptor open on the token at the moment of "
        "capture, or the token's path on a command line (ranked medium). What cannot: a "
        "read that already finished and closed the file (no trace in /proc; the token "
        "file's access time is not a reliable witness on kubelet's tmpfs with relatime), "
        "and a token copied elsewhere first. Sidecars that legitimately read it run in "
        "other containers, not in this one's process list.",
    ),
)
