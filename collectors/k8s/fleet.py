"""Fleet capture: every pod container a selector or workload names, concurrently,
into one case directory (docs/case-format.md, docs/kubernetes.md).

1. Resolve the request (collectors.k8s.resolve) before anything is written, so
   bad input (no match, too many pods) leaves nothing behind.
2. Create the case (forensics.case.CaseWriter): case.json and its custody log,
   the pods as resolved, one ``pending`` bundle per pod container.
3. Capture: one worker thread per pod (its containers one after the other, so an
   agent is reused and the pod is never patched twice at once), at most
   ``parallel`` at a time. At most ``per_node`` streams of one node at once (an
   agent's capture is what loads the node); a worker whose node has none free
   has already added its agent and waited for it to run, so the next pod's
   agent starts while the others stream (at most ``2 * per_node`` workers per
   node: ``per_node`` streaming, ``per_node`` starting). Each container goes through
   the single-pod path (collectors.k8s.capture.K8sCapture: the same agent image,
   security-profile matching, relay and sealing) with its own KubeClient (the
   kubernetes client's exec swaps a method of its ApiClient while it connects,
   so one ApiClient is never shared between threads), a ``sibling`` of the
   fleet's: the kubeconfig is read once. A failure of one pod is
   recorded with its reason and touches nothing else.
4. Ctrl-C or SIGTERM: no new capture starts; every open exec stream is shut, so
   each in-flight capture seals what it received as ``.incomplete``; the case
   is sealed ``interrupted``.
5. With ``--scan`` (``after_seal``): each bundle, once sealed, is scanned on the
   client by the same code as `exuvia scan` (its ``.yara.json`` sidecar beside
   it), in that pod's worker, so the other pods' captures go on meanwhile; the
   case's custody log records each scan (``bundle.scanned`` / ``bundle.scan_failed``).
6. The pods matching now are listed again: new ones go to ``seen_not_captured``.
   The case is sealed (signed with ``--sign``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from collectors.capture import CaptureOptions
from collectors.context import examiner_host
from collectors.k8s.capture import K8sCapture, K8sOptions
from collectors.k8s.client import KubeClient
from collectors.k8s.fleetqueue import run_queue
from collectors.k8s.resolve import DEFAULT_MAX_PODS, Planned, Resolution, resolve, seen_after
from collectors.k8s.selection import FleetRequest
from collectors.k8s.stream import cut
from forensics.case import CaseWriter, bundle_file_name
from forensics.case.format import COMPLETE, FAILED, INCOMPLETE
from forensics.errors import ExuviaError, OutputError

DEFAULT_PARALLEL = 8
DEFAULT_PER_NODE = 4
#: workers of one node beyond its stream slots (starting their agents meanwhile), per slot
AHEAD_PER_SLOT = 1
#: exit statuses (docs/kubernetes.md, "Exit status")
EXIT_COMPLETE, EXIT_PARTIAL, EXIT_NOTHING, EXIT_INTERRUPTED = 0, 3, 4, 130
_EXITS = {"complete": EXIT_COMPLETE, "partial": EXIT_PARTIAL, "failed": EXIT_NOTHING,
          "interrupted": EXIT_INTERRUPTED}  # fmt: skip


@dataclass(frozen=True)
class FleetEvent:
    """What the progress display is told: ``resolved``, ``started``, ``finished``, ``tick``."""

    kind: str
    item: Planned | None = None
    status: str | None = None
    reason: str | None = None
    nbytes: int = 0
    #: with --scan: the scan's summary (``matches``, ``rules``), or ``error``
    scan: dict[str, Any] | None = None
    done: int = 0
    total: int = 0
    total_bytes: int = 0
    elapsed: float = 0.0


@dataclass
class FleetResult:
    directory: Path
    case_id: str
    state: str
    case_sha256: str
    summary: dict[str, Any]
    bundles: list[dict[str, Any]]
    seen_not_captured: int
    signed_by: str | None
    #: the case directory, or the s3://BUCKET/PREFIX/ it was captured into
    location: str = ""
    #: with --scan: ``namespace/pod/container`` -> the scan's summary (or ``error``)
    scans: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        return _EXITS.get(self.state, EXIT_PARTIAL)


def new_case_id() -> str:
    return time.strftime("case-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(3)


def refuse_nonempty(directory: Path) -> None:
    """The case directory must be new or empty (checked again by CaseWriter.create)."""
    try:
        leftovers = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    except OSError as err:
        raise OutputError(f"cannot use {directory} as the case directory: {err}") from err
    if leftovers:
        raise OutputError(f"{directory} is not empty; a case needs a new or empty directory")


class _Tracked:
    """A capture's view of the API: a KubeClient whose exec streams can be shut from
    another thread (Ctrl-C), and which counts the bytes they carry."""

    def __init__(self, kc: KubeClient, fleet: FleetCapture, node: str = "?") -> None:
        self._kc = kc
        self._fleet = fleet
        self.node = node
        self.streaming = False
        self._slot = False  # holds one of the node's stream slots

    def take_slot(self) -> None:
        """Wait for a stream slot of the node (not when the fleet is interrupted)."""
        if not self._slot:
            self._slot = self._fleet.stream_slot(self.node)

    def give_slot(self) -> None:
        if self._slot:
            self._slot = False
            self._fleet.stream_done(self.node)

    def progress(self, phase: str, _stats: Any) -> None:
        """K8sCapture's progress: the slot is taken just before its stream starts, so
        the bundle's custody log times the stream itself, not the wait for a slot."""
        if phase == "receiving the bundle":
            self.take_slot()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kc, name)

    def _refuse_if_stopped(self) -> None:
        if self._fleet.stop.is_set() and not self.streaming:
            raise ExuviaError(f"interrupted ({self._fleet.stop_reason})")

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        self._refuse_if_stopped()
        return self._kc.get_pod(namespace, name)

    def add_ephemeral_container(self, *a: Any, **kw: Any) -> dict[str, Any]:
        self._refuse_if_stopped()
        return self._kc.add_ephemeral_container(*a, **kw)

    def watch_pod(self, *a: Any, **kw: Any) -> Iterator[dict[str, Any]]:
        self._refuse_if_stopped()
        for pod in self._kc.watch_pod(*a, **kw):
            self._refuse_if_stopped()
            yield pod

    def exec(self, *a: Any, **kw: Any) -> Any:
        """The agent's capture, in one of the node's stream slots."""
        self._refuse_if_stopped()
        self.take_slot()
        self._refuse_if_stopped()  # interrupted while waiting for the slot
        self.streaming = True
        try:
            channel = self._kc.exec(*a, **kw)
        except BaseException:
            self.give_slot()
            raise
        return _Channel(channel, self._fleet, self.give_slot)


