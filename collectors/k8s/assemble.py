"""Write the final bundle of a Kubernetes capture: the agent's members (relayed and
verified), the Kubernetes facts, the footprint, the client's custody log and
manifest.

Manifest additions over a local capture's (docs/kubernetes.md):

``agent``       how the agent's bundle arrived: its manifest's SHA-256 and member
                (``agent/manifest.json``), the stream's SHA-256 and size, what
                the agent reported at sealing, and the end-to-end verdict
``kubernetes``  cluster, pod, container, node summary and the footprint summary
``skips``       the agent's (``artifacts/skips.jsonl``) and the client's
                (``artifacts/k8s/skips.jsonl``) together
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from collectors.capture import MAX_SKIPS_IN_MANIFEST, CaptureOptions
from collectors.k8s.facts import Api, dumps, jsonl, write_facts
from collectors.k8s.inject import Injection
from collectors.k8s.relay import AGENT_DIR, K8S_DIR, RelayReport, relay
from collectors.k8s.stream import StreamResult
from forensics import __version__
from forensics.bundle.format import CUSTODY_NAME, MANIFEST_NAME, SKIPS_NAME
from forensics.bundle.writer import BundleWriter
from forensics.custody import CustodyLog
from forensics.records import Skip
from forensics.timeutil import CLOCK_SOURCE, iso_ns, now_ns

CLIENT_SKIPS = K8S_DIR + "skips.jsonl"
AGENT_STDERR = AGENT_DIR + "stderr.jsonl"


@dataclass
class Outcome:
    complete: bool
    incomplete: list[str]
    manifest_sha256: str
    file_sha256: str
    file_bytes: int
    counts: dict[str, int]
    skips: int
    manifest: dict[str, Any] = field(default_factory=dict)


def end_to_end(result: StreamResult, rr: RelayReport) -> dict[str, Any]:
    """Compare what the agent says it sent with what arrived and what it holds."""
    sealed = result.event("sealed")
    problems: list[str] = []
    if sealed is None:
        problems.append("the agent reported no seal (it did not finish)")
    else:
        if sealed.get("stream_sha256") != result.sha256 or sealed.get("bytes") != result.nbytes:
            problems.append(
                f"stream differs: the agent sent {sealed.get('bytes')} bytes sha256 "
                f"{sealed.get('stream_sha256')}, {result.nbytes} bytes sha256 "
                f"{result.sha256} arrived"
            )
        if sealed.get("manifest_sha256") != rr.manifest_sha256:
            problems.append(
                f"agent manifest differs: reported {sealed.get('manifest_sha256')}, "
                f"received {rr.manifest_sha256 or 'none'}"
            )
    return {
        "ok": not problems,
        "problems": problems,
        "reported": sealed,
        "received": {
            "bytes": result.nbytes,
            "sha256": result.sha256,
            "manifest_sha256": rr.manifest_sha256 or None,
        },
    }


def _reasons(result: StreamResult, rr: RelayReport, e2e: dict[str, Any]) -> list[str]:
    out: list[str] = []
    err = result.event("error")
    if result.broken:
        out.append(f"the agent's stream broke: {result.broken}")
    if result.exit_code not in (0, 3, None) or (result.exit_code is None and not result.broken):
        why = f": {err.get('message')}" if err else ""
        out.append(f"the agent exited with code {result.exit_code}{why}")
    elif err and result.exit_code != 0:
        out.append(f"the agent reported: {err.get('message')}")
    if rr.broken and (not out or rr.members):
        out.append(f"{rr.broken}; kept {rr.members} whole members")
    if rr.manifest is not None and not rr.manifest.get("complete"):
        out.append(f"the agent's capture is incomplete: {rr.manifest.get('incomplete_reason')}")
    if rr.problems:
        more = f" (+{len(rr.problems) - 1} more)" if len(rr.problems) > 1 else ""
        out.append(f"the agent's bundle did not verify: {rr.problems[0]}{more}")
    if rr.manifest is not None and not e2e["ok"]:
        out.append("end-to-end check failed: " + "; ".join(e2e["problems"]))
    return out


def _target(
    identity: dict[str, Any],
    rr: RelayReport,
    node: dict[str, Any] | None,
    seen: dict[str, Any] | None,
) -> dict[str, Any]:
    agent_t = (rr.manifest or {}).get("target")
    t: dict[str, Any] = dict(agent_t) if isinstance(agent_t, dict) else {"pid": None}
    for key, value in identity.items():
        if key == "runtime_facts":
            facts = dict(t.get("runtime_facts") or {})
            facts.setdefault("kubernetes", value.get("kubernetes"))
            t["runtime_facts"] = facts
        elif t.get(key) in (None, "", "k8s://"):
            t[key] = value
    t["runtime"] = "k8s"
    if t.get("pid") is None and isinstance(seen, dict) and isinstance(seen.get("pid"), int):
        t["pid"] = seen["pid"]  # the agent found it, even if its manifest never came
    if node:
        t["runtime_version"] = node.get("runtime")
    return t


def assemble(
    raw: BinaryIO,
    *,
    opts: CaptureOptions,
    custody: CustodyLog,
    api: Api,
    spool: Path,
    result: StreamResult,
    inj: Injection,
    pod_before: dict[str, Any],
    pod_after: dict[str, Any],
    identity: dict[str, Any],
    cluster: dict[str, Any],
    host: dict[str, Any],
    start_ns: int,
) -> Outcome:
    writer = BundleWriter(
        raw,
        compress=opts.compress,
        threads=opts.threads,
        header={
            "tool": f"exuvia {__version__}",
            "target": identity["uri"],
            "assembled_from": "agent bundle + Kubernetes API",
        },
    )
    rr = relay(spool, writer)
    custody.record(
        "agent.bundle.relayed",
        members=rr.members,
        bytes=rr.bytes,
        agent_manifest_sha256=rr.manifest_sha256 or None,
        verified_by_manifest=rr.by_manifest,
        broken=rr.broken,
        problems=len(rr.problems),
    )
    writer.add_bytes(AGENT_STDERR, result.stderr)
    e2e = end_to_end(result, rr)
    custody.record("agent.end_to_end", ok=e2e["ok"], problems=e2e["problems"])

    fr = write_facts(writer, api, pod_before, pod_after, opts.max_file_size)
    custody.record("k8s.facts", **fr.counts, owners=fr.owners, node=fr.node)
    skips: list[Skip] = list(fr.skips)
    for p in rr.problems:
        skips.append(Skip("agent", "agent bundle", p))
    cut = rr.cut
    if cut is not None:
        skips.append(
            Skip(
                "agent",
                cut["name"],
                f"cut off after {cut['received']} of {cut['size']} bytes; "
                f"what arrived is in {cut['member']}",
            )
        )
    for name in rr.unverified[:1000]:
        skips.append(
            Skip(
                "agent",
                name,
                "arrived after the agent's last checkpoint: not "
                "vouched for by the agent's hashes (its own hash is recorded)",
            )
        )

    writer.add_bytes(K8S_DIR + "footprint.json", dumps(inj.footprint) + b"\n")
    writer.add_bytes(K8S_DIR + "cluster.json", dumps(cluster) + b"\n")
    writer.add_bytes(CLIENT_SKIPS, jsonl([s.to_dict() for s in skips]))

    incomplete = _reasons(result, rr, e2e)
    for reason in incomplete:
        custody.record("capture.incomplete", reason=reason)
    custody.record("capture.finished", complete=not incomplete)
    writer.add_bytes(CUSTODY_NAME, custody.to_jsonl())

    agent_m = rr.manifest or {}
    raw_skips = agent_m.get("skips")
    agent_skips: dict[str, Any] = raw_skips if isinstance(raw_skips, dict) else {}
    by: Counter[str] = Counter(agent_skips.get("by_collector") or {})
    by.update(s.collector for s in skips)
    listed = list(agent_skips.get("listed") or [])[:MAX_SKIPS_IN_MANIFEST]
    listed += [s.to_dict() for s in skips][: MAX_SKIPS_IN_MANIFEST - len(listed)]
    total = int(agent_skips.get("total") or 0) + len(skips)
    counts: dict[str, int] = {k: int(v) for k, v in (agent_m.get("counts") or {}).items()}
    counts.update(fr.counts)
    end = now_ns()
    manifest: dict[str, Any] = {
        "tool": {"name": "exuvia", "version": __version__},
        "case": opts.case,
        "examiner": opts.examiner,
        "host": host,
        "command_line": opts.argv,
        "clock": {"source": CLOCK_SOURCE, "timezone": "UTC", "resolution": "ns"},
        "acquisition": {
            "start_ns": start_ns,
            "start": iso_ns(start_ns),
            "end_ns": end,
            "end": iso_ns(end),
            "method": f"kubernetes {inj.mode} agent",
        },
        "target": _target(identity, rr, fr.node, result.event("target")),
        "options": {
            "files": opts.files,
            "max_file_size": opts.max_file_size,
            "compress": opts.compress,
            "redact": opts.redact,
            "memory": opts.memory.mode if opts.memory else None,
        },
        # the agent's memory section as it is (its cores are members of this bundle too)
        "memory": agent_m.get("memory") if opts.memory else None,
        "complete": not incomplete,
        "incomplete_reason": "; ".join(incomplete),
        "counts": counts,
        "filesystem_view": agent_m.get("filesystem_view"),
        "filesystem": agent_m.get("filesystem"),
        "skips": {
            "total": total,
            "by_collector": dict(by),
            "member": SKIPS_NAME,
            "members": [SKIPS_NAME, CLIENT_SKIPS],
            "listed": listed,
            "listed_all": total <= MAX_SKIPS_IN_MANIFEST,
        },
        "agent": {
            "manifest_member": AGENT_DIR + MANIFEST_NAME if rr.manifest is not None else None,
            "manifest_sha256": rr.manifest_sha256 or None,
            "stream": {
                "bytes": result.nbytes,
                "sha256": result.sha256,
                "exit_code": result.exit_code,
                "broken": result.broken,
                "status": result.status,
                "seconds": round(result.seconds, 3),
            },
            "end_to_end": e2e,
            "relay": rr.to_dict(),
            "stderr_member": AGENT_STDERR,
            "tool": (rr.header or {}).get("tool"),
            "host": agent_m.get("host"),
            "acquisition": agent_m.get("acquisition"),
        },
        "kubernetes": {
            "cluster": cluster,
            "namespace": (pod_after.get("metadata") or {}).get("namespace"),
            "pod": (pod_after.get("metadata") or {}).get("name"),
            "pod_uid": (pod_after.get("metadata") or {}).get("uid"),
            "container": identity.get("name"),
            "node": fr.node,
            "owners": fr.owners,
            "footprint": {
                k: inj.footprint.get(k)
                for k in (
                    "mode",
                    "reused",
                    "container",
                    "profile",
                    "image_ran",
                    "image_id",
                    "image_digest",
                    "pod_resource_version_before",
                    "pod_resource_version_after",
                )
            },
            "footprint_member": K8S_DIR + "footprint.json",
        },
    }
    manifest_sha, _size = writer.finish(manifest, signer=opts.signer)
    return Outcome(
        complete=not incomplete,
        incomplete=incomplete,
        manifest_sha256=manifest_sha,
        file_sha256=writer.file_sha256,
        file_bytes=writer.file_bytes,
        counts=counts,
        skips=total,
        manifest=json.loads(dumps(manifest)),
    )
