"""The case as read from its directory: :func:`load_case` -> :class:`Case`.

This is the surface other parts of exuvia code against (timeline, replay,
findings, scanning, the object store): a case's identity, the pods as they
were resolved, and its bundles with their state. case.json is untrusted input
(it may have been edited or crafted): every field is checked for its type,
file names are plain names inside the directory, and anything malformed is a
one-line :class:`~forensics.errors.BundleError`.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.case.format import (
    BUNDLE_STATES,
    CASE_FILE,
    CASE_FORMAT,
    CASE_STATES,
    COMPLETE,
    INCOMPLETE,
    MAX_CASE_BYTES,
    check_case_version,
    safe_file_name,
)
from forensics.errors import BundleError


@dataclass(frozen=True, slots=True)
class Owner:
    """One link of a pod's owner chain (depth 1 = the pod's own owner)."""

    kind: str
    name: str
    uid: str | None = None
    depth: int = 1


@dataclass(frozen=True, slots=True)
class CasePod:
    """A pod as it was when the selector or workload was resolved."""

    namespace: str
    name: str
    uid: str | None
    node: str | None
    phase: str | None
    resource_version: str | None
    owners: tuple[Owner, ...] = ()
    containers: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def workload(self) -> str | None:
        """``Kind/name`` of the top of the owner chain (a Deployment for its
        ReplicaSet's pods), or None for a bare pod: replicas share it."""
        return f"{self.owners[-1].kind}/{self.owners[-1].name}" if self.owners else None


@dataclass(frozen=True, slots=True)
class SeenPod:
    """A pod that matched after resolution and was not captured."""

    namespace: str
    name: str
    uid: str | None
    node: str | None
    phase: str | None
    seen_ns: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class CaseBundle:
    """One pod container of the case and what became of its capture."""

    path: Path | None  # the bundle file (in the case directory); None when none was written
    file: str | None
    namespace: str
    pod: str
    container: str
    node: str | None
    status: str  # pending, capturing, complete, incomplete, failed (forensics.case.format)
    reason: str | None
    manifest_sha256: str | None
    file_sha256: str | None
    bytes: int | None
    start_ns: int | None
    end_ns: int | None
    pod_uid: str | None = None
    uri: str | None = None

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"

    @property
    def captured(self) -> bool:
        """A sealed bundle holds evidence of this container (complete or not)."""
        return self.path is not None and self.status in (COMPLETE, INCOMPLETE)


@dataclass(frozen=True)
class Case:
    """A loaded case directory."""

    path: Path
    case_id: str
    examiner: str
    state: str
    request: dict[str, Any]
    created_ns: int | None
    updated_ns: int | None
    sealed_ns: int | None
    pods: tuple[CasePod, ...]
    bundles: tuple[CaseBundle, ...]
    seen_not_captured: tuple[SeenPod, ...]
    #: case.json as parsed (for what the fields above do not carry)
    raw: dict[str, Any]

    @property
    def target(self) -> str:
        """The selector or workload as the examiner gave it."""
        return str(self.request.get("target") or "")

    @property
    def captured(self) -> tuple[CaseBundle, ...]:
        """The bundles that hold evidence (complete or incomplete), in case order."""
        return tuple(b for b in self.bundles if b.captured)

    def pod(self, namespace: str, name: str) -> CasePod | None:
        return next((p for p in self.pods if p.namespace == namespace and p.name == name), None)

    def bundle(self, namespace: str, pod: str, container: str) -> CaseBundle | None:
        return next(
            (
                b
                for b in self.bundles
                if (b.namespace, b.pod, b.container) == (namespace, pod, container)
            ),
            None,
        )

    def workload_of(self, bundle: CaseBundle) -> str | None:
        p = self.pod(bundle.namespace, bundle.pod)
        return p.workload if p is not None else None

    def siblings(self) -> dict[str, list[CaseBundle]]:
        """Captured bundles grouped by workload and container (``Kind/name:container``):
        the replicas that should look alike."""
        groups: dict[str, list[CaseBundle]] = {}
        for b in self.captured:
            w = self.workload_of(b)
            if w is not None:
                groups.setdefault(f"{w}:{b.container}", []).append(b)
        return groups


def is_case(path: str | Path) -> bool:
    """A directory holding a regular ``case.json`` (not a symlink)."""
    p = Path(path)
    try:
        st = os.lstat(p / CASE_FILE)
    except OSError:
        return False
    return p.is_dir() and stat.S_ISREG(st.st_mode)


def read_case_bytes(directory: Path) -> bytes:
    """case.json's bytes, read without following a symlink and bounded in size."""
    path = directory / CASE_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as err:
        raise BundleError(f"cannot read {path}: {err.strerror}") from err
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BundleError(f"{path} is not a regular file")
        data = f.read(MAX_CASE_BYTES + 1)
    if len(data) > MAX_CASE_BYTES:
        raise BundleError(f"{path} is larger than {MAX_CASE_BYTES >> 20} MiB: not a case file")
    return data


def read_case_doc(directory: Path) -> dict[str, Any]:
    """case.json as a JSON object with a list of bundles, read as :func:`read_case_bytes`
    reads it, for a writer or a journal that goes on with it (no field checked beyond
    that: :func:`parse_case` checks them all); BundleError when it is not one."""
    data = read_case_bytes(directory)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"cannot read {directory / CASE_FILE}: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("bundles"), list):
        raise BundleError(f"{directory / CASE_FILE} is not a case file")
    return doc


def load_case(path: str | Path) -> Case:
    """Read a case directory (or its case.json); BundleError when it is not one."""
    p = Path(path)
    if p.name == CASE_FILE and not p.is_dir():
        p = p.parent
    return parse_case(p, read_case_bytes(p))


def parse_case(directory: Path, data: bytes) -> Case:
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"{directory / CASE_FILE} is not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != CASE_FORMAT:
        raise BundleError(f"{directory / CASE_FILE} is not an exuvia case file")
    check_case_version(doc.get("version"))
    r = _Reader(directory)
    resolution = r.obj(doc, "resolution")
    state = r.text(doc, "state")
    if state not in CASE_STATES:
        raise r.bad("state", state)
    return Case(
        path=directory,
        case_id=r.text(doc, "case_id"),
        examiner=r.text(doc, "examiner"),
        state=state,
        request=r.obj(doc, "request"),
        created_ns=r.ns(doc, "created_ns"),
        updated_ns=r.ns(doc, "updated_ns"),
        sealed_ns=r.ns(doc, "sealed_ns"),
        pods=tuple(r.pod(i, p) for i, p in enumerate(r.items(resolution, "pods"))),
        bundles=tuple(r.bundle(i, b) for i, b in enumerate(r.items(doc, "bundles"))),
        seen_not_captured=tuple(
            r.seen(i, s) for i, s in enumerate(r.items(doc, "seen_not_captured"))
        ),
        raw=doc,
    )


class _Reader:
    """Typed access to case.json's fields, each failure one line naming the field."""

    def __init__(self, directory: Path) -> None:
        self.where = directory / CASE_FILE
        self.field = ""

    def bad(self, name: str, value: Any) -> BundleError:
        shown = json.dumps(value, default=str)[:80]
        return BundleError(f"{self.where}: {self.field}{name} is not valid ({shown})")

    def obj(self, d: dict[str, Any], name: str) -> dict[str, Any]:
        v = d.get(name)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.bad(name, v)
        return v

    def items(self, d: dict[str, Any], name: str) -> list[dict[str, Any]]:
        v = d.get(name)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.bad(name, v)
        return v

    def text(self, d: dict[str, Any], name: str) -> str:
        v = d.get(name)
        if not isinstance(v, str):
            raise self.bad(name, v)
        return v

    def opt_text(self, d: dict[str, Any], name: str) -> str | None:
        v = d.get(name)
        if v is not None and not isinstance(v, str):
            raise self.bad(name, v)
        return v

    def ns(self, d: dict[str, Any], name: str) -> int | None:
        v = d.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise self.bad(name, v)
        return v

    def pod(self, i: int, d: dict[str, Any]) -> CasePod:
        self.field = f"resolution.pods[{i}]."
        owners = []
        for j, o in enumerate(self.items(d, "owners")):
            self.field = f"resolution.pods[{i}].owners[{j}]."
            owners.append(
                Owner(self.text(o, "kind"), self.text(o, "name"), self.opt_text(o, "uid"), j + 1)
            )
        self.field = f"resolution.pods[{i}]."
        containers = d.get("containers") or []
        labels = self.obj(d, "labels")
        if not isinstance(containers, list) or not all(isinstance(c, str) for c in containers):
            raise self.bad("containers", containers)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise self.bad("labels", labels)
        return CasePod(
            namespace=self.text(d, "namespace"),
            name=self.text(d, "name"),
            uid=self.opt_text(d, "uid"),
            node=self.opt_text(d, "node"),
            phase=self.opt_text(d, "phase"),
            resource_version=self.opt_text(d, "resource_version"),
            owners=tuple(owners),
            containers=tuple(containers),
            labels=dict(labels),
        )

    def seen(self, i: int, d: dict[str, Any]) -> SeenPod:
        self.field = f"seen_not_captured[{i}]."
        return SeenPod(
            namespace=self.text(d, "namespace"),
            name=self.text(d, "name"),
            uid=self.opt_text(d, "uid"),
            node=self.opt_text(d, "node"),
            phase=self.opt_text(d, "phase"),
            seen_ns=self.ns(d, "seen_ns"),
            reason=self.opt_text(d, "reason") or "",
        )

    def bundle(self, i: int, d: dict[str, Any]) -> CaseBundle:
        self.field = f"bundles[{i}]."
        status = self.text(d, "status")
        if status not in BUNDLE_STATES:
            raise self.bad("status", status)
        raw_file = d.get("file")
        file = safe_file_name(raw_file)
        if raw_file is not None and file is None:
            raise self.bad("file", raw_file)
        size = d.get("bytes")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise self.bad("bytes", size)
        return CaseBundle(
            path=self.where.parent / file if file else None,
            file=file,
            namespace=self.text(d, "namespace"),
            pod=self.text(d, "pod"),
            container=self.text(d, "container"),
            node=self.opt_text(d, "node"),
            status=status,
            reason=self.opt_text(d, "reason"),
            manifest_sha256=self.opt_text(d, "manifest_sha256"),
            file_sha256=self.opt_text(d, "file_sha256"),
            bytes=size,
            start_ns=self.ns(d, "start_ns"),
            end_ns=self.ns(d, "end_ns"),
            pod_uid=self.opt_text(d, "pod_uid"),
            uri=self.opt_text(d, "uri"),
        )
