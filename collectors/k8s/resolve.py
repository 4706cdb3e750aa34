"""A fleet request -> the pods it means now, each with its owner chain.

- ``k8s://NS -l SELECTOR`` (or ``-A``): the pods the API server lists for the
  selector; each pod's owner chain is read (controller references, nearest
  first) so that replicas can be grouped.
- ``k8s://NS/KIND/NAME``: the workload is read, its ``spec.selector`` turned
  into a label selector, the pods listed with it, and only those kept whose
  controller chain really leads to the workload's uid (Deployment ->
  ReplicaSet -> Pod; the others directly): a stray pod carrying the same
  labels is listed under ``excluded``, not captured.

Each pod is recorded as docs/case-format.md describes (uid, node, phase,
resourceVersion, owners …). More than ``max_pods`` pods is refused with the
count; nothing matching is a one-line error naming the namespace and the
selector. :func:`seen_after` lists pods that match later (for
``seen_not_captured``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.k8s.facts import ts_ns
from collectors.k8s.selection import FleetRequest
from collectors.k8s.target import choose_container
from forensics.errors import AccessDenied, ExuviaError, TargetError
from forensics.timeutil import now_ns

DEFAULT_MAX_PODS = 50
MAX_OWNER_DEPTH = 4


class ListApi(Protocol):
    """The part of collectors.k8s.client.KubeClient resolution needs."""

    def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...

    def list_pods_all_namespaces(self, label_selector: str) -> list[dict[str, Any]]: ...

    def get_owner(
        self, namespace: str, api_version: str, kind: str, name: str
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Planned:
    """One pod container to capture (or already known not capturable: ``reason``)."""

    namespace: str
    pod: str
    container: str
    uid: str | None
    node: str | None
    reason: str | None = None


@dataclass
class Resolution:
    request: FleetRequest
    namespace: str | None  # the namespace used (None with -A)
    selector: str  # the label selector the pods were listed with
    at_ns: int
    pods: list[dict[str, Any]]  # case.json pod records
    raw: list[dict[str, Any]]  # the pods as the API sent them, same order
    workload: dict[str, Any] | None = None
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def extra(self) -> dict[str, Any]:
        """The ``resolution`` fields besides the pods (CaseWriter.resolved)."""
        out: dict[str, Any] = {"namespace": self.namespace, "selector": self.selector}
        if self.workload is not None:
            out["workload"] = self.workload
        if self.excluded:
            out["excluded"] = self.excluded
        return out

    def plan(self) -> list[Planned]:
        """Every pod container the request means, in pod order."""
        out: list[Planned] = []
        for rec, pod in zip(self.pods, self.raw, strict=True):
            ns, name, uid, node = rec["namespace"], rec["name"], rec["uid"], rec["node"]
            mode, wanted = self.request.container_mode, self.request.container
            if mode == "all":
                names = list(rec["containers"]) or []
                if not names:
                    out.append(Planned(ns, name, "none", uid, node, "the pod has no containers"))
                out.extend(Planned(ns, name, c, uid, node) for c in names)
                continue
            try:
                chosen, _why = choose_container(pod, wanted)
            except TargetError as err:
                out.append(Planned(ns, name, wanted or "none", uid, node, str(err)))
                continue
            out.append(Planned(ns, name, chosen, uid, node))
        return out


def selector_of(obj: dict[str, Any]) -> str:
    """A workload's ``spec.selector`` (matchLabels and matchExpressions) as a label
    selector string; TargetError when it has none."""
    meta = obj.get("metadata") or {}
    what = f"{obj.get('kind') or 'workload'} {meta.get('namespace')}/{meta.get('name')}"
    sel = (obj.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise TargetError(f"{what} has a selector operator exuvia does not know: {op!r}")
    if not parts:
        raise TargetError(f"{what} has no pod selector")
    return ",".join(parts)


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def _owner_entry(ref: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    out = {
        "kind": str(ref.get("kind") or "?"),
        "name": str(ref.get("name") or "?"),
        "uid": ref.get("uid"),
        "api_version": ref.get("apiVersion"),
    }
    if error:
        out["error"] = error
    return out


class _Owners:
    """Owner chains, each owner read once."""

    def __init__(self, api: ListApi) -> None:
        self.api = api
        self.cache: dict[tuple[str, str], dict[str, Any] | str | None] = {}

    def read(self, ns: str, ref: dict[str, Any]) -> dict[str, Any] | str | None:
        key = (ns, str(ref.get("uid") or f"{ref.get('kind')}/{ref.get('name')}"))
        if key not in self.cache:
            try:
                self.cache[key] = self.api.get_owner(
                    ns, str(ref.get("apiVersion") or ""), str(ref.get("kind")), str(ref.get("name"))
                )
            except (AccessDenied, ExuviaError) as err:
                self.cache[key] = f"cannot read it: {err}"
        return self.cache[key]

    def chain(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        ns = str((pod.get("metadata") or {}).get("namespace"))
        out: list[dict[str, Any]] = []
        obj: dict[str, Any] | None = pod
        while obj is not None and len(out) < MAX_OWNER_DEPTH:
            ref = _controller(obj)
            if ref is None:
                break
            got = self.read(ns, ref)
            if isinstance(got, str):
                out.append(_owner_entry(ref, got))
                break
            if got is None:  # a kind exuvia does not read: the reference is what we know
                out.append(_owner_entry(ref))
                break
            if (got.get("metadata") or {}).get("uid") != ref.get("uid"):
                out.append(_owner_entry(ref, "the object of that name has another uid now"))
                break
            out.append(_owner_entry(ref))
            obj = got
        return out


def pod_record(pod: dict[str, Any], owners: list[dict[str, Any]]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "node": spec.get("nodeName"),
        "phase": (pod.get("status") or {}).get("phase"),
        "resource_version": meta.get("resourceVersion"),
        "created_ns": ts_ns(meta.get("creationTimestamp")),
        "deletion_ns": ts_ns(meta.get("deletionTimestamp")),
        "owners": owners,
        "containers": [c.get("name") for c in spec.get("containers") or [] if c.get("name")],
        "labels": {str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    }


def _where(req: FleetRequest, ns: str | None) -> str:
    return "in any namespace" if req.all_namespaces else f"in namespace {ns}"


def _list(api: ListApi, req: FleetRequest, ns: str | None, selector: str) -> list[dict[str, Any]]:
    if req.all_namespaces:
        pods = api.list_pods_all_namespaces(selector)
    else:
        pods = api.list_pods(str(ns), selector)
    return sorted(
        pods,
        key=lambda p: (
            str((p.get("metadata") or {}).get("namespace")),
            str((p.get("metadata") or {}).get("name")),
        ),
    )


def _workload(api: ListApi, req: FleetRequest, ns: str) -> dict[str, Any]:
    obj = api.get_owner(ns, str(req.workload_api), str(req.workload_kind), str(req.workload_name))
    if obj is None:  # get_owner reads every kind selection.py accepts
        raise TargetError(f"exuvia cannot read {req.workload_kind} objects")
    obj.setdefault("kind", req.workload_kind)
    return obj


def _leads_to(chain: list[dict[str, Any]], uid: str | None, kind: str) -> bool:
    """The controller chain reaches the workload: a Deployment through its ReplicaSet."""
    depth = 2 if kind == "Deployment" else 1
    return (
        len(chain) >= depth
        and chain[depth - 1].get("uid") == uid
        and "error" not in chain[depth - 1]
        and (kind != "Deployment" or chain[0].get("kind") == "ReplicaSet")
    )


def resolve(
    api: ListApi, req: FleetRequest, default_namespace: str, *, max_pods: int = DEFAULT_MAX_PODS
) -> Resolution:
    """The pods ``req`` names now; TargetError when none or more than ``max_pods``."""
    ns = None if req.all_namespaces else (req.namespace or default_namespace)
    owners = _Owners(api)
    workload: dict[str, Any] | None = None
    excluded: list[dict[str, Any]] = []
    if req.workload_kind:
        obj = _workload(api, req, str(ns))
        meta = obj.get("metadata") or {}
        selector = selector_of(obj)
        workload = {
            "kind": req.workload_kind,
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resource_version": meta.get("resourceVersion"),
            "selector": selector,
        }
    else:
        selector = str(req.selector)
    at = now_ns()
    listed = _list(api, req, ns, selector)
    pods, raw = [], []
    for pod in listed:
        chain = owners.chain(pod)
        rec = pod_record(pod, chain)
        if workload is not None and not _leads_to(chain, workload["uid"], workload["kind"]):
            excluded.append(
                {
                    "namespace": rec["namespace"],
                    "name": rec["name"],
                    "uid": rec["uid"],
                    "reason": f"matches the selector but is not owned by "
                    f"{workload['kind']}/{workload['name']}",
                    "owners": chain,
                }
            )
            continue
        pods.append(rec)
        raw.append(pod)
    what = (
        f"{req.workload_kind}/{req.workload_name} (selector {selector})"
        if workload
        else (f"selector {selector!r}")
    )
    if not pods:
        extra = (
            f" ({len(excluded)} pods match the labels but belong to something else)"
            if (excluded)
            else ""
        )
        raise TargetError(f"no pods {_where(req, ns)} match {what}{extra}")
    if len(pods) > max_pods:
        raise TargetError(
            f"{what} {_where(req, ns)} matches {len(pods)} pods, more than --max-pods "
            f"{max_pods}: narrow the selector or raise --max-pods"
        )
    return Resolution(req, ns, selector, at, pods, raw, workload, excluded)


def seen_after(api: ListApi, res: Resolution) -> list[dict[str, Any]]:
    """Pods that match now but were not in the resolution (a scale-up, a replacement)."""
    known = {p["uid"] for p in res.pods} | {p["uid"] for p in res.excluded}
    out = []
    owners = _Owners(api)
    at = now_ns()
    for pod in _list(api, res.request, res.namespace, res.selector):
        meta = pod.get("metadata") or {}
        if meta.get("uid") in known:
            continue
        if res.workload is not None and not _leads_to(
            owners.chain(pod), res.workload["uid"], res.workload["kind"]
        ):
            continue
        out.append(
            {
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "node": (pod.get("spec") or {}).get("nodeName"),
                "phase": (pod.get("status") or {}).get("phase"),
                "seen_ns": at,
                "reason": "matched after the pods were resolved; not captured",
            }
        )
    return out
