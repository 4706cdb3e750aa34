"""What the SBOM writers share, and the plain-text table of an inventory."""

from __future__ import annotations

from datetime import UTC, datetime

from forensics.inventory.model import Executable, Inventory
from forensics.textsafe import fsdecode_safe


def exe_ref(exe: Executable) -> str:
    if exe.origin == "process":
        return f"process:{','.join(str(p) for p in exe.pids)}:{exe.path}"
    if exe.origin == "memory" and exe.memory is not None:
        return f"memory:{exe.memory['member']}:{exe.memory['address']:#x}:{exe.path}"
    return f"file:{exe.path}"


def target_name(inv: Inventory) -> str:
    t = inv.target
    return str(t.get("image") or t.get("name") or t.get("uri") or "target")


def sbom_timestamp(inv: Inventory) -> str:
    """The capture's end (the moment the SBOM describes), to the second, UTC."""
    acq = inv.manifest.get("acquisition") or {}
    end = acq.get("end_ns") if isinstance(acq, dict) else None
    sealed = inv.manifest.get("sealed_ns")
    ns = end if isinstance(end, int) else sealed if isinstance(sealed, int) else 0
    try:
        dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        dt = datetime.fromtimestamp(0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def coverage_status(exe: Executable) -> str:
    if exe.origin == "memory":
        return "in-memory"  # not counted: its recovered file (binaries/) is
    if exe.accounted:
        return "accounted"
    if exe.hash_mismatch:
        return "modified"
    return "unaccounted"


def elf_properties(exe: Executable) -> list[tuple[str, str]]:
    """The ELF analysis and coverage of one executable as (name, value) pairs."""
    out: list[tuple[str, str]] = [
        ("exuvia:origin", exe.origin),
        ("exuvia:coverage", coverage_status(exe)),
    ]
    out += [("exuvia:claimed-by", f"{c.ref} ({c.how})") for c in exe.claims]
    out += [("exuvia:hash-mismatch", ref) for ref in exe.hash_mismatch]
    if exe.changed:
        out.append(("exuvia:changed-since-start", "true"))
    if exe.added_inferred:
        out.append(("exuvia:added-after-start", exe.added_inferred))
    if exe.deleted:
        out.append(("exuvia:ran-from-deleted-file", "true"))
    if exe.memfd:
        out.append(("exuvia:ran-from-memfd", "true"))
    out += [("exuvia:pid", str(p)) for p in exe.pids]
    if exe.memory is not None:
        mem = exe.memory
        out.append(("exuvia:source", "memory"))
        out.append(("exuvia:memory:member", str(mem["member"])))
        out.append(("exuvia:memory:address", f"{mem['address']:#x}"))
        for key in ("build_id", "machine", "elf_type", "problem"):
            if mem.get(key):
                out.append((f"exuvia:memory:{key.replace('_', '-')}", str(mem[key])))
    if exe.setuid:
        out.append(("exuvia:setuid", "true"))
    if exe.setgid:
        out.append(("exuvia:setgid", "true"))
    if exe.mode:
        out.append(("exuvia:mode", exe.mode))
    if exe.unparseable:
        out.append(("exuvia:elf:unparseable", exe.unparseable))
    e = exe.elf
    if e is None:
        return out
    out += [
        ("exuvia:elf:type", e.kind),
        ("exuvia:elf:class", f"ELF{e.elf_class}"),
        ("exuvia:elf:machine", e.machine),
        ("exuvia:elf:linking", e.linking),
        ("exuvia:elf:stripped", "true" if e.stripped else "false"),
        ("exuvia:elf:language", e.language),
    ]
    if e.interpreter:
        out.append(("exuvia:elf:interpreter", e.interpreter))
    out += [("exuvia:elf:needed", n) for n in e.needed]
    out += [("exuvia:elf:rpath", n) for n in e.rpath]
    out += [("exuvia:elf:runpath", n) for n in e.runpath]
    if e.soname:
        out.append(("exuvia:elf:soname", e.soname))
    if e.build_id:
        out.append(("exuvia:elf:build-id", e.build_id))
    if e.go_build_id:
        out.append(("exuvia:elf:go-build-id", e.go_build_id))
    if e.entropy is not None:
        out.append(("exuvia:elf:entropy", f"{e.entropy:.3f}"))
    if e.packing:
        out.append(("exuvia:elf:packing-hint", e.packing))
    if e.debug_info:
        out.append(("exuvia:elf:debug-info", "true"))
    if e.go_error:
        out.append(("exuvia:elf:go-buildinfo-error", e.go_error))
    if e.rust_error:
        out.append(("exuvia:elf:cargo-auditable-error", e.rust_error))
    out += [("exuvia:elf:note", n) for n in e.notes[:8]]
    return out


def _clip(s: str, n: int) -> str:
    s = fsdecode_safe(s.encode("utf-8", "replace")).replace("\n", " ")
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s if len(s) <= n else s[: n - 1] + "…"


def table_lines(inv: Inventory) -> list[str]:
    """A human-readable report: packages, executables, coverage, blind spots.

    Strings from the bundle are made printable (no terminal escapes pass).
    """
    out = [
        f"target:   {_clip(target_name(inv), 80)}  ({_clip(str(inv.target.get('uri') or '-'), 60)})"
    ]
    if inv.os:
        out.append(f"os:       {_clip(inv.os.get('PRETTY_NAME') or inv.os.get('ID', '-'), 80)}")
    out.append("")
    out.append(f"PACKAGES ({len(inv.packages)})")
    out.append(f"  {'ECOSYSTEM':<9} {'NAME':<40} {'VERSION':<24} FOUND IN")
    for p in sorted(inv.packages, key=lambda p: (p.ecosystem, p.name.lower(), p.version)):
        where = p.locations[0] if p.locations else p.source
        more = f" (+{len(p.locations) - 1})" if len(p.locations) > 1 else ""
        out.append(
            f"  {_clip(p.ecosystem, 9):<9} {_clip(p.name, 40):<40} {_clip(p.version, 24):<24} "
            f"{_clip(where, 60)}{more}"
        )
    out.append("")
    out.append(f"EXECUTABLES ({len(inv.executables)})")
    out.append(f"  {'STATUS':<11} {'TYPE':<14} {'LANG':<7} {'LINK':<10} PATH / CLAIMED BY")
    for e in inv.executables:
        kind = e.elf.kind if e.elf else "memory image" if e.memory else "unparseable"
        lang = e.elf.language if e.elf else "-"
        link = e.elf.linking if e.elf else "-"
        flags = []
        if e.changed or e.added_inferred or e.memfd:
            flags.append("added-after-start")
        if e.deleted:
            flags.append("deleted")
        if e.memfd:
            flags.append("memfd")
        if e.setuid:
            flags.append("setuid")
        if e.setgid:
            flags.append("setgid")
        if e.pids:
            flags.append("pid " + ",".join(str(p) for p in e.pids))
        if e.elf and e.elf.packing:
            flags.append(e.elf.packing)
        if e.memory is not None:
            flags.append(f"source memory {e.memory['member']} @{e.memory['address']:#x}")
            if e.memory.get("build_id"):
                flags.append(f"build-id {e.memory['build_id']}")
        tail = f"  [{', '.join(flags)}]" if flags else ""
        out.append(
            f"  {coverage_status(e):<11} {_clip(kind, 14):<14} {_clip(lang, 7):<7} "
            f"{_clip(link, 10):<10} {_clip(e.path, 90)}{tail}"
        )
        for c in e.claims:
            out.append(f"  {'':<45} <- {_clip(c.ref, 80)} ({c.how})")
        if e.unparseable:
            out.append(f"  {'':<45} unparseable: {_clip(e.unparseable, 100)}")
    cov = inv.coverage
    out.append("")
    pct = "n/a" if cov.percent is None else f"{cov.percent}%"
    out.append(f"COVERAGE: {cov.accounted} of {cov.total} executables accounted for ({pct})")
    for title, items in (
        ("unaccounted (no package metadata or embedded build info claims them)", cov.unaccounted),
        ("added after the container started", cov.added_after_start),
        ("modified (a package lists them with other bytes)", cov.modified),
        ("unparseable ELF files", cov.unparseable),
        ("blind spots", inv.problems),
    ):
        if items:
            out.append(f"  {title}:")
            out += [f"    {_clip(i, 160)}" for i in items]
    return out
