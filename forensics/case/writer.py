"""Writing a case directory while its bundles are captured.

:class:`CaseWriter` holds case.json in memory and rewrites it atomically
(temporary file, fsync, rename, fsync of the directory) after every change
that matters — the resolution, each bundle starting and finishing, pods seen
later — so an interrupted case is always readable and says what is missing.
Each action is appended to ``case.custody.jsonl`` (and fsync'ed) as it
happens. :meth:`CaseWriter.seal` writes the final case.json, its optional
signature ``case.json.sig``, and the custody entry ``case.sealed`` naming
case.json's SHA-256. It is safe to call from several threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensics import __version__
from forensics.atomic import sync_dir, write_atomic
from forensics.case.format import (
    BUNDLE_STATES,
    CAPTURING,
    CASE_CAPTURING,
    CASE_COMPLETE,
    CASE_FAILED,
    CASE_FILE,
    CASE_FORMAT,
    CASE_INTERRUPTED,
    CASE_PARTIAL,
    CASE_VERSION,
    COMPLETE,
    CUSTODY_FILE,
    FAILED,
    FINAL_STATES,
    INCOMPLETE,
    PENDING,
    SIGNATURE_FILE,
)
from forensics.case.model import read_case_doc
from forensics.custody import CustodyLog
from forensics.errors import BundleError, OutputError
from forensics.timeutil import iso_ns, now_ns

if TYPE_CHECKING:
    from forensics.signing import Signer


def case_dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=False).encode() + b"\n"


@dataclass
class AppendingCustody(CustodyLog):
    """A custody log whose every entry is also appended (and fsync'ed) to a file."""

    path: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fd: int | None = field(default=None, repr=False)

    def open(self, *, append: bool = False) -> None:
        """A new log (``append``: go on with an existing one, never truncated)."""
        if self.path is None:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        flags |= os.O_NOFOLLOW if append else os.O_CREAT | os.O_EXCL
        try:
            self._fd = os.open(self.path, flags, 0o640)
        except OSError as err:
            raise OutputError(f"cannot create {self.path}: {err.strerror}") from err

    def record(self, action: str, **details: Any) -> dict[str, Any]:
        with self._lock:
            entry = super().record(action, **details)
            if self._fd is not None:
                line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n"
                try:
                    os.write(self._fd, line)
                    os.fsync(self._fd)
                except OSError as err:
                    raise OutputError(f"writing {self.path} failed: {err.strerror}") from err
            return entry

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_custody_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of a custody log as written so far (a line cut by a kill skipped)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise OutputError(f"cannot read {path}: {err.strerror}") from err
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


class CaseWriter:
    """Creates a case directory and keeps its case.json current."""

    def __init__(
        self,
        directory: Path,
        *,
        case_id: str,
        examiner: str,
        request: dict[str, Any],
        command_line: list[str] | None = None,
        host: dict[str, Any] | None = None,
        cluster: dict[str, Any] | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.directory = directory
        self.signer = signer
        self._lock = threading.RLock()
        now = now_ns()
        self.doc: dict[str, Any] = {
            "format": CASE_FORMAT,
            "version": CASE_VERSION,
            "case_id": case_id,
            "examiner": examiner,
            "tool": {"name": "exuvia", "version": __version__},
            "host": host or {},
            "command_line": command_line or [],
            "request": request,
            "cluster": cluster,
            "state": CASE_CAPTURING,
            "created_ns": now,
            "created": iso_ns(now),
            "updated_ns": now,
            "sealed_ns": None,
            "resolution": None,
            "bundles": [],
            "seen_not_captured": [],
            "summary": {},
            "custody": CUSTODY_FILE,
            "signature": None,
        }
        self.custody = AppendingCustody(examiner=examiner, path=directory / CUSTODY_FILE)
        self._index: dict[tuple[str, str, str], dict[str, Any]] = {}

    # -- life cycle ---------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, **kw: Any) -> CaseWriter:
        """Make the directory (it may exist, but only empty) and write the first
        case.json; OutputError otherwise."""
        try:
            directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            leftovers = sorted(os.listdir(directory))
        except OSError as err:
            raise OutputError(f"cannot create the case directory {directory}: {err}") from err
        if leftovers:
            shown = ", ".join(leftovers[:3]) + (" …" if len(leftovers) > 3 else "")
            raise OutputError(
                f"{directory} is not empty ({shown}); a case needs a new or empty directory"
            )
        w = cls(directory, **kw)
        w.custody.open()
        w.custody.record(
            "case.started",
            case_id=w.doc["case_id"],
            request=w.doc["request"],
            command_line=w.doc["command_line"],
            signing_key=w.signer.fingerprint if w.signer else None,
        )
        w.write()
        return w

    @classmethod
    def resume(cls, directory: Path, *, examiner: str) -> CaseWriter:
        """Go on with a case whose writer died (case.json ``capturing``, never
        sealed): its case.json as last written, its custody log appended to.
        OutputError when there is none, or it is sealed."""
        try:
            doc = read_case_doc(directory)
        except BundleError as err:
            raise OutputError(str(err)) from None
        if doc.get("state") != CASE_CAPTURING or doc.get("sealed_ns") is not None:
            raise OutputError(f"{directory / CASE_FILE} is already sealed ({doc.get('state')})")
        w = cls(directory, case_id=str(doc.get("case_id")), examiner=examiner,
                request=doc.get("request") or {})  # fmt: skip
        w.doc = doc
        for b in doc["bundles"]:
            w._index[(b.get("namespace"), b.get("pod"), b.get("container"))] = b
        w.custody.entries = read_custody_entries(directory / CUSTODY_FILE)  # seq goes on
        w.custody.open(append=True)
        return w

    def write(self) -> None:
        """Rewrite case.json atomically with the current state."""
        with self._lock:
            self.doc["updated_ns"] = now_ns()
            self.doc["summary"] = self._summary()
            write_atomic(self.directory / CASE_FILE, case_dumps(self.doc), "case file")

    def seal(self, *, interrupted: str | None = None) -> tuple[str, str]:
        """The final case.json (and its signature); returns (state, case.json's SHA-256).
        Bundles still pending are recorded as failed with the reason."""
        with self._lock:
            for b in self.doc["bundles"]:
                if b["status"] == PENDING:
                    b["status"] = FAILED
                    b["reason"] = f"not started: {interrupted}" if interrupted else "not started"
                elif b["status"] == CAPTURING:  # a bug in the caller: say so, do not hide it
                    b["status"] = FAILED
                    b["reason"] = "its capture never reported back"
            state = self._final_state(interrupted)
            now = now_ns()
            self.doc.update(state=state, sealed_ns=now, sealed=iso_ns(now))
            if interrupted:
                self.doc["interrupted"] = interrupted
                self.custody.record("case.interrupted", reason=interrupted)
            if self.signer is not None:
                self.doc["signature"] = {
                    "file": SIGNATURE_FILE,
                    "key_fingerprint": self.signer.fingerprint,
                }
            self.doc["updated_ns"] = now
            self.doc["summary"] = self._summary()
            data = case_dumps(self.doc)
            sha = hashlib.sha256(data).hexdigest()
            write_atomic(self.directory / CASE_FILE, data, "case file")
            if self.signer is not None:
                from forensics.signing import CASE  # noqa: PLC0415 - cryptography only when signing
                from forensics.signing import dumps as sig_dumps  # noqa: PLC0415

                sig = sig_dumps(self.signer.sign(sha, CASE))
                write_atomic(self.directory / SIGNATURE_FILE, sig, "case signature")
            self.custody.record(
                "case.sealed",
                state=state,
                case_sha256=sha,
                bytes=len(data),
                summary=self.doc["summary"],
                key_fingerprint=self.signer.fingerprint if self.signer else None,
            )
            self.custody.close()
            sync_dir(self.directory)
            return state, sha

    def _final_state(self, interrupted: str | None) -> str:
        if interrupted:
            return CASE_INTERRUPTED
        states = [b["status"] for b in self.doc["bundles"]]
        if states and all(s == COMPLETE for s in states):
            return CASE_COMPLETE
        if not any(s in (COMPLETE, INCOMPLETE) for s in states):
            return CASE_FAILED
        return CASE_PARTIAL

    def _summary(self) -> dict[str, Any]:
        bundles = self.doc["bundles"]
        out: dict[str, Any] = {s: 0 for s in BUNDLE_STATES}
        for b in bundles:
            out[b["status"]] += 1
        out["bundles"] = len(bundles)
        out["pods"] = len({(b["namespace"], b["pod"]) for b in bundles})
        out["bytes"] = sum(b.get("bytes") or 0 for b in bundles)
        out["seen_not_captured"] = len(self.doc["seen_not_captured"])
        return out

    # -- what happens ----------------------------------------------------------------------
    def resolved(
        self, pods: list[dict[str, Any]], *, at_ns: int, extra: dict[str, Any] | None = None
    ) -> None:
        """The pod list as resolved (see docs/case-format.md for a pod's fields)."""
        with self._lock:
            self.doc["resolution"] = {"at_ns": at_ns, "at": iso_ns(at_ns), **(extra or {})}
            self.doc["resolution"]["pods"] = pods
            self.custody.record(
                "case.resolved",
                pods=[f"{p['namespace']}/{p['name']}" for p in pods],
                uids=[p.get("uid") for p in pods],
                **(extra or {}),
            )
            self.write()

    def add_bundle(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        file: str | None,
        node: str | None = None,
        pod_uid: str | None = None,
        uri: str | None = None,
        status: str = PENDING,
        reason: str | None = None,
    ) -> None:
        """A pod container to capture (pending), or one already known to fail."""
        entry: dict[str, Any] = {
            "file": file,
            "namespace": namespace,
            "pod": pod,
            "container": container,
            "pod_uid": pod_uid,
            "node": node,
            "uri": uri,
            "status": status,
            "reason": reason,
            "manifest_sha256": None,
            "file_sha256": None,
            "bytes": None,
            "start_ns": None,
            "end_ns": None,
            "signed_by": None,
        }
        with self._lock:
            key = (namespace, pod, container)
            if key in self._index:
                raise ValueError(f"{namespace}/{pod}/{container} is already in the case")
            self._index[key] = entry
            self.doc["bundles"].append(entry)
            if status == FAILED:
                self.custody.record(
                    "bundle.failed",
                    namespace=namespace,
                    pod=pod,
                    container=container,
                    reason=reason,
                )

    def started(self, namespace: str, pod: str, container: str) -> None:
        with self._lock:
            entry = self._index[(namespace, pod, container)]
            entry.update(status=CAPTURING, start_ns=now_ns())
            self.custody.record(
                "bundle.started",
                namespace=namespace,
                pod=pod,
                container=container,
                file=entry["file"],
            )
            self.write()

    def finished(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        status: str,
        reason: str | None = None,
        file: str | None = None,
        manifest_sha256: str | None = None,
        file_sha256: str | None = None,
        size: int | None = None,
        signed_by: str | None = None,
    ) -> None:
        """A capture ended: ``complete``/``incomplete`` with the sealed bundle's
        name and hashes, or ``failed`` with the reason (and no file)."""
        if status not in FINAL_STATES:
            raise ValueError(f"not a final state: {status}")
        with self._lock:
            entry = self._index[(namespace, pod, container)]
            entry.update(
                status=status,
                reason=reason,
                file=file if status != FAILED else None,
                manifest_sha256=manifest_sha256,
                file_sha256=file_sha256,
                bytes=size,
                signed_by=signed_by,
                end_ns=now_ns(),
            )
            self.custody.record(
                "bundle.finished",
                namespace=namespace,
                pod=pod,
                container=container,
                status=status,
                reason=reason,
                file=entry["file"],
                manifest_sha256=manifest_sha256,
                file_sha256=file_sha256,
                bytes=size,
            )
            self.write()

    def seen(self, pods: Iterable[dict[str, Any]]) -> None:
        """Pods that matched after resolution (not captured): namespace, name,
        uid, node, phase, seen_ns, reason."""
        new = list(pods)
        if not new:
            return
        with self._lock:
            known = {
                (s["namespace"], s["name"], s.get("uid")) for s in self.doc["seen_not_captured"]
            }
            added = [p for p in new if (p["namespace"], p["name"], p.get("uid")) not in known]
            if not added:
                return
            self.doc["seen_not_captured"].extend(added)
            self.custody.record(
                "case.pods_seen_after_resolution",
                pods=[f"{p['namespace']}/{p['name']}" for p in added],
            )
            self.write()

    def note(self, action: str, **details: Any) -> None:
        """Any other custody entry (e.g. the cluster connected to)."""
        self.custody.record(action, **details)

    def bundle_entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(b) for b in self.doc["bundles"]]
