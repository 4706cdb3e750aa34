"""What processes run: deleted executables, memfd (fileless) ones, writable places."""

from __future__ import annotations

from collections.abc import Iterator

from forensics.findings.facts import (
    Facts,
    Rec,
    exe_path,
    file_evidence,
    proc_evidence,
    proc_label,
    proc_subject,
)
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "exe"
#: the memory records (capture --memory): which processes' cores were captured
RECORD_COLLECTORS = ("memory",)

#: mounts that are writable by design in containers (besides world-writable dirs)
WRITABLE_PREFIXES = ("/tmp/", "/var/tmp/", "/dev/shm/", "/dev/mqueue/", "/run/", "/var/run/")  # noqa: S108


def _binary(facts: Facts, pid: object) -> list[Evidence]:
    for b in facts.binaries:
        if b.get("pid") == pid:
            role = "its executable, copied from /proc/<pid>/exe"
            sha = b.get("sha256")
            text = f"{b.get('member') or b.get('elf_member')} sha256 {sha}"
            return [Evidence(b.member, b.line, "record", role, text, b.get("member"))]
    return []


def _values(p: Rec) -> dict[str, object]:
    return {"proc": proc_label(p), "exe": p.get("exe"), "path": exe_path(p)}


def memfd(facts: Facts, rule: Rule) -> Iterator[Hit]:
    for p in facts.user_processes():
        if p.get("exe_memfd") is True:
            ev = (proc_evidence(p), *_binary(facts, p.get("pid")))
            attrs = {"pid": p.get("pid"), "exe": p.get("exe")}
            yield Hit(proc_subject(p), _values(p), ev, p.get("start_ns"), attrs)


def _image_text(facts: Facts, pid: object) -> str:
    """What the inventory identified in the core's memfd mappings (build-id), if any."""
    inv = facts.inventory
    for e in inv.executables if inv is not None else []:
        mem = e.memory
        if e.origin == "memory" and mem is not None and pid in e.pids:
            bid = f" build-id {mem['build_id']}" if mem.get("build_id") else ""
            return f"; mapped image {e.path} at {mem['address']:#x}{bid}"
    return ""


def memfd_memory(facts: Facts, rule: Rule) -> Iterator[Hit]:
    cores = {r.get("pid"): r for r in facts.records.get("memory", []) if r.get("member")}
    for p in facts.user_processes():
        core = cores.get(p.get("pid"))
        if p.get("exe_memfd") is not True or core is None:
            continue
        member = str(core.get("member"))
        text = f"{member} sha256 {core.get('sha256')}{_image_text(facts, p.get('pid'))}"
        ev = (
            proc_evidence(p),
            Evidence(core.member, core.line, "record", "its memory, captured as a core", text),
        )
        values = {**_values(p), "member": member}
        attrs = {"pid": p.get("pid"), "exe": p.get("exe"), "member": member}
        yield Hit(proc_subject(p) + ":memory", values, ev, p.get("start_ns"), attrs)


def deleted(facts: Facts, rule: Rule) -> Iterator[Hit]:
    for p in facts.user_processes():
        if p.get("exe_deleted") is True and p.get("exe_memfd") is not True:
            ev = [proc_evidence(p), *_binary(facts, p.get("pid"))]
            path = exe_path(p) or ""
            gone = facts.files.get(path)
            if gone is not None and gone.get("type") == "whiteout":
                ev.append(file_evidence(gone, "the file's whiteout: deleted since start"))
            attrs = {"pid": p.get("pid"), "exe": p.get("exe")}
            yield Hit(proc_subject(p), _values(p), tuple(ev), p.get("start_ns"), attrs)


def writable(facts: Facts, rule: Rule) -> Iterator[Hit]:
    prefixes = tuple(rule.params["prefixes"])
    for p in facts.user_processes():
        path = exe_path(p)
        if path is None or p.get("exe_memfd") is True or not path.startswith("/"):
            continue
        where = facts.in_writable_dir(path, prefixes)
        if where is None:
            continue
        ev = [proc_evidence(p)]
        entry = facts.files.get(path)
        if entry is not None:
            ev.append(file_evidence(entry, "the executable's entry"))
        values = {**_values(p), "dir": where}
        attrs = {"pid": p.get("pid"), "exe": path, "dir": where}
        yield Hit(proc_subject(p), values, tuple(ev), p.get("start_ns"), attrs)


RULES = (
    Rule(
        "exe.memfd",
        Severity.CRITICAL,
        Strength.DIRECT,
        "process {proc} runs from a memfd: {exe}",
        "Its executable exists only in memory (memfd_create + fexecve): nothing on disk "
        "holds it, which is how fileless malware avoids file scanning. The capture copied "
        "the executable from /proc/<pid>/exe.",
        memfd,
        caveats="A few runtimes (runc's own re-exec, some JITs and sandboxes) run from a "
        "memfd briefly; a long-lived memfd process in an application container is rare.",
    ),
    Rule(
        "exe.memfd-memory",
        Severity.HIGH,
        Strength.DIRECT,
        "process {proc} runs from a memfd, its memory was captured (member {member})",
        "The executable exists only in memory, and so does what it decrypted, downloaded "
        "or injected: its core holds the mapped memfd image (the SBOM lists it with source "
        "memory, build-id from its mapped notes) and its heap, for `gdb`, `exuvia scan` and "
        "replay's memory view.",
        memfd_memory,
        caveats="The core was read live (not an atomic snapshot: see the memory record's "
        "smear window); only processes chosen with --memory-pids, or all, were read.",
    ),
    Rule(
        "exe.deleted",
        Severity.HIGH,
        Strength.DIRECT,
        "process {proc} runs a deleted executable: {path}",
        "The file the process was started from has been removed since: dropped tools are "
        "often run and then deleted to leave nothing to find. The capture copied it from "
        "/proc/<pid>/exe.",
        deleted,
        caveats="A package upgrade inside a running container also deletes the old "
        "executable of a process that keeps running.",
    ),
    Rule(
        "exe.writable-dir",
        Severity.HIGH,
        Strength.DIRECT,
        "process {proc} runs an executable from a writable place: {path} (under {dir})",
        "Programs an image ships live in read-only system paths; an executable started "
        "from /tmp, /dev/shm, /var/tmp, /run or a world-writable directory was most likely "
        "written there by someone with access to the container.",
        writable,
        params={"prefixes": WRITABLE_PREFIXES},
        caveats="Some applications unpack helpers into /tmp (self-extracting launchers, "
        "PyInstaller bundles, JNI libraries).",
    ),
)
