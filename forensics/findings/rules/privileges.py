"""Who can do what: traced processes, capabilities a workload should not hold, root
processes in a workload that runs as another user."""

from __future__ import annotations

from collections.abc import Iterator

from forensics.findings.facts import Facts, Rec, ids, proc_evidence, proc_label, proc_subject
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "privileges"

#: capabilities that let a process leave or see through its container
DANGEROUS_CAPS = (
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_BOOT",
    "CAP_SYS_TIME",
    "CAP_DAC_READ_SEARCH",
    "CAP_NET_ADMIN",
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_SYSLOG",
    "CAP_LINUX_IMMUTABLE",
)


def traced(facts: Facts, rule: Rule) -> Iterator[Hit]:
    for p in facts.user_processes():
        tracer = p.get("tracer_pid")
        if not isinstance(tracer, int) or tracer <= 0:
            continue
        ev: list[Evidence] = [proc_evidence(p, "the traced process (TracerPid)")]
        t = facts.process(tracer)
        if t is not None:
            ev.append(proc_evidence(t, "the tracer"))
            who = proc_label(t)
        else:
            who = f"pid {tracer}, outside the container's PID namespace"
        values = {"proc": proc_label(p), "tracer": who}
        attrs = {"pid": p.get("pid"), "tracer_pid": tracer, "tracer_inside": t is not None}
        yield Hit(proc_subject(p), values, tuple(ev), p.get("start_ns"), attrs)


def _caps(p: Rec) -> set[str]:
    names = p.get("cap_eff_names")
    return {str(n) for n in names} if isinstance(names, list) else set()


def capabilities(facts: Facts, rule: Rule) -> Iterator[Hit]:
    """One finding per set of unexpected capabilities, listing every process holding it."""
    dangerous = set(rule.params["dangerous"])
    init = facts.init_process()
    base = _caps(init) if init is not None else set()
    groups: dict[tuple[str, ...], list[Rec]] = {}
    for p in facts.user_processes():
        have = _caps(p)
        odd = (have & dangerous) | (have - base if init is not None and p is not init else set())
        if odd:
            groups.setdefault(tuple(sorted(odd)), []).append(p)
    for caps, procs in groups.items():
        gained = sorted(set(caps) - dangerous)
        values = {
            "caps": ", ".join(caps),
            "procs": ", ".join(proc_label(p) for p in procs[:5])
            + (f" and {len(procs) - 5} more" if len(procs) > 5 else ""),
            "count": len(procs),
        }
        attrs = {"capabilities": list(caps), "pids": [p.get("pid") for p in procs],
                 "beyond_main_process": gained}  # fmt: skip
        ev = tuple(proc_evidence(p, "holds them (CapEff)") for p in procs[:20])
        yield Hit("caps:" + ",".join(caps), values, ev, None, attrs)


def root_in_nonroot(facts: Facts, rule: Rule) -> Iterator[Hit]:
    init = facts.init_process()
    if init is None:
        return
    _real, euid = ids(init.get("uid"))
    if euid is None or euid == 0:
        return
    for p in facts.user_processes():
        r, e = ids(p.get("uid"))
        if 0 in (r, e):
            which = "effective" if e == 0 else "real"
            values = {"proc": proc_label(p), "which": which, "main_uid": euid}
            ev = (proc_evidence(p, f"runs with {which} uid 0"), proc_evidence(init, "the main "
                  f"process, uid {euid}"))  # fmt: skip
            attrs = {"pid": p.get("pid"), "uid": p.get("uid"), "main_uid": euid}
            yield Hit(proc_subject(p), values, ev, p.get("start_ns"), attrs)


RULES = (
    Rule(
        "priv.traced",
        Severity.HIGH,
        Strength.DIRECT,
        "{proc} is being traced by {tracer}",
        "A traced process (TracerPid in /proc/<pid>/status) is under another process's "
        "control: it can read and change its memory and registers. Debuggers do this; so "
        "do credential stealers and injectors.",
        traced,
        caveats="A debugging session or strace someone attached on purpose; the tracer "
        "can be outside the container (its pid is then a host pid).",
    ),
    Rule(
        "priv.capabilities",
        Severity.HIGH,
        Strength.DIRECT,
        "{count} process(es) hold unexpected capabilities {caps}: {procs}",
        "Effective capabilities that let a process leave or see through its container "
        "(SYS_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, NET_ADMIN, BPF...), or that "
        "the container's main process does not hold itself, are rarely needed by an "
        "application and are what an escape or a privilege escalation uses.",
        capabilities,
        params={"dangerous": DANGEROUS_CAPS},
        caveats="Privileged containers and some system workloads (CNI agents, monitoring "
        "daemons) are granted these on purpose: check the pod's securityContext.",
    ),
    Rule(
        "priv.root-in-nonroot",
        Severity.HIGH,
        Strength.DIRECT,
        "{proc} runs with {which} uid 0 in a workload whose main process runs as uid {main_uid}",
        "The workload was started as a non-root user; a root process inside it was "
        "started another way (a setuid binary, an exec by someone with access to the "
        "runtime, an escalation).",
        root_in_nonroot,
        caveats="`kubectl exec`/`runc exec` as root by an operator looks the same.",
    ),
)
