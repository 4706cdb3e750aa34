"""The byte sink under a bundle: optional zstd, whole-file SHA-256, byte count.

With ``offload`` the compression, the output's SHA-256 and the writes to the
file run on one worker thread (zstd and hashlib release the GIL while they
work), so the writing process's Python thread and its compressor use both
cores. The calling thread still decides, in the same order, where members and
frames begin and end; it hands the worker batches of operations of ~2 MiB of
tar bytes (copies: a caller may reuse its buffer once ``write`` returns), and
the file receives exactly the bytes it would have received inline.
"""

from __future__ import annotations

import hashlib
import queue
import signal
import sys
import threading
from typing import Any, BinaryIO

import zstandard

from forensics.bundle.frameindex import Frame, encode_index
from forensics.bundle.whole import signals_deferred

COMPRESSIONS = ("zstd", "none")
#: a frame of copied contents ends at the first member past this much, so that a
#: reader wanting one copied file (/etc/passwd, a log) decompresses little else
CONTENT_FRAME = 2 << 20
ZSTD_BLOCK = 128 << 10
#: tar bytes per batch handed to the worker, and batches queued at most: the file
#: (and so a checkpoint's durability) lags the caller by at most about
#: BATCH * (QUEUED + 2), which is also what the batches hold in memory
BATCH = 1 << 20
QUEUED = 2
#: the GIL switch interval while a worker runs: a worker coming back from zstd
#: waits at most this long for the Python thread to let it go on (5 ms default)
SWITCH_INTERVAL = 0.0005
_ZEROS = bytes(512)


def stored_frame_header(total: int) -> bytes:
    """A zstd frame header for ``total`` bytes held in raw (stored) blocks: single
    segment, the 8-byte content size, no checksum, no dictionary. The content
    size makes libzstd refuse a frame whose blocks do not add up to it."""
    return b"\x28\xb5\x2f\xfd\xe0" + total.to_bytes(8, "little")


def stored_blocks(data: bytes, last: bool) -> bytes:
    """``data`` as zstd raw blocks (3-byte header: last flag, type 0, size)."""
    out = bytearray()
    for i in range(0, len(data), ZSTD_BLOCK):
        chunk = data[i : i + ZSTD_BLOCK]
        end = last and i + ZSTD_BLOCK >= len(data)
        out += ((len(chunk) << 3) | int(end)).to_bytes(3, "little") + chunk
    return bytes(out)


class _HashingFile:
    """Counts and hashes every byte that reaches the output file.

    ``hold``: zstd's output pieces (~128 KiB each) are kept and hashed and
    written together by :meth:`release` (the worker calls it after each batch),
    so the worker takes the GIL back once per batch rather than twice a piece."""

    def __init__(self, raw: BinaryIO, hold: bool = False) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0
        self._hold: list[bytes] | None = [] if hold else None

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        if self._hold is not None:
            self._hold.append(bytes(data))
        else:
            self.raw.write(data)
            self.sha256.update(data)
        self.count += n
        return n

    def release(self) -> None:
        if self._hold:
            data = b"".join(self._hold)
            self._hold.clear()
            self.sha256.update(data)
            self.raw.write(data)

    def flush(self) -> None:
        self.release()
        self.raw.flush()


class _Output:
    """What reaches the file: the zstd stream (or plain tar), the frame index and
    the prefix figures. Runs on the calling thread or on the sink's worker."""

    def __init__(
        self, raw: BinaryIO, compress: str, level: int, threads: int, hold: bool = False
    ) -> None:
        self.file = _HashingFile(raw, hold)
        self.zw: zstandard.ZstdCompressionWriter | None = None
        if compress == "zstd":
            cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
            self.zw = cctx.stream_writer(
                self.file,  # type: ignore[arg-type]
                closefd=False,
                write_return_read=True,
            )
        #: the zstd frames ended so far (see forensics.bundle.frameindex)
        self.frames: list[Frame] = []
        self.frame_file_at = 0
        #: (file bytes, their SHA-256, tar bytes) as of the last sync point
        self.prefix: tuple[int, str, int] = (0, hashlib.sha256().hexdigest(), 0)

    def tar(self, data: bytes | memoryview) -> None:
        if self.zw is not None:
            self.zw.write(data)
        else:
            self.file.write(data)

    def end_frame(self, tar_at: int, tar_len: int, content: bool, first: int) -> None:
        assert self.zw is not None
        if tar_len or not self.frames:
            self.zw.flush(zstandard.FLUSH_FRAME)
        if tar_len:
            at = self.frame_file_at
            self.frames.append((at, self.file.count - at, tar_at, tar_len, int(content), first))
        self.frame_file_at = self.file.count

    def sync(self, tar_bytes: int, block: bool) -> None:
        if block and self.zw is not None:
            self.zw.flush(zstandard.FLUSH_BLOCK)
        self.file.flush()
        self.prefix = (self.file.count, self.file.sha256.copy().hexdigest(), tar_bytes)

    def index(self) -> None:
        if self.frames:
            self.file.write(encode_index(self.frames))

    def close(self, frame: bool) -> None:
        if frame and self.zw is not None:
            self.zw.flush(zstandard.FLUSH_FRAME)
        self.file.flush()