class _Channel:
    def __init__(self, inner: Any, fleet: FleetCapture, done: Callable[[], None]) -> None:
        self._inner = inner
        self._fleet = fleet
        self._free_slot = done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        self._fleet.channel_opened(self)
        try:
            for ch, data in self._inner.frames():
                if ch == 1:
                    self._fleet.moved(len(data))
                yield ch, data
        finally:
            self._fleet.channel_closed(self)
            self._free_slot()

    def shut(self) -> None:
        """Cut the connection under the reading thread: its read fails at once."""
        cut(self._inner)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._free_slot()


@dataclass
class FleetCapture:
    request: FleetRequest
    opts: CaptureOptions  # opts.output is the case directory
    k8s: K8sOptions
    parallel: int = DEFAULT_PARALLEL
    per_node: int = DEFAULT_PER_NODE
    max_pods: int = DEFAULT_MAX_PODS
    events: Callable[[FleetEvent], None] = lambda _e: None
    client_factory: Callable[[], KubeClient] | None = None
    #: ``-o s3://…/``: collectors.store.fleet_sink.FleetStoreSink (None: a case directory)
    sink: Any = None
    #: called with each sealed bundle's path (``--scan``); returns a summary for the
    #: custody log and the result; ExuviaError is recorded, never fatal to the case
    after_seal: Callable[[Path], dict[str, Any]] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _channels: set[_Channel] = field(default_factory=set)
    _bytes: int = 0
    _done: int = 0
    _total: int = 0
    _t0: float = 0.0
    _scans: dict[str, dict[str, Any]] = field(default_factory=dict)
    _streams: dict[str, int] = field(default_factory=dict)  # node -> streams open
    _stream_cond: threading.Condition = field(default_factory=threading.Condition)
    _main_client: KubeClient | None = None

    # -- the API client -------------------------------------------------------------
    def _client(self) -> KubeClient:
        if self.client_factory is not None:
            return self.client_factory()
        if self._main_client is not None:  # a worker's: the configuration already loaded
            return self._main_client.sibling()
        return KubeClient(self.k8s.kubeconfig, self.k8s.context)

    # -- streams, for progress and for interruption -------------------------------------
    def channel_opened(self, ch: _Channel) -> None:
        with self._lock:
            self._channels.add(ch)
            stopped = self.stop.is_set()
        if stopped:
            ch.shut()

    def channel_closed(self, ch: _Channel) -> None:
        with self._lock:
            self._channels.discard(ch)

    def stream_slot(self, node: str) -> bool:
        """Wait for one of ``node``'s ``per_node`` stream slots: True when taken, False
        when the fleet was interrupted meanwhile (the capture then seals what it has)."""
        with self._stream_cond:
            while self._streams.get(node, 0) >= self.per_node:
                if self.stop.is_set():
                    return False
                self._stream_cond.wait(0.5)
            self._streams[node] = self._streams.get(node, 0) + 1
            return True

    def stream_done(self, node: str) -> None:
        with self._stream_cond:
            self._streams[node] -= 1
            self._stream_cond.notify_all()

    def moved(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    def interrupt(self, reason: str) -> None:
        """Start no more captures; the run loop then cuts the streams in flight (they
        seal incomplete). Safe in a signal handler: it takes no lock of ours (the
        interrupted main thread may hold one)."""
        if not self.stop_reason:
            self.stop_reason = reason
        self.stop.set()

    def _shut_streams(self) -> None:
        with self._lock:
            open_now = list(self._channels)
        for ch in open_now:
            ch.shut()

    def _event(self, kind: str, item: Planned | None = None, **kw: Any) -> None:
        with self._lock:
            ev = FleetEvent(kind, item, done=self._done, total=self._total,
                            total_bytes=self._bytes, elapsed=time.monotonic() - self._t0,
                            **kw)  # fmt: skip
        self.events(ev)

    # -- the run -----------------------------------------------------------------------
    def run(self) -> FleetResult:
        directory = self.opts.output
        refuse_nonempty(directory)
        if self.sink is not None:
            self.sink.preflight()  # once, before any pod is touched
        self._t0 = time.monotonic()
        kc = self._main_client = self._client()
        try:
            res = resolve(kc, self.request, kc.namespace, max_pods=self.max_pods)
            writer = self._create(directory, kc, res)
            if self.sink is not None:
                writer.note("store.case", **self.sink.describe())
            plan = res.plan()
            with self._lock:
                self._total = len(plan)
            self._event("resolved")
            # from here on a signal never kills the client: the case is always sealed
            with _signals(self.interrupt):
                self._capture_all(writer, plan)
                try:
                    writer.seen(seen_after(kc, res))
                except ExuviaError as err:
                    writer.note("k8s.warning", message=f"pods not listed again: {err}")
                state, sha = writer.seal(interrupted=self.stop_reason or None)
                if self.sink is not None:
                    self.sink.finish(directory)
        finally:
            kc.close()
        doc = writer.doc
        return FleetResult(
            directory=directory,
            case_id=doc["case_id"],
            state=state,
            case_sha256=sha,
            summary=dict(doc["summary"]),
            bundles=writer.bundle_entries(),
            seen_not_captured=len(doc["seen_not_captured"]),
            signed_by=self.opts.signer.fingerprint if self.opts.signer else None,
            location=self.sink.location if self.sink is not None else str(directory),
            scans=dict(self._scans),
        )

    def _create(self, directory: Path, kc: KubeClient, res: Resolution) -> CaseWriter:
        info = kc.info
        request = self.request.as_dict(
            max_pods=self.max_pods, parallel=self.parallel, per_node=self.per_node
        )
        writer = CaseWriter.create(
            directory,
            case_id=str(self.opts.case),
            examiner=self.opts.examiner,
            request=request,
            command_line=self.opts.argv,
            host=examiner_host(),
            cluster={"server": info.server, "source": info.source, "context": info.context},
            signer=self.opts.signer,
        )
        writer.note("k8s.connected", server=info.server, source=info.source,
                    context=info.context, namespace=info.namespace)  # fmt: skip
        writer.resolved(res.pods, at_ns=res.at_ns, extra=res.extra())
        for p in res.plan():
            writer.add_bundle(
                p.namespace, p.pod, p.container,
                file=None if p.reason else bundle_file_name(p.namespace, p.pod, p.container),
                node=p.node, pod_uid=p.uid, uri=f"k8s://{p.namespace}/{p.pod}/{p.container}",
                status=FAILED if p.reason else "pending", reason=p.reason,
            )  # fmt: skip
        writer.write()
        return writer

    def _capture_all(self, writer: CaseWriter, plan: list[Planned]) -> None:
        pods: dict[tuple[str, str], list[Planned]] = {}
        for p in plan:
            if p.reason:
                self._finish_event(p, FAILED, p.reason, 0)
                continue
            pods.setdefault((p.namespace, p.pod), []).append(p)
        queue = list(pods.values())
        run_queue(
            queue,
            lambda items: self._capture_pod(writer, items),
            node_of=lambda items: items[0].node or "?",
            label_of=lambda items: f"capture {items[0].namespace}/{items[0].pod}",
            parallel=self.parallel,
            ahead=self.per_node * (1 + AHEAD_PER_SLOT),
            stop=self.stop,
            on_stop=self._shut_streams,
            tick=lambda: self._event("tick"),
        )

    def _capture_pod(self, writer: CaseWriter, items: list[Planned]) -> None:
        kc: KubeClient | None = None
        try:
            for p in items:
                if self.stop.is_set():
                    return  # the rest stay pending: sealed "not started: <why>"
                if kc is None:
                    try:
                        kc = self._client()
                    except ExuviaError as err:
                        self._failed(writer, p, str(err))
                        continue
                self._capture_one(writer, _Tracked(kc, self, p.node or "?"), p)
        finally:
            if kc is not None:
                kc.close()

    def _capture_one(self, writer: CaseWriter, api: _Tracked, p: Planned) -> None:
        file = bundle_file_name(p.namespace, p.pod, p.container)
        writer.started(p.namespace, p.pod, p.container)
        self._event("started", p)
        opts = dataclasses.replace(self.opts, output=self.opts.output / file)
        k8s = dataclasses.replace(self.k8s, expect_uid=p.uid)
        uri = f"k8s://{p.namespace}/{p.pod}/{p.container}"
        try:
            if self.sink is not None:
                cap = self.sink.capture(uri, opts, k8s, api, file, progress=api.progress)
            else:
                cap = K8sCapture(uri, opts, k8s, progress=api.progress, client=api)  # type: ignore[arg-type]
            res = cap.run()
        except ExuviaError as err:
            self._failed(writer, p, str(err))
            return
        except Exception as err:  # noqa: BLE001 - a bug must not take the other pods with it
            self._failed(writer, p, f"internal error: {type(err).__name__}: {err}")
            return
        finally:
            api.give_slot()  # a capture that ended before its stream
        status = COMPLETE if res.complete else INCOMPLETE
        reason = res.incomplete_reason or None
        if not res.complete and self.stop.is_set():
            reason = f"interrupted ({self.stop_reason}): {reason}"
        writer.finished(
            p.namespace, p.pod, p.container, status=status, reason=reason, file=res.path.name,
            manifest_sha256=res.manifest_sha256, file_sha256=res.file_sha256,
            size=res.file_bytes, signed_by=res.signed_by,
        )  # fmt: skip
        scan = self._scan(writer, p, res.path) if self.after_seal is not None else None
        self._finish_event(p, status, reason, res.file_bytes, scan)

    def _scan(self, writer: CaseWriter, p: Planned, path: Path) -> dict[str, Any]:
        """Scan the sealed bundle (``--scan``); a failure is recorded, never raised."""
        assert self.after_seal is not None
        where = {"namespace": p.namespace, "pod": p.pod, "container": p.container}
        if self.stop.is_set():
            summary: dict[str, Any] = {"error": f"not scanned: interrupted ({self.stop_reason})"}
        else:
            try:
                summary = self.after_seal(path)
            except ExuviaError as err:
                summary = {"error": str(err)}
            except Exception as err:  # noqa: BLE001 - a bug must not take the other pods with it
                summary = {"error": f"internal error: {type(err).__name__}: {err}"}
        action = "bundle.scan_failed" if "error" in summary else "bundle.scanned"
        writer.note(action, **where, file=path.name, **summary)
        with self._lock:
            self._scans[f"{p.namespace}/{p.pod}/{p.container}"] = summary
        return summary

    def _failed(self, writer: CaseWriter, p: Planned, reason: str) -> None:
        if self.stop.is_set() and "interrupted" not in reason:
            reason = f"interrupted ({self.stop_reason}): {reason}"
        writer.finished(p.namespace, p.pod, p.container, status=FAILED, reason=reason)
        self._finish_event(p, FAILED, reason, 0)

    def _finish_event(
        self,
        p: Planned,
        status: str,
        reason: str | None,
        nbytes: int,
        scan: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            self._done += 1
        self._event("finished", p, status=status, reason=reason, nbytes=nbytes, scan=scan)


@contextlib.contextmanager
def _signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """SIGINT and SIGTERM interrupt the fleet instead of killing it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        on_signal(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def fleet_capture(
    request: FleetRequest, opts: CaptureOptions, k8s: K8sOptions, **kw: Any
) -> FleetResult:
    """Capture every pod container ``request`` names into the case directory ``opts.output``."""
    if not opts.case:
        opts = dataclasses.replace(opts, case=new_case_id())
    return FleetCapture(request, opts, k8s, **kw).run()
