"""Build a timeline store from a bundle: scan, extract every source, finish the store."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

from forensics import __version__
from forensics.bundle.format import CUSTODY_NAME, HEADER_NAME, MANIFEST_NAME, record_collector
from forensics.bundle.frameindex import is_content
from forensics.scan.sidecar import signature as scan_signature
from forensics.timeline.bundleio import (
    BundleScan,
    StreamCut,
    bundle_signature,
    check_against_manifest,
    scan_bundle,
    stream_members,
)
from forensics.timeline.fs import _int, extract_fs
from forensics.timeline.k8s import (
    EVENTS_MEMBER,
    TRANSITIONS_MEMBER,
    extract_k8s_events,
    extract_k8s_transitions,
)
from forensics.timeline.logs import (
    K8S_LOGS_MEMBER,
    LogDedup,
    extract_log,
    k8s_log_sources,
    k8s_source,
    log_sources,
    runtime_source,
)
from forensics.timeline.logtime import LogClock, tz_name
from forensics.timeline.memory import extract_memory
from forensics.timeline.proc import extract_processes, parse_passwd
from forensics.timeline.runtime import (
    TARGET_MEMBER,
    container_entity,
    extract_custody,
    extract_lifecycle,
)
from forensics.timeline.sink import Sink
from forensics.timeline.store import GrowingHooks, StoreSink
from forensics.timeline.yara import (
    YARA_COLLECTOR,
    YARA_MEMBER,
    extract_capture_matches,
    extract_sidecar_matches,
)

FS_MEMBER = "artifacts/filesystem.jsonl"
PROC_MEMBER = "artifacts/processes.jsonl"
LOGS_MEMBER = "artifacts/logs.jsonl"
USERS_MEMBER = "files/etc/passwd"
GROUPS_MEMBER = "files/etc/group"
RUNTIME_LOGS = "logs/runtime/"
K8S_LOGS = "logs/k8s/"
_KEEP = frozenset(
    {
        TARGET_MEMBER,
        LOGS_MEMBER,
        CUSTODY_NAME,
        USERS_MEMBER,
        GROUPS_MEMBER,
        HEADER_NAME,
        MANIFEST_NAME,
        EVENTS_MEMBER,
        TRANSITIONS_MEMBER,
        K8S_LOGS_MEMBER,
        YARA_MEMBER,
    }
)

Progress = Callable[[str], None]


def _kept(name: str) -> bool:
    return name in _KEEP or record_collector(name) in ("logs", YARA_COLLECTOR)


def scan(bundle: str | Path) -> BundleScan:
    """The first pass: what the timeline needs up front, and the cache key."""
    sc = scan_bundle(bundle, _kept, skip_content=True, content=[USERS_MEMBER, GROUPS_MEMBER])
    # 2.0 writes artifacts/logs/NNNNNN.jsonl chunks: read them as the one 1.x member
    chunks = [
        n for n, _size, _sha in sc.members if n in sc.kept and n.startswith("artifacts/logs/")
    ]
    if chunks and LOGS_MEMBER not in sc.kept:
        sc.kept[LOGS_MEMBER] = b"".join(sc.kept.pop(n) for n in chunks)
    return sc


def reference_time(scan: BundleScan) -> int | None:
    """The capture's time: end of acquisition, else the bundle header's creation."""
    acq = (scan.manifest or {}).get("acquisition")
    if isinstance(acq, dict):
        for key in ("end_ns", "start_ns"):
            val = _int(acq.get(key))
            if val is not None and val > 0:
                return val
    head = scan.header or {}
    val = _int(head.get("created_ns"))
    return val if val is not None and val > 0 else None


def extract_all(bundle: Path, sc: BundleScan, sink: Sink, tz: tzinfo) -> None:
    """Every source of the bundle into ``sink``, in bundle order (deterministic)."""
    target = sc.json_member(TARGET_MEMBER)
    entity = container_entity(target if isinstance(target, dict) else None)
    ref_ns = reference_time(sc)
    sources = log_sources(sc.kept.get(LOGS_MEMBER), target, entity)
    k8s_logs = k8s_log_sources(sc.kept.get(K8S_LOGS_MEMBER))
    # the agent's members (runtime logs) precede the client's (logs/k8s/*) in a k8s:// bundle
    dedup = LogDedup({s.entity for s in k8s_logs.values()}) if k8s_logs else None
    sources.update({k: v for k, v in k8s_logs.items() if k not in sources})
    users = parse_passwd(sc.kept.get(USERS_MEMBER))
    groups = parse_passwd(sc.kept.get(GROUPS_MEMBER))
    init_pid = _int(target.get("pid")) if isinstance(target, dict) else None
    for problem in sc.problems:
        sink.warn(problem)
    if sc.broken:
        sink.warn(
            f"bundle is cut off or corrupt: {sc.broken}; the timeline holds what precedes"
            if sc.manifest is not None
            else f"bundle is cut off or corrupt: {sc.broken}"
        )
    for name in sc.too_big:
        sink.problem("member_too_big", name, 0, "too large to read for the timeline")
    for mismatch in check_against_manifest(sc):
        sink.warn(f"integrity: {mismatch}")
    vouched: set[str] | None = None
    if sc.manifest is None:
        # read what the checkpoints vouch for, and say so first
        from forensics.bundle.verify import cut_off_banner, verify_bundle  # noqa: PLC0415

        report = verify_bundle(bundle)
        if report.checkpoints_valid:
            vouched = set(report.vouched_names)
            sink.warn(
                "bundle has no manifest (capture cut off): only the members its checkpoints "
                f"vouch for are read; {len(report.unverifiable)} after the last one are not"
            )
        else:  # nothing is vouched for: what precedes the cut, unverified
            sink.warn("bundle has no manifest (capture cut off): members are not verified")
        sink.cut_off = {
            "banner": cut_off_banner(report),
            "cut_off": report.cut_off,
            "checkpoint": report.last_checkpoint,
            "members": report.members_verified,
            "records": report.records_vouched,
            "unverified_members": len(report.unverifiable),
        }
    elif sc.manifest.get("complete") is False:
        sink.warn(f"capture incomplete: {sc.manifest.get('incomplete_reason') or '?'}")

    def want(name: str) -> bool:
        if vouched is not None and name not in vouched:
            return False  # after the last checkpoint of a cut-off bundle: unverified
        return (
            record_collector(name) in ("filesystem", "processes", "memory")
            or name in sources
            or name.startswith((RUNTIME_LOGS, K8S_LOGS))
        )

    # processes come in one member (1.x) or in chunks (2.0): the container's
    # lifecycle needs the init process's start, so it follows the last of them
    lifecycle_done = False
    starts: dict[int, int] = {}

    def lifecycle() -> None:
        nonlocal lifecycle_done
        if not lifecycle_done:
            init = starts.get(init_pid) if init_pid is not None else None
            extract_lifecycle(target, sink, init)
            lifecycle_done = True

    # a log file copied from the target is a content member: its frame is read too
    copied = [name for name in sources if is_content(name)]
    seen: set[str] = set()
    try:
        for member in stream_members(bundle, want, sc.content_skipped, copied):
            seen.add(member.name)
            collector = record_collector(member.name)
            if collector == "processes":
                starts.update(extract_processes(member, sink, users, groups))
                continue
            if starts:
                lifecycle()
            if collector == "filesystem":
                extract_fs(member, sink)
            elif collector == "memory":
                extract_memory(member, sink)
            else:
                src = sources.get(member.name)
                if src is None:
                    if member.name.startswith(K8S_LOGS):
                        src = k8s_source(member.name)
                    else:
                        src = runtime_source(member.name, target, entity)
                clock = LogClock(tz, ref_ns=src.mtime_ns or ref_ns)
                extract_log(member, src, sink, clock, ref_ns, dedup=dedup)
    except StreamCut as err:
        sink.warn(
            f"bundle is cut off or corrupt: {err}"
            + ("; the timeline holds what precedes" if vouched is None else "")
        )
    if sc.content_skipped and any(name not in seen for name in copied):
        listed = {e.get("name") for e in sc.manifest_entries() or ()}
        for name in copied:
            if name not in seen and name in listed:
                sink.warn(f"log {name} was not found where the bundle's frame index puts it")
    if starts:
        lifecycle()
    if not lifecycle_done:
        extract_lifecycle(target, sink, None)
    extract_custody(sc.kept.get(CUSTODY_NAME), sink)
    extract_k8s_events(sc.kept.get(EVENTS_MEMBER), sink)
    extract_k8s_transitions(sc.kept.get(TRANSITIONS_MEMBER), sink)
    yara = [(n, sc.kept[n]) for n, _size, _sha in sc.members
            if n in sc.kept and record_collector(n) == YARA_COLLECTOR]  # fmt: skip
    extract_capture_matches(yara, sink, ref_ns)
    extract_sidecar_matches(bundle, sc.manifest_sha256, sink, ref_ns)


def build_store(
    bundle: str | Path,
    out: str | Path,
    tz: tzinfo,
    sc: BundleScan | None = None,
    progress: Progress | None = None,
    *,
    growing: GrowingHooks | None = None,
) -> dict[str, Any]:
    """Build the store for ``bundle`` at ``out`` (a new file); returns its meta.

    ``growing``: build it so that it can be read while it grows (see
    :class:`~forensics.timeline.store.GrowingHooks`)."""
    bundle = Path(bundle)
    note = progress or (lambda _msg: None)
    t0 = time.monotonic()
    sig = bundle_signature(bundle)
    if sc is None:
        note("scanning the bundle")
        sc = scan(bundle)
    t_scan = time.monotonic() - t0
    sink = StoreSink(Path(out), progress, growing)
    # Millions of short-lived tuples and dicts and no cycles: the cyclic collector
    # would only rescan them (a fifth of the build time), so it pauses meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        note("extracting events")
        extract_all(bundle, sc, sink, tz)
        t_extract = time.monotonic() - t0 - t_scan
        note("indexing")
        if bundle_signature(bundle) != sig:
            sink.warn("the bundle file changed while it was read; rebuild the timeline")
        target = sc.json_member(TARGET_MEMBER)
        meta: dict[str, Any] = {
            "key": sc.key,
            "manifest_sha256": sc.manifest_sha256,
            "bundle": os.path.abspath(bundle),
            "bundle_sig": sig,
            "scan_sig": scan_signature(bundle, sc.manifest_sha256),
            "tz": tz_name(tz),
            "reference_ns": reference_time(sc),
            "container": container_entity(target if isinstance(target, dict) else None),
            "tool": f"exuvia {__version__}",
            "complete": bool(sc.manifest and sc.manifest.get("complete")),
            "cut_off": sink.cut_off,
            "build_seconds": {"scan": round(t_scan, 3), "extract": round(t_extract, 3)},
        }
        return sink.finish(meta)
    except BaseException:
        sink.abort()
        raise
    finally:
        if gc_was_enabled:
            gc.enable()