Op = tuple[Any, ...]


class _Worker:
    """Runs batches of operations on an :class:`_Output`, in order, on one thread."""

    def __init__(self, out: _Output) -> None:
        self.out = out
        self._q: queue.Queue[list[Op] | None] = queue.Queue(maxsize=QUEUED)
        self.error: BaseException | None = None
        self.done_syncs = 0
        self._cv = threading.Condition()
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._run, name="bundle-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # SIGINT and SIGTERM are for the calling thread, which defers them while
        # it writes a member (whole.py): delivered here, they would bypass that
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        out = self.out
        while (batch := self._q.get()) is not None:
            try:
                if self.error is None:
                    for op in batch:
                        kind = op[0]
                        if kind == "w":
                            out.tar(op[1])
                        elif kind == "f":
                            out.end_frame(op[1], op[2], op[3], op[4])
                        elif kind == "raw":
                            out.file.write(op[1])
                        elif kind == "s":
                            out.sync(op[1], op[2])
                            with self._cv:
                                self.done_syncs += 1
                                self._cv.notify_all()
                        elif kind == "i":
                            out.index()
                    out.file.release()
            except BaseException as err:  # noqa: BLE001 - handed to the calling thread
                self.error = err
                with self._cv:
                    self._cv.notify_all()
            finally:
                self._q.task_done()
        self._q.task_done()

    def submit(self, batch: list[Op]) -> None:
        self.check()
        self._q.put(batch)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def wait_sync(self, n: int) -> None:
        with self._cv:
            while self.done_syncs < n and self.error is None:
                self._cv.wait()
        self.check()

    def drain(self) -> None:
        self._q.join()
        self.check()

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join()
        sys.setswitchinterval(self._switch)


