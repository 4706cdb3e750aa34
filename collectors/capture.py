"""Capture: run every collector against a resolved target into one bundle.

This is the mediator: collectors yield records and skips; this module decides
where they go (JSONL members, the skip list, the manifest) and owns the file's
life cycle: written as ``<out>.partial``, renamed to ``<out>`` only when complete,
to ``<out>.incomplete`` when interrupted but sealed, and left as ``.partial``
(what it holds verifies up to its last checkpoint) when it could not be sealed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from collectors.context import CollectContext, examiner_host
from collectors.fs.acquire import FilesystemAcquirer, FsStats
from collectors.fs.elf_extract import extract_process_exe
from collectors.fs.mounts import PSEUDO_DIRS, parse_mountinfo, pseudo_mount_points, root_mount
from collectors.fs.policy import CopyPolicy
from collectors.fs.readonly_view import ReadOnlyView, open_readonly_view
from collectors.fs.walk import O_NOATIME
from collectors.network import collect_network
from collectors.processes import collect_processes
from collectors.runtime_logs import copy_process_binary, copy_runtime_logs
from collectors.targets.base import TargetInfo
from forensics import __version__
from forensics.bundle.chunks import RecordChunks
from forensics.bundle.format import ARTIFACT_DIR, CUSTODY_NAME, SKIPS_NAME
from forensics.bundle.writer import BundleWriter
from forensics.custody import CustodyLog
from forensics.errors import (
    AccessDenied,
    CaptureInterrupted,
    ExuviaError,
    OutputError,
    TargetGone,
)
from forensics.jsonfast import dumps
from forensics.records import Record, RecordLine, Skip
from forensics.timeutil import CLOCK_SOURCE, iso_ns, now_ns

if TYPE_CHECKING:  # the in-pod agent never signs and need not load cryptography
    from collectors.memory.acquire import MemoryCollector, MemoryOptions
    from forensics.scan.capture_hook import CaptureScan
    from forensics.signing import Signer

MAX_SKIPS_IN_MANIFEST = 10_000
#: the bundle's zstd level unless --zstd-level says otherwise: level 1 compresses
#: twice as fast as 3 for ~14% more bytes, and zstd was most of the writing
#: process's CPU time (docs/performance.md)
ZSTD_LEVEL = 1
#: zstd worker threads of `exuvia capture` unless --zstd-threads says otherwise
ZSTD_THREADS = 0
_MEMORY_CUSTODY = ("pid", "member", "sha256", "stored_bytes", "read_start", "read_end")


@dataclass
class CaptureOptions:
    output: Path
    examiner: str
    case: str | None = None
    files: str = "changed"
    max_file_size: int = 64 << 20
    compress: str = "zstd"
    #: zstd level of the bundle (docs/performance.md: why 1)
    level: int = ZSTD_LEVEL
    redact: bool = True
    procfs: str = "/proc"
    argv: list[str] = field(default_factory=list)
    threads: int = 2
    #: compress, hash and write the bundle on a worker thread of the capture
    #: process (docs/performance.md, "On the real tree"), so it overlaps the
    #: Python work of writing records and members
    compress_thread: bool = True
    #: sign the manifest with this key (loaded by the caller; never written anywhere)
    signer: Signer | None = None
    #: process memory as ELF cores (None: not captured; docs/memory.md)
    memory: MemoryOptions | None = None
    #: ``--scan RULES``: the compiled rules' hook, made before anything is captured
    scan: CaptureScan | None = None


@dataclass
class CaptureResult:
    path: Path
    complete: bool
    incomplete_reason: str
    manifest_sha256: str
    file_sha256: str
    file_bytes: int
    counts: dict[str, int]
    skips: int
    custody_path: Path
    signed_by: str | None = None
    #: one line each: what was asked for and not done (memory of a process not read)
    warnings: list[str] = field(default_factory=list)


Progress = Callable[[str, FsStats | None], None]


def _dumps(obj: Any) -> bytes:
    return dumps(obj)


class _Skips:
    """Every skip goes to a spooled JSONL member; the manifest gets a summary."""

    def __init__(self) -> None:
        self.spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=4 << 20)
        self.by_collector: Counter[str] = Counter()
        self.first: list[dict[str, Any]] = []

    def add(self, skip: Skip) -> None:
        d = skip.to_dict()
        self.spool.write(_dumps(d) + b"\n")
        self.by_collector[skip.collector] += 1
        if len(self.first) < MAX_SKIPS_IN_MANIFEST:
            self.first.append(d)

    @property
    def total(self) -> int:
        return sum(self.by_collector.values())


class _Interrupt:
    """Turns SIGINT/SIGTERM into CaptureInterrupted inside the capture only."""

    def __enter__(self) -> _Interrupt:
        self._old: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handler
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    @staticmethod
    def _handler(signum: int, _frame: FrameType | None) -> None:
        raise CaptureInterrupted(f"interrupted by {signal.Signals(signum).name}")

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Capture:
    def __init__(
        self,
        target: TargetInfo,
        opts: CaptureOptions,
        progress: Progress | None = None,
        custody: CustodyLog | None = None,
    ) -> None:
        """``custody``: a log that already holds what the examiner did before this
        capture (an interactive triage session); the capture appends to it."""
        self.target = target
        self.opts = opts
        self.progress = progress or (lambda _phase, _stats: None)
        self.custody = custody if custody is not None else CustodyLog(examiner=opts.examiner)
        self.skips = _Skips()
        self.counts: Counter[str] = Counter()
        self.incomplete: list[str] = []
        self.ctx = CollectContext(pid=target.pid, procfs=opts.procfs, redact=opts.redact)
        self.policy = CopyPolicy(opts.files, opts.max_file_size, redact=opts.redact)
        self.view: ReadOnlyView | str = "not opened"
        self.warnings: list[str] = []
        self.memory: MemoryCollector | None = None

    # -- helpers -----------------------------------------------------------------
    def _jsonl(
        self, writer: BundleWriter, collector: str, items: Iterable[Record | RecordLine | Skip]
    ) -> list[Record]:
        """Write a collector's records as chunk members ``artifacts/<collector>/NNNNNN.jsonl``
        (each written before the next checkpoint, so a kill loses none it covers);
        returns the records when the caller needs them (processes), else an empty list."""
        keep = collector == "processes"
        kept: list[Record] = []
        chunks = RecordChunks(writer, collector)
        try:
            for item in items:
                if isinstance(item, RecordLine):  # the filesystem's, encoded in its reader
                    chunks.add(item.line)
                    self.counts[collector] += 1
                    if keep:
                        kept.append(Record(item.kind, item.data))
                    continue
                if isinstance(item, Skip):
                    self.skips.add(item)
                    continue
                chunks.add(_dumps({"kind": item.kind, **item.data}) + b"\n")
                self.counts[collector] += 1
                if keep:
                    kept.append(item)
        except TargetGone as err:
            self._incomplete(f"target exited during the {collector} collector: {err}")
        except CaptureInterrupted:
            chunks.close()  # the records so far go in before the bundle is sealed
            raise
        except OutputError:
            raise
        except OSError as err:
            if err.errno == 28:  # ENOSPC from a file member
                raise
            self._collector_failed(collector, err)
        except Exception as err:  # noqa: BLE001 - one collector's bug must not lose the rest
            self._collector_failed(collector, err)
        entries = chunks.close()
        last = entries[-1]
        self.custody.record(
            "collector.finished",
            collector=collector,
            records=self.counts[collector],
            chunks=len(entries),
            member=last.name,
            sha256=last.sha256,
        )
        return kept

    def _collector_failed(self, collector: str, err: BaseException) -> None:
        reason = f"collector failed: {type(err).__name__}: {err}"
        self.skips.add(Skip(collector, collector, reason))
        self._incomplete(f"{collector} {reason}")

    def _incomplete(self, reason: str) -> None:
        self.incomplete.append(reason)
        self.custody.record("capture.incomplete", reason=reason)

    # -- the run -------------------------------------------------------------------
    def write(self, raw: BinaryIO, output: str = "-") -> tuple[str, str, int]:
        """Write the whole bundle to ``raw`` (a file or a pipe; never seeks).

        Returns (manifest sha256, stream sha256, stream bytes). An interruption
        (signal, target gone) still seals the bundle, marked incomplete; an
        OSError from ``raw`` propagates.
        """
        start = now_ns()
        self.custody.record(
            "capture.started",
            target=self.target.uri,
            tool=f"exuvia {__version__}",
            command_line=self.opts.argv,
            output=output,
            case=self.opts.case,
            signing_key=self.opts.signer.fingerprint if self.opts.signer else None,
        )
        # Before any thread exists (zstd's workers): the view is made by a forked child.
        self.view = open_readonly_view(self.opts.procfs, self.target.pid)
        try:
            with _Interrupt():
                writer = BundleWriter(
                    raw,
                    compress=self.opts.compress,
                    level=self.opts.level,
                    threads=self.opts.threads,
                    offload=self.opts.compress_thread,
                    header={"tool": f"exuvia {__version__}", "target": self.target.uri},
                )
                try:
                    self._collect(writer)
                except CaptureInterrupted as err:
                    self._incomplete(str(err))
                return self._seal(writer, start)
        finally:
            if isinstance(self.view, ReadOnlyView):
                self.view.close()
                self.view = "closed"

    def run(self) -> CaptureResult:
        out = self.opts.output
        partial = out.with_name(out.name + ".partial")
        refuse_existing(out, partial, out.with_name(out.name + ".incomplete"))
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        except OSError as err:
            raise OutputError(f"cannot create {partial}: {err.strerror}") from err
        raw = os.fdopen(fd, "wb", buffering=1 << 20)
        try:
            seal = self.write(raw, output=str(out))
            raw.flush()
            os.fsync(raw.fileno())
        except OSError as err:
            close_quietly(raw)
            raise OutputError(
                f"writing {partial} failed: {err.strerror}; what was written is kept "
                f"there and verifies up to its last checkpoint"
            ) from None
        except CaptureInterrupted as err:
            close_quietly(raw)
            raise OutputError(f"{err} while sealing; partial bundle kept at {partial}") from None
        except ExuviaError:
            # refused before anything was collected (gone, access denied): no evidence
            # to keep, so no half-written file either
            close_quietly(raw)
            partial.unlink(missing_ok=True)
            raise
        manifest_sha, file_sha, file_bytes = seal
        raw.close()
        final = out if not self.incomplete else out.with_name(out.name + ".incomplete")
        os.rename(partial, final)
        self.custody.record(
            "bundle.sealed",
            path=str(final),
            manifest_sha256=manifest_sha,
            file_sha256=file_sha,
            bytes=file_bytes,
            complete=not self.incomplete,
            **signed_details(self.opts.signer),
        )
        custody_path = self.custody.write_sidecar(final)
        return CaptureResult(
            path=final,
            complete=not self.incomplete,
            incomplete_reason="; ".join(self.incomplete),
            manifest_sha256=manifest_sha,
            file_sha256=file_sha,
            file_bytes=file_bytes,
            counts=dict(self.counts),
            skips=self.skips.total,
            custody_path=custody_path,
            signed_by=self.opts.signer.fingerprint if self.opts.signer else None,
            warnings=list(self.warnings),
        )

    def _collect(self, writer: BundleWriter) -> None:
        # Order of volatility: processes and sockets first, files last.
        if not os.path.exists(self.ctx.proc_dir):
            raise TargetGone(f"process {self.target.pid} is gone")
        # Hold the root open now: if the target exits, the files stay readable.
        try:
            root_fd = self._root_fd()
        except FileNotFoundError as err:
            raise TargetGone(f"process {self.target.pid} is gone") from err
        except PermissionError as err:
            raise AccessDenied(
                f"cannot open {self.ctx.root_dir}: permission denied (run as root)"
            ) from err
        try:
            writer.add_bytes(f"{ARTIFACT_DIR}target.json", _dumps(self.target.to_dict()) + b"\n")
            self.custody.record("target.resolved", **_target_summary(self.target))
            self.progress("processes", None)
            procs = self._jsonl(writer, "processes", collect_processes(self.ctx))
            self.progress("network", None)
            self._jsonl(writer, "network", collect_network(self.ctx))
            if self.opts.memory is not None:
                self.progress("memory", None)
                self._memory(writer, self.opts.memory)
            self.progress("binaries", None)
            self._jsonl(writer, "binaries", self._binaries(writer, procs))
            mounts = self._mounts()
            self._jsonl(writer, "mounts", (Record("mount", m.to_record()) for m in mounts))
            self.progress("filesystem", None)
            acq = FilesystemAcquirer(
                writer,
                self._policy_for(procs),
                progress=self._fs_progress,
                reader_process=True,
            )
            scan = self.opts.scan
            yara: list[Record] = []
            if scan is not None:
                acq.scan = scan
                self.custody.record("scan.rules", sha256=scan.rules.sha256,
                                    rules=scan.rules.count, source=scan.rules.source)  # fmt: skip
                yara.append(Record("yara_rules", {k: v for k, v in scan.header().items()
                                                  if k != "kind"}))  # fmt: skip
                if self.memory is not None:  # the cores' matches (--memory --scan)
                    yara.extend(Record(str(r.pop("kind")), r) for r in self.memory.yara)
            no_descend = frozenset(pseudo_mount_points(mounts)) | frozenset(PSEUDO_DIRS)
            upper_fd = self._upper_fd(mounts)
            try:
                items = acq.run(root_fd, no_descend, upper_fd)
                if scan is not None:
                    items = _split_yara(items, yara)
                self._jsonl(writer, "filesystem", items)
            finally:
                if upper_fd is not None:
                    os.close(upper_fd)
            if scan is not None:
                self._jsonl(writer, "yara", yara)  # matches of --scan, with their rules
            self.progress("filesystem", acq.stats)  # the walk's final numbers
            self._jsonl(writer, "elf", acq.elf.records())  # ELF extracts (sbom)
            if acq.stats.noatime_refused:
                self.skips.add(
                    Skip(
                        "filesystem",
                        "/",
                        "kernel refused O_NOATIME for some "
                        "files; their access times may have changed",
                        "EPERM",
                    )
                )
            self.fs_stats = acq.stats
            self.progress("logs", None)
            self._jsonl(writer, "logs", self._logs(writer, acq.stats))
        finally:
            os.close(root_fd)

    def _memory(self, writer: BundleWriter, opts: MemoryOptions) -> None:
        """Cores of the target's processes, right after the process table (volatile)."""

        def done(summary: dict[str, Any]) -> None:
            self.custody.record("memory.read", **{k: summary[k] for k in _MEMORY_CUSTODY})

        # imported with --memory only: every other capture (the in-pod agent's first of
        # all, whose start is CPU its node pays per pod) does without it
        from collectors.memory.acquire import MemoryCollector  # noqa: PLC0415

        self.memory = MemoryCollector(self.ctx, writer, opts, on_done=done)
        if self.opts.scan is not None:  # cores scanned as they stream (their own scanner:
            # the --scan hook's is made in the forked file reader, not here)
            from forensics.scan.engine import ChunkScanner  # noqa: PLC0415 - engine on demand

            self.memory.scanner = ChunkScanner(self.opts.scan.rules.rules, self.opts.scan.limits)
        try:
            self._jsonl(writer, "memory", self.memory.run())
        finally:  # an interruption too: what was not captured is said
            stats = self.memory.stats
            for item in stats.not_captured:
                self.warnings.append(f"memory of pid {item['pid']} not captured: {item['reason']}")
                if "member" in item:  # cut short (the others are skips already)
                    self.skips.add(Skip("memory", f"pid {item['pid']}", item["reason"]))
            if not stats.processes:
                self.warnings.append("--memory was asked but no process memory was captured")

    def _root_fd(self) -> int:
        """The read-only view's root when we have one, else /proc/<pid>/root."""
        if isinstance(self.view, ReadOnlyView):
            self.fs_view = "read-only, noatime private copy of the target's mount namespace"
            return os.dup(self.view.root_fd)
        self.fs_view = f"/proc/{self.target.pid}/root with O_NOATIME"
        self.skips.add(
            Skip(
                "filesystem",
                "/",
                f"no kernel-enforced read-only view ({self.view}); read through "
                "/proc/<pid>/root with O_NOATIME: reading symlinks can still update "
                "their access times",
            )
        )
        return _open_root(self.ctx.root_dir)

    def _fs_progress(self, stats: FsStats) -> None:
        self.progress("filesystem", stats)

    def _policy_for(self, procs: list[Record]) -> CopyPolicy:
        """Add the main process's cwd to the places text logs are looked for."""
        for rec in procs:
            if rec.data.get("pid") == self.target.pid:
                cwd = rec.data.get("cwd")
                if isinstance(cwd, str) and cwd not in ("", "/"):
                    base = cwd.encode().rstrip(b"/") + b"/"
                    return dataclasses.replace(self.policy, log_dirs=(*self.policy.log_dirs, base))
        return self.policy

    def _binaries(self, writer: BundleWriter, procs: list[Record]) -> Iterator[Record | Skip]:
        for rec in procs:
            if not (rec.data.get("exe_deleted") or rec.data.get("exe_memfd")):
                continue
            pid = rec.data.get("pid")
            if not isinstance(pid, int):
                continue
            data, skip = copy_process_binary(writer, self.opts.procfs, pid, self.opts.max_file_size)
            if skip is not None:
                yield skip
            if data is not None:
                data["exe"] = rec.data.get("exe")
                data["reason"] = "memfd" if rec.data.get("exe_memfd") else "deleted"
                yield Record("binary", data)
            else:  # too big to copy: keep the ELF extract the inventory needs
                yield from extract_process_exe(writer, self.opts.procfs, pid, rec.data)

    def _mounts(self) -> list[Any]:
        try:
            with open(f"{self.ctx.proc_dir}/mountinfo", "rb") as f:
                return parse_mountinfo(f.read())
        except OSError as err:
            self.skips.add(Skip("mounts", "mountinfo", f"cannot read: {err.strerror}"))
            return []

    def _upper_fd(self, mounts: list[Any]) -> int | None:
        root = root_mount(mounts)
        upper = self.target.upperdir
        if upper is None and root is not None and root.fstype == "overlay":
            upper = root.overlay.get("upperdir")
        if not upper:
            why = (
                "root filesystem is not overlayfs"
                if root is None or root.fstype != "overlay"
                else "overlay upper layer not reported"
            )
            self.skips.add(Skip("filesystem", "changed-since-start", f"unknown: {why}"))
            return None
        try:
            # the upper layer's atimes are the target's: read it without touching them
            return _open_root(upper)
        except OSError as err:
            self.skips.add(
                Skip(
                    "filesystem",
                    "changed-since-start",
                    f"unknown: overlay upper layer {upper} not visible from here ({err.strerror})",
                )
            )
            return None

    def _logs(self, writer: BundleWriter, fs: FsStats) -> Iterator[Record | Skip]:
        yield from copy_runtime_logs(
            writer, self.target.log_paths, self.target.log_format, self.opts.max_file_size
        )
        for entry in fs.log_members:
            yield Record("log_source", entry)

    def _seal(self, writer: BundleWriter, start: int) -> tuple[str, str, int]:
        end = now_ns()
        size = self.skips.spool.tell()
        self.skips.spool.seek(0)
        writer.add_stream(SKIPS_NAME, size, self.skips.spool.read)
        self.custody.record("capture.finished", complete=not self.incomplete)
        writer.add_bytes(CUSTODY_NAME, self.custody.to_jsonl())
        fs = getattr(self, "fs_stats", None)
        manifest: dict[str, Any] = {
            "tool": {"name": "exuvia", "version": __version__},
            "case": self.opts.case,
            "examiner": self.opts.examiner,
            "host": examiner_host(),
            "command_line": self.opts.argv,
            "clock": {"source": CLOCK_SOURCE, "timezone": "UTC", "resolution": "ns"},
            "acquisition": {
                "start_ns": start,
                "start": iso_ns(start),
                "end_ns": end,
                "end": iso_ns(end),
            },
            "target": self.target.to_dict(),
            "options": {
                "files": self.opts.files,
                "max_file_size": self.opts.max_file_size,
                "compress": self.opts.compress,
                **({"zstd_level": self.opts.level} if self.opts.compress == "zstd" else {}),
                "redact": self.opts.redact,
                "memory": self.opts.memory.mode if self.opts.memory else None,
                "scan_rules_sha256": self.opts.scan.rules.sha256 if self.opts.scan else None,
            },
            "memory": self._memory_manifest(),
            "complete": not self.incomplete,
            "incomplete_reason": "; ".join(self.incomplete),
            "counts": dict(self.counts),
            "filesystem_view": getattr(self, "fs_view", None),
            "filesystem": (
                {k: v for k, v in vars(fs).items() if k != "log_members"} if fs else None
            ),
            "skips": {
                "total": self.skips.total,
                "by_collector": dict(self.skips.by_collector),
                "member": SKIPS_NAME,
                "listed": self.skips.first,
                "listed_all": self.skips.total <= MAX_SKIPS_IN_MANIFEST,
            },
        }
        manifest_sha, _size = writer.finish(manifest, signer=self.opts.signer)
        return manifest_sha, writer.file_sha256, writer.file_bytes

    def _memory_manifest(self) -> dict[str, Any] | None:
        """Per process: its core member and its smear window (start/end of its read)."""
        opts = self.opts.memory
        if opts is None:
            return None
        stats = self.memory.stats if self.memory is not None else None
        return {
            "mode": opts.mode,
            "max_size": opts.max_size,
            "pids": list(opts.pids) if opts.pids is not None else None,
            "atomic": False,
            "processes": stats.processes if stats else [],
            "not_captured": stats.not_captured if stats else [],
            "stored_bytes": stats.stored_bytes if stats else 0,
        }


