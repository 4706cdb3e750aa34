"""zstd frames compressed on a small pool of threads, written in order.

Every frame of a bundle is an independent zstd frame (format 2.1 ends one
wherever copied contents and other members alternate, and inside a run of
contents at the first member past 2 MiB), so consecutive frames can be
compressed at the same time. One stream compressor, as before, keeps zstd on
one thread: while a run of big files goes through it, the reader and the
writing thread wait for it and the other core idles (docs/performance.md,
"capsplit"). Here each frame is a job given, in turn, to one of ``n``
compressor threads (zstd's stream writer releases the GIL while it works); the
output file still receives the frames whole and in order, so it is the same
bundle: the same frames of the same tar bytes, each frame's blocks cut where
its own compressor cut them. A sync point (a checkpoint) flushes a zstd block
of the open frame and waits until everything before it is in the file, as the
single stream did.

Memory is bounded: input not yet compressed plus output not yet written stay
under ``limit`` bytes (the caller waits for the frame at the head of the line).
"""

from __future__ import annotations

import collections
import functools
import signal
import threading
from typing import TYPE_CHECKING, Any

import zstandard

if TYPE_CHECKING:
    from forensics.bundle.frameindex import Frame
    from forensics.bundle.sink import _HashingFile

#: input not yet compressed plus output not yet written, at most (bytes)
LIMIT = 16 << 20
_BLOCK = b"B"  # flush a zstd block
_END = b"E"  # end the frame


class _Job:
    """One frame: pieces of tar bytes in, compressed pieces out."""

    __slots__ = ("ended", "info", "items", "out", "processed", "thread")

    def __init__(self, thread: _Compressor) -> None:
        self.thread = thread
        self.out: collections.deque[bytes] = collections.deque()
        self.items = 0  # handed to its compressor
        self.processed = 0  # done by it
        self.ended = False  # its end was handed over
        #: (tar_at, tar_len, content, first_member) when it is a frame of the index
        self.info: tuple[int, int, int, int] | None = None

    def idle(self) -> bool:
        return self.processed == self.items


class _Compressor:
    """A thread with its own zstd stream writer, compressing the jobs handed to it."""

    def __init__(self, pool: FramePool, level: int, threads: int) -> None:
        self.pool = pool
        self.job: _Job | None = None
        self._made = 0
        cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self.zw = cctx.stream_writer(self, closefd=False, write_return_read=True)  # type: ignore[arg-type]
        self.q: collections.deque[tuple[_Job, Any] | None] = collections.deque()
        self._ready = threading.Semaphore(0)
        self._thread = threading.Thread(target=self._run, name="bundle-zstd", daemon=True)
        self._thread.start()

    def write(self, data: bytes | memoryview) -> int:
        """zstd's output (called by the stream writer, on this thread)."""
        assert self.job is not None
        piece = bytes(data)
        self.job.out.append(piece)
        self._made += len(piece)
        return len(piece)

    def put(self, job: _Job, item: Any) -> None:
        self.q.append((job, item))
        self._ready.release()

    def stop(self) -> None:
        self.q.append(None)
        self._ready.release()
        self._thread.join()

    def _run(self) -> None:
        # SIGINT and SIGTERM are for the calling thread (see sink._Worker)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        pool = self.pool
        while True:
            self._ready.acquire()
            item = self.q.popleft()
            if item is None:
                return
            job, what = item
            self.job = job
            self._made = 0
            taken = 0
            try:
                if pool.error is None:
                    if what is _END:
                        self.zw.flush(zstandard.FLUSH_FRAME)
                    elif what is _BLOCK:
                        self.zw.flush(zstandard.FLUSH_BLOCK)
                    else:
                        taken = len(what)
                        self.zw.write(what)
            except BaseException as err:  # noqa: BLE001 - handed to the sequencing thread
                pool.error = err
            with pool.cv:
                pool.held += self._made - taken
                job.processed += 1
                pool.cv.notify_all()


class FramePool:
    """Frames compressed by ``n`` threads, written to ``file`` whole and in order.

    Used by one thread (the sink's worker): :meth:`tar`, :meth:`end_frame`,
    :meth:`sync`, :meth:`drain`; :attr:`frames` lists the frames written."""

    def __init__(
        self, file: _HashingFile, level: int, n: int, threads: int = 0, limit: int | None = None
    ) -> None:
        self.file = file
        self.limit = LIMIT if limit is None else limit
        self.cv = threading.Condition()
        self.held = 0
        self.error: BaseException | None = None
        self._threads = [_Compressor(self, level, threads) for _ in range(n)]
        self._turn = 0
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cur: _Job | None = None
        self.frames: list[Frame] = []
        self._frame_file_at = 0

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _feed(self, job: _Job, item: Any) -> None:
        if item is not _END and item is not _BLOCK:
            with self.cv:
                self.held += len(item)
        job.items += 1
        job.thread.put(job, item)

    def tar(self, data: bytes | memoryview) -> None:
        if not len(data):
            return
        if self._cur is None:
            self._cur = _Job(self._threads[self._turn])
            self._turn = (self._turn + 1) % len(self._threads)
            self._jobs.append(self._cur)
        # the caller's buffer may be reused once this returns (sink batches are
        # not, but a memoryview of the reader's ring would be)
        self._feed(self._cur, data if isinstance(data, (bytes, bytearray)) else bytes(data))
        self._pump(bounded=True)

    def end_frame(self, tar_at: int, tar_len: int, content: bool, first: int) -> None:
        """The open frame ends here; recorded in :attr:`frames` when it has tar bytes."""
        job = self._cur
        self._cur = None
        if job is None:
            return
        job.info = (tar_at, tar_len, int(content), first) if tar_len else None
        job.ended = True
        self._feed(job, _END)
        self._pump(bounded=True)

    def sync(self, block: bool) -> None:
        """Everything handed over so far is in the file (a block flushed in the open frame)."""
        if block and self._cur is not None:
            self._feed(self._cur, _BLOCK)
        self._pump(everything=True)

    def drain(self) -> None:
        """Everything is in the file and the open frame, if any, is ended (unrecorded)."""
        if self._cur is not None:
            self._cur.ended = True
            self._feed(self._cur, _END)
            self._cur = None
        self._pump(everything=True)

    def stop(self) -> None:
        for t in self._threads:
            t.stop()

    def _pump(self, *, bounded: bool = False, everything: bool = False) -> None:
        """Write what the frames at the head of the line have ready, in order;
        wait for them while over the limit (``bounded``) or until all is written."""
        while self._jobs:
            self._check()
            job = self._jobs[0]
            if job.out:
                self._write(job)
                continue
            with self.cv:
                idle = job.idle()
            if idle:
                if job.out:  # made before it went idle
                    continue
                if not job.ended:  # the open frame: all of it so far is written
                    return
                self._jobs.popleft()
                at = self._frame_file_at
                if job.info is not None:
                    self.frames.append((at, self.file.count - at, *job.info))
                self._frame_file_at = self.file.count
                continue
            if not everything and not (bounded and self.held > self.limit):
                return
            with self.cv:
                self.cv.wait_for(functools.partial(self._moved, job), timeout=1.0)
        self._check()

    def _moved(self, job: _Job) -> bool:
        return bool(job.out) or job.idle() or self.error is not None

    def _write(self, job: _Job) -> None:
        pieces = []
        out = job.out
        while out:
            pieces.append(out.popleft())
        data = b"".join(pieces)
        self.file.write(data)
        with self.cv:
            self.held -= len(data)