class Sink:
    """Where tar bytes go. ``sync_point`` makes everything so far decodable on disk."""

    def __init__(
        self,
        raw: BinaryIO,
        compress: str = "zstd",
        level: int = 3,
        threads: int = 0,
        *,
        offload: bool = False,
    ):
        if compress not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compress!r}; use one of {COMPRESSIONS}")
        self.compress = compress
        self._out = _Output(raw, compress, level, threads, hold=offload)
        self._zstd = compress == "zstd"
        self.tar_bytes = 0
        self._stored_left = -1  # >= 0 while writing a stored frame
        self._stored_buf = bytearray()
        self._frame_at = (0, 0)  # tar offset and first member of the open frame
        self._frame_content = False
        self._members = 0
        self._worker = _Worker(self._out) if offload else None
        self._batch: list[Op] = []
        self._buf = bytearray()  # tar bytes not yet in the batch (offload)
        self._batch_bytes = 0
        self._syncs = 0
        self._closed = False

    # -- handing operations to the output ----------------------------------------
    def _op(self, op: Op) -> None:
        if self._worker is None:
            kind = op[0]
            out = self._out
            if kind == "f":
                out.end_frame(op[1], op[2], op[3], op[4])
            elif kind == "raw":
                out.file.write(op[1])
            elif kind == "s":
                out.sync(op[1], op[2])
            elif kind == "i":
                out.index()
            return
        if self._buf:
            self._batch.append(("w", self._buf))
            self._buf = bytearray()
        self._batch.append(op)
        if op[0] == "s":
            self._submit()

    def _submit(self) -> None:
        assert self._worker is not None
        if self._buf:
            self._batch.append(("w", self._buf))
            self._buf = bytearray()
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            # an interruption raised while waiting for room would drop the batch
            # (bytes already counted in tar_bytes): it waits until the batch is in
            with signals_deferred():
                self._worker.submit(batch)

    def _tar(self, data: bytes | memoryview) -> None:
        if self._worker is None:
            self._out.tar(data)
            return
        self._buf += data
        self._batch_bytes += len(data)
        if self._batch_bytes >= BATCH:
            self._submit()

    def _raw(self, data: bytes) -> None:
        self._op(("raw", data))

    def _sync(self, block: bool) -> None:
        self._syncs += 1
        self._op(("s", self.tar_bytes, block))

    def _wait(self) -> None:
        """Everything handed to the worker has reached the file."""
        if self._worker is not None:
            self._submit()
            self._worker.drain()

    # -- the interface ------------------------------------------------------------
    def member_start(self, content: bool) -> None:
        """Called before each member's header: a zstd frame ends where members of
        copied content and other members alternate, so a reader can skip the former."""
        self._members += 1
        if not self._zstd or self._stored_left >= 0:
            return
        if content == self._frame_content and (
            not content or self.tar_bytes - self._frame_at[0] < CONTENT_FRAME
        ):
            return
        if self.tar_bytes > self._frame_at[0]:
            self._end_zstd_frame(self._members - 1)
        self._frame_content = content

    def _end_zstd_frame(self, members: int) -> None:
        tar_at, first = self._frame_at
        self._op(("f", tar_at, self.tar_bytes - tar_at, self._frame_content, first))
        self._frame_at = (self.tar_bytes, members)

    def write(self, data: bytes | memoryview) -> None:
        self.tar_bytes += len(data)
        if self._stored_left >= 0:
            self._write_stored(bytes(data))
        else:
            self._tar(data)

    def write_member(self, head: bytes, data: bytes | memoryview, pad: int) -> None:
        """``head``, ``data`` and ``pad`` zero bytes: what ``write`` of their join
        does, without the join's copy when a worker takes them (they are copied
        into its batch once)."""
        if self._worker is None or self._stored_left >= 0:
            self.write(b"".join((head, data, _ZEROS[:pad])))
            return
        n = len(head) + len(data) + pad
        self.tar_bytes += n
        buf = self._buf
        buf += head
        buf += data
        if pad:
            buf += _ZEROS[:pad]
        self._batch_bytes += n
        if self._batch_bytes >= BATCH:
            self._submit()

    def end_frame(self) -> None:
        """Like :meth:`sync_point`, but a zstd stream's frame is ended here, and the
        frame index (a skippable frame) follows it: the end of the compressed part."""
        if self._zstd:
            self._end_zstd_frame(self._members)
            self._op(("i",))
        self._sync(False)

    def begin_stored(self, total: int) -> None:
        """The next ``total`` bytes go, uncompressed, into one zstd frame of raw
        blocks (after :meth:`end_frame`): unlike entropy-coded data they have
        exactly one encoding, so no bit of them can change without changing what
        they decompress to. A plain-tar sink writes them as they are."""
        if not self._zstd:
            return
        self._raw(stored_frame_header(total))
        self._stored_left = total

    def _write_stored(self, data: bytes) -> None:
        self._stored_left -= len(data)
        if self._stored_left < 0:
            raise ValueError("more bytes than the stored frame was opened for")
        self._stored_buf += data
        while len(self._stored_buf) >= ZSTD_BLOCK or (self._stored_left == 0 and self._stored_buf):
            chunk = bytes(self._stored_buf[:ZSTD_BLOCK])
            del self._stored_buf[:ZSTD_BLOCK]
            last = self._stored_left == 0 and not self._stored_buf
            self._raw(stored_blocks(chunk, last))

    def sync_point(self) -> None:
        """Flush a zstd block and the file, so a kill after this loses nothing before it.

        With a worker this happens once the worker reaches it; :attr:`prefix`
        waits for it."""
        self._sync(True)

    def close(self) -> None:
        if self._closed:
            return
        if self._stored_left > 0:
            raise ValueError("the stored frame is short of the bytes it announced")
        if self._worker is not None:
            try:
                self._wait()
            finally:
                self._closed = True
                self._worker.stop()
        self._closed = True
        self._out.close(self._zstd and self._stored_left < 0)

    @property
    def prefix(self) -> tuple[int, str, int]:
        """(file bytes, their SHA-256, tar bytes) as of the last sync point."""
        if self._worker is not None:
            self._submit()
            self._worker.wait_sync(self._syncs)
        return self._out.prefix

    @property
    def frames(self) -> list[Frame]:
        """The zstd frames ended so far (see forensics.bundle.frameindex)."""
        self._wait()
        return self._out.frames

    @property
    def file_sha256(self) -> str:
        self._wait()
        return self._out.file.sha256.hexdigest()

    @property
    def file_bytes(self) -> int:
        self._wait()
        return self._out.file.count