def signed_details(signer: Signer | None) -> dict[str, Any]:
    """What the sidecar's ``bundle.sealed`` entry records of a signature: the
    public key's fingerprint only (never key material)."""
    return {"key_fingerprint": signer.fingerprint} if signer is not None else {}


def refuse_existing(*paths: Path) -> None:
    """Evidence is never overwritten: any of these paths existing is an error.

    lexists, not Path.exists: a directory we may not enter must not raise."""
    for p in paths:
        if os.path.lexists(p):
            raise OutputError(f"{p} already exists; refusing to overwrite evidence")


def close_quietly(raw: IO[bytes]) -> None:
    """Close after a write error: a flush that fails again must not mask the first."""
    fd = raw.fileno()
    with contextlib.suppress(OSError):
        raw.close()
    if not raw.closed:  # the flush failed before the descriptor was closed
        with contextlib.suppress(OSError):
            os.close(fd)


def _open_root(path: str) -> int:
    """The target's root, opened so that listing it leaves its atime alone."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        return os.open(path, flags | O_NOATIME)
    except PermissionError:
        return os.open(path, flags)


def _split_yara(
    items: Iterable[Record | RecordLine | Skip], out: list[Record]
) -> Iterator[Record | RecordLine | Skip]:
    """The filesystem's records, with the ``--scan`` records each file's record carries
    (``yara``) moved to ``out`` (the yara collector's records)."""
    for item in items:
        if isinstance(item, Record) and "yara" in item.data:
            for rec in item.data.pop("yara"):
                data = {k: v for k, v in rec.items() if k != "kind"}
                out.append(Record(str(rec.get("kind", "yara_match")), data))
        yield item


def _target_summary(t: TargetInfo) -> dict[str, Any]:
    return {
        "uri": t.uri,
        "runtime": t.runtime,
        "pid": t.pid,
        "container_id": t.container_id,
        "image": t.image,
        "image_digest": t.image_digest,
    }


def capture(
    target: TargetInfo,
    opts: CaptureOptions,
    progress: Progress | None = None,
    custody: CustodyLog | None = None,
) -> CaptureResult:
    return Capture(target, opts, progress, custody).run()
