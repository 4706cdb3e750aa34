"""Executables the image's package metadata does not account for: added after
start, replaced (a package's digest no longer matches), or unknown to any package."""

from __future__ import annotations

from collections.abc import Iterator

from forensics.findings.facts import Facts, file_evidence, proc_evidence
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule
from forensics.inventory.model import Executable

FAMILY = "inventory"


def metadata_lists_files(facts: Facts) -> bool:
    """Whether some package of the image says which files it installed."""
    inv = facts.inventory
    return inv is not None and any(p.files for p in inv.packages)


def _evidence(facts: Facts, exe: Executable, role: str) -> list[Evidence]:
    ev: list[Evidence] = []
    entry = facts.files.get(exe.path)
    if entry is not None and exe.origin == "filesystem":
        ev.append(file_evidence(entry, role))
    for pid in exe.pids[:10]:
        p = facts.process(pid)
        if p is not None:
            ev.append(proc_evidence(p, "runs it"))
    return ev


def _running(exe: Executable) -> str:
    return f", run by pid {', '.join(map(str, exe.pids[:5]))}" if exe.pids else ""


def added(facts: Facts, rule: Rule) -> Iterator[Hit]:
    inv = facts.inventory
    if inv is None:
        return
    for exe in inv.executables:
        if exe.memfd or not (exe.changed or exe.added_inferred) or exe.hash_mismatch:
            continue  # a replaced package file is inventory.modified
        why = exe.added_inferred or "written since start (overlay upper layer)"
        values = {"path": exe.path, "why": why, "running": _running(exe)}
        attrs = {"path": exe.path, "sha256": exe.sha256, "pids": exe.pids, "why": why}
        severity = None if exe.pids else Severity.MEDIUM
        ev = _evidence(facts, exe, "the file, written since start")
        yield Hit(f"exe:{exe.path}:{exe.sha256}", values, tuple(ev), None, attrs, severity)


def modified(facts: Facts, rule: Rule) -> Iterator[Hit]:
    inv = facts.inventory
    if inv is None:
        return
    for exe in inv.executables:
        if not exe.hash_mismatch or exe.accounted:
            continue
        values = {"path": exe.path, "pkgs": ", ".join(exe.hash_mismatch), "running": _running(exe)}
        attrs = {"path": exe.path, "sha256": exe.sha256, "packages": exe.hash_mismatch,
                 "pids": exe.pids}  # fmt: skip
        ev = _evidence(facts, exe, "the file, whose digest differs from the package's")
        yield Hit(f"exe:{exe.path}", values, tuple(ev), None, attrs)


def unaccounted(facts: Facts, rule: Rule) -> Iterator[Hit]:
    inv = facts.inventory
    if inv is None or not metadata_lists_files(facts):
        return  # no metadata says what files it installed: a blind spot, not a finding
    for exe in inv.executables:
        if not exe.counted or exe.accounted or exe.hash_mismatch or exe.memfd:
            continue
        if exe.changed or exe.added_inferred:
            continue  # inventory.added-after-start says more
        values = {"path": exe.path, "running": _running(exe)}
        attrs = {"path": exe.path, "sha256": exe.sha256, "pids": exe.pids}
        severity = Severity.MEDIUM if exe.pids else None
        ev = _evidence(facts, exe, "the file")
        yield Hit(f"exe:{exe.path}:{exe.sha256}", values, tuple(ev), None, attrs, severity)


RULES = (
    Rule(
        "inventory.added-after-start",
        Severity.HIGH,
        Strength.DERIVED,
        "executable added after the container started: {path}{running} ({why})",
        "No image ships it: it was written into the container at run time (the overlay's "
        "upper layer holds it, or a process runs a deleted file the image never had). "
        "Dropped tools, implants and miners arrive this way. Ranked high when running.",
        added,
        caveats="Applications that compile or download plugins at run time; memfd "
        "executables are reported by exe.memfd instead.",
    ),
    Rule(
        "inventory.modified",
        Severity.HIGH,
        Strength.DERIVED,
        "executable differs from its package ({pkgs}): {path}{running}",
        "The package database lists this path with a digest the file no longer has: the "
        "program was replaced or patched after the package installed it (a trojaned "
        "binary keeps its trusted name).",
        modified,
        caveats="Images that strip or re-sign binaries after installing packages, and "
        "prelink, change digests too; dpkg's md5sums also omit conffiles.",
    ),
    Rule(
        "inventory.unaccounted",
        Severity.LOW,
        Strength.DERIVED,
        "executable no package accounts for: {path}{running}",
        "The image's package metadata accounts for other executables but not this one: "
        "copied in by hand, by a build step, or by someone else (ranked medium when it "
        "runs). In images with no package metadata at all this is the inventory's blind "
        "spot, reported with the coverage, not as findings.",
        unaccounted,
        caveats="The application itself is often unpackaged (a Go or Rust binary under "
        "/app or /usr/local/bin); look at what else is unaccounted.",
    ),
)
