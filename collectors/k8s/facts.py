"""Kubernetes facts about the captured pod, as bundle members (artifacts/k8s/*).

Members (one JSON object per line in .jsonl; every time also in UTC ns):

``artifacts/k8s/pod.json``          the pod as the API server served it after the capture
``artifacts/k8s/pod-before.json``   ... and before exuvia touched it
``artifacts/k8s/owners.jsonl``      the owner chain (ReplicaSet -> Deployment, Job -> CronJob …)
``artifacts/k8s/events.jsonl``      core/v1 Events about the pod, ``kind: k8s.event``
``artifacts/k8s/containers.jsonl``  container statuses (restart counts, states, image IDs)
``artifacts/k8s/transitions.jsonl`` container state transitions and pod conditions with times
``artifacts/k8s/logs.jsonl``        one ``log_source`` record per log member below
``logs/k8s/<container>.log``        the container's log via the API, ``--timestamps``
``logs/k8s/<container>.previous.log`` the previous instance's, where it restarted
``artifacts/k8s/node.json``         the node object; its summary goes in the manifest

The pure functions (records from API objects) are unit-tested; ``write_facts``
does the API calls through collectors.k8s.client and never raises for one
missing fact: it records a Skip and goes on.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from forensics.bundle.writer import BundleWriter
from forensics.errors import ExuviaError
from forensics.records import Skip
from forensics.timeutil import iso_ns, parse_iso_ns

K8S_DIR = "artifacts/k8s/"
LOG_DIR = "logs/k8s/"
COLLECTOR = "k8s"
MAX_OWNER_DEPTH = 6


class Api(Protocol):
    """The part of collectors.k8s.client.KubeClient the facts need."""

    def list_events(self, namespace: str, field_selector: str) -> list[dict[str, Any]]: ...

    def get_node(self, name: str) -> dict[str, Any]: ...

    def get_owner(
        self, namespace: str, api_version: str, kind: str, name: str
    ) -> dict[str, Any] | None: ...

    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> Iterator[bytes]: ...


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(dumps(r) + b"\n" for r in records)


def ts_ns(value: Any) -> int | None:
    """An API timestamp (RFC 3339, any precision) as UTC ns; None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso_ns(value)
    except ValueError:
        return None


def _with_times(out: dict[str, Any], **times: Any) -> dict[str, Any]:
    for key, value in times.items():
        ns = ts_ns(value)
        out[f"{key}_ns"] = ns
    return out


# -- events ----------------------------------------------------------------------------
def container_of(field_path: str | None) -> str | None:
    """``spec.containers{app}`` -> ``app``."""
    if not field_path or "{" not in field_path:
        return None
    return field_path.split("{", 1)[1].split("}", 1)[0] or None


def event_record(ev: dict[str, Any], pod_uid: str | None = None) -> dict[str, Any]:
    """One core/v1 Event as a ``k8s.event`` record.

    ``ts_ns`` is the event's best own time: lastTimestamp (when it last
    happened), else eventTime (events.k8s.io series), else firstTimestamp;
    when it has none, metadata.creationTimestamp with ``time_inferred``.
    """
    meta = ev.get("metadata") or {}
    obj = ev.get("involvedObject") or {}
    src = ev.get("source") or {}
    rec: dict[str, Any] = {
        "kind": "k8s.event",
        "uid": meta.get("uid"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "type": ev.get("type"),
        "reason": ev.get("reason"),
        "message": ev.get("message"),
        "count": ev.get("count"),
        "action": ev.get("action"),
        "object": {
            "kind": obj.get("kind"),
            "name": obj.get("name"),
            "namespace": obj.get("namespace"),
            "uid": obj.get("uid"),
            "field_path": obj.get("fieldPath"),
        },
        "container": container_of(obj.get("fieldPath")),
        "source": {"component": src.get("component"), "host": src.get("host")},
        "reporting_controller": ev.get("reportingComponent"),
        "reporting_instance": ev.get("reportingInstance"),
        "same_pod": None if not pod_uid or not obj.get("uid") else obj.get("uid") == pod_uid,
    }
    _with_times(
        rec,
        first=ev.get("firstTimestamp"),
        last=ev.get("lastTimestamp"),
        event_time=ev.get("eventTime"),
        created=meta.get("creationTimestamp"),
    )
    for key in ("last_ns", "event_time_ns", "first_ns"):
        if rec[key] is not None:
            rec["ts_ns"], rec["time_from"], rec["time_inferred"] = rec[key], key[:-3], False
            break
    else:
        rec["ts_ns"], rec["time_from"], rec["time_inferred"] = rec["created_ns"], "created", True
    rec["ts"] = iso_ns(rec["ts_ns"]) if rec["ts_ns"] is not None else None
    return rec


def event_records(events: list[dict[str, Any]], pod_uid: str | None) -> list[dict[str, Any]]:
    recs = [event_record(e, pod_uid) for e in events]
    return sorted(recs, key=lambda r: (r["ts_ns"] is None, r["ts_ns"] or 0, r["name"] or ""))


# -- container statuses and transitions --------------------------------------------------
_STATUS_KEYS = (
    ("initContainerStatuses", "init"),
    ("containerStatuses", "app"),
    ("ephemeralContainerStatuses", "ephemeral"),
)


def _state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if not state:
        return None
    (name, body), *_ = state.items()
    body = dict(body or {})
    out: dict[str, Any] = {"state": name, **body}
    _with_times(out, started=body.get("startedAt"), finished=body.get("finishedAt"))
    return out


def status_records(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    out: list[dict[str, Any]] = []
    for key, ctype in _STATUS_KEYS:
        for st in status.get(key) or []:
            out.append(
                {
                    "kind": "k8s.container_status",
                    "container": st.get("name"),
                    "type": ctype,
                    "image": st.get("image"),
                    "image_id": st.get("imageID"),
                    "container_id": st.get("containerID"),
                    "ready": st.get("ready"),
                    "started": st.get("started"),
                    "restart_count": st.get("restartCount"),
                    "state": _state(st.get("state")),
                    "last_state": _state(st.get("lastState")),
                }
            )
    return out


def transition_records(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Container starts and exits (current and last state) and pod condition changes."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    entity = f"{meta.get('namespace')}/{meta.get('name')}"
    out: list[dict[str, Any]] = []

    def add(ts: Any, transition: str, **fields: Any) -> None:
        ns = ts_ns(ts)
        if ns is None:
            return
        out.append(
            {
                "kind": "k8s.transition",
                "ts_ns": ns,
                "ts": iso_ns(ns),
                "transition": transition,
                "pod": entity,
                **fields,
            }
        )

    for key, ctype in _STATUS_KEYS:
        for st in status.get(key) or []:
            restarts = st.get("restartCount")
            for which in ("lastState", "state"):
                state = st.get(which) or {}
                common = {
                    "container": st.get("name"),
                    "type": ctype,
                    "from": which,
                    "restart_count": restarts,
                    "container_id": st.get("containerID"),
                }
                if "running" in state:
                    add((state["running"] or {}).get("startedAt"), "container.started", **common)
                if "terminated" in state:
                    t = state["terminated"] or {}
                    common["container_id"] = t.get("containerID") or common["container_id"]
                    add(t.get("startedAt"), "container.started", **common)
                    add(
                        t.get("finishedAt"),
                        "container.exited",
                        reason=t.get("reason"),
                        exit_code=t.get("exitCode"),
                        signal=t.get("signal"),
                        message=t.get("message"),
                        **common,
                    )
    for cond in status.get("conditions") or []:
        add(
            cond.get("lastTransitionTime"),
            "pod.condition",
            condition=cond.get("type"),
            status=cond.get("status"),
            reason=cond.get("reason"),
            message=cond.get("message"),
        )
    add(meta.get("creationTimestamp"), "pod.created")
    add(status.get("startTime"), "pod.started")
    add(meta.get("deletionTimestamp"), "pod.deletion_requested")
    return sorted(out, key=lambda r: (r["ts_ns"], r["transition"], str(r.get("container"))))


# -- node, owners, logs ----------------------------------------------------------------
def node_summary(node: dict[str, Any]) -> dict[str, Any]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return {
        "name": (node.get("metadata") or {}).get("name"),
        "kernel": info.get("kernelVersion"),
        "os_image": info.get("osImage"),
        "runtime": info.get("containerRuntimeVersion"),
        "kubelet": info.get("kubeletVersion"),
        "architecture": info.get("architecture"),
        "boot_id": info.get("bootID"),
        "machine_id": info.get("machineID"),
    }


def log_facts(data_head: bytes, data_tail: bytes) -> tuple[int | None, int | None]:
    """First and last line times of a ``--timestamps`` log (first and last lines)."""
    first = ts_ns(data_head.split(b"\n", 1)[0].split(b" ", 1)[0].decode("ascii", "replace"))
    lines = [ln for ln in data_tail.split(b"\n") if ln.strip()]
    last = ts_ns(lines[-1].split(b" ", 1)[0].decode("ascii", "replace")) if lines else None
    return first, last


@dataclass
class FactsReport:
    counts: dict[str, int] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    node: dict[str, Any] | None = None
    owners: list[str] = field(default_factory=list)

    def skip(self, subject: str, reason: str) -> None:
        self.skips.append(Skip(COLLECTOR, subject, reason))


def _owners(api: Api, pod: dict[str, Any], rep: FactsReport) -> list[dict[str, Any]]:
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace"))
    out: list[dict[str, Any]] = []
    todo = [(1, r) for r in meta.get("ownerReferences") or []]
    seen: set[str] = set()
    while todo:
        depth, ref = todo.pop(0)
        key = f"{ref.get('kind')}/{ref.get('name')}"
        if key in seen or depth > MAX_OWNER_DEPTH:
            continue
        seen.add(key)
        rec: dict[str, Any] = {"kind": "k8s.owner", "depth": depth, "reference": ref}
        try:
            obj = api.get_owner(
                ns, str(ref.get("apiVersion")), str(ref.get("kind")), str(ref.get("name"))
            )
        except ExuviaError as err:
            rep.skip(f"owner {key}", f"cannot read it: {err}")
            obj = None
            rec["error"] = str(err)
        if obj is None and "error" not in rec:
            rec["error"] = f"exuvia does not read {ref.get('apiVersion')} {ref.get('kind')}"
            rep.skip(f"owner {key}", rec["error"] + "; its ownerReference is kept")
        rec["object"] = obj
        out.append(rec)
        rep.owners.append(key)
        if obj:
            todo.extend(
                (depth + 1, r) for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            )
    return out


def _copy_log(
    writer: BundleWriter,
    api: Api,
    *,
    ns: str,
    pod: str,
    container: str,
    ctype: str,
    previous: bool,
    limit: int,
) -> dict[str, Any]:
    member = f"{LOG_DIR}{container}{'.previous' if previous else ''}.log"
    digest = hashlib.sha256()
    head = b""
    tail = b""
    lines = 0
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        for chunk in api.pod_log(ns, pod, container, previous=previous, limit_bytes=limit):
            spool.write(chunk)
            digest.update(chunk)
            lines += chunk.count(b"\n")
            if len(head) < 128:
                head += chunk[:128]
            tail = (tail + chunk)[-8192:]
        size = spool.tell()
        spool.seek(0)
        entry = writer.add_stream(member, size, spool.read)
    first, last = log_facts(head, tail)
    return {
        "kind": "log_source",
        "origin": "k8s-api",
        "format": "k8s-timestamps",
        "member": member,
        "container": container,
        "type": ctype,
        "previous": previous,
        "size": size,
        "sha256": entry.sha256,
        "lines": lines,
        "first_ns": first,
        "last_ns": last,
        "truncated": size >= limit,
    }


def _logs(
    writer: BundleWriter, api: Api, pod: dict[str, Any], limit: int, rep: FactsReport
) -> list[dict[str, Any]]:
    meta = pod.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    out: list[dict[str, Any]] = []
    for st in status_records(pod):
        container = str(st["container"])
        wants = [False]
        last = st.get("last_state") or {}
        if (st.get("restart_count") or 0) > 0 or last.get("state") == "terminated":
            wants.append(True)
        for previous in wants:
            label = f"log of {container}{' (previous)' if previous else ''}"
            try:
                rec = _copy_log(
                    writer,
                    api,
                    ns=ns,
                    pod=name,
                    container=container,
                    ctype=st["type"],
                    previous=previous,
                    limit=limit,
                )
            except ExuviaError as err:
                rep.skip(label, f"not read: {err}")
                continue
            if rec["truncated"]:
                rep.skip(label, f"longer than --max-file-size ({limit} bytes): kept the first part")
            out.append(rec)
    return out


def write_facts(
    writer: BundleWriter,
    api: Api,
    pod_before: dict[str, Any],
    pod_after: dict[str, Any],
    max_log_bytes: int,
) -> FactsReport:
    """Add every artifacts/k8s/* member and the API logs to ``writer``."""
    rep = FactsReport()
    meta = pod_after.get("metadata") or {}
    ns, name, uid = str(meta.get("namespace")), str(meta.get("name")), meta.get("uid")
    writer.add_bytes(K8S_DIR + "pod-before.json", dumps(pod_before) + b"\n")
    writer.add_bytes(K8S_DIR + "pod.json", dumps(pod_after) + b"\n")

    owners = _owners(api, pod_after, rep)
    writer.add_bytes(K8S_DIR + "owners.jsonl", jsonl(owners))
    rep.counts["k8s.owners"] = len(owners)

    try:
        raw_events = api.list_events(
            ns, f"involvedObject.kind=Pod,involvedObject.name={name},involvedObject.namespace={ns}"
        )
    except ExuviaError as err:
        rep.skip("events", f"not listed: {err}")
        raw_events = []
    events = event_records(raw_events, uid)
    writer.add_bytes(K8S_DIR + "events.jsonl", jsonl(events))
    rep.counts["k8s.events"] = len(events)

    statuses = status_records(pod_after)
    writer.add_bytes(K8S_DIR + "containers.jsonl", jsonl(statuses))
    rep.counts["k8s.containers"] = len(statuses)
    transitions = transition_records(pod_after)
    writer.add_bytes(K8S_DIR + "transitions.jsonl", jsonl(transitions))
    rep.counts["k8s.transitions"] = len(transitions)

    logs = _logs(writer, api, pod_after, max_log_bytes, rep)
    writer.add_bytes(K8S_DIR + "logs.jsonl", jsonl(logs))
    rep.counts["k8s.logs"] = len(logs)

    node_name = (pod_after.get("spec") or {}).get("nodeName")
    if node_name:
        try:
            node = api.get_node(str(node_name))
        except ExuviaError as err:
            rep.skip(f"node {node_name}", f"not read: {err}")
        else:
            writer.add_bytes(K8S_DIR + "node.json", dumps(node) + b"\n")
            rep.node = node_summary(node)
    else:
        rep.skip("node", "the pod is not scheduled on a node")
    return rep
