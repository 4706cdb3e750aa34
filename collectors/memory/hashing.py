"""SHA-256 on background threads, so a core's region hash and member hash run
on other CPUs while the main thread reads /proc/PID/mem and writes the bundle
(the bundle's own file hash is taken there; hashlib releases the GIL for large
buffers).

Chunks are hashed in order. The main thread reads into a small ring of reused
buffers (:class:`BufferRing`) instead of a fresh ``bytes`` per pread: a fresh
1 MiB object is a fresh mapping, faulted in page by page and zeroed by the
kernel, for every MiB of the target. A ring slot is handed out again only when
every hasher has consumed the chunk it held, so memory stays bounded (slots x
chunk size) and no hasher ever sees a buffer being overwritten.
"""

from __future__ import annotations

import queue
import signal
import threading
from typing import Any

from collectors.memory.signals import STOP_SIGNALS

_STOP = object()


class BackgroundHash:
    """Hash many objects' chunks on one worker thread, each in order."""

    def __init__(self, depth: int = 16) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._err: BaseException | None = None
        #: chunks taken off the queue and hashed (or dropped after an error) so far
        self.done = 0
        self._cond = threading.Condition()
        self._t = threading.Thread(target=self._run, name="exuvia-memory-hash", daemon=True)
        # started with SIGINT/SIGTERM blocked, which it inherits: the kernel must
        # not hand a stop signal to this thread while the main thread holds them
        # back (signals.py)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self._t.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is _STOP:
                    return
                hashes, data = item
                if self._err is None:
                    for h in hashes:
                        h.update(data)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                self._err = err
            finally:
                if item is not _STOP:
                    with self._cond:
                        self.done += 1
                        self._cond.notify_all()
                self._q.task_done()

    def update(self, hashes: tuple[Any, ...], data: bytes | memoryview) -> None:
        """Queue ``data`` (immutable while queued) to be added to each of ``hashes``."""
        self._q.put((hashes, data))

    def wait_done(self, count: int) -> None:
        """Until at least ``count`` chunks queued so far have been consumed."""
        with self._cond:
            while self.done < count:
                self._cond.wait()

    def wait(self) -> None:
        """Until everything queued is hashed (then a digest may be read)."""
        self._q.join()
        if self._err is not None:
            raise self._err

    def close(self) -> None:
        self._q.put(_STOP)
        self._t.join()


class BufferRing:
    """Reused read buffers shared with ``hashers``, which consume every chunk.

    The caller queues each chunk to every hasher (in the same order) and calls
    :meth:`sent` once per chunk, ring buffer or not; :meth:`take` returns a
    buffer whose last chunk all hashers have consumed.
    """

    def __init__(self, hashers: tuple[BackgroundHash, ...], slots: int, size: int) -> None:
        self._hashers = hashers
        self._bufs = [bytearray(size) for _ in range(slots)]
        #: per slot, the sequence number of the chunk last read into it (0: none)
        self._seq = [0] * slots
        self._next = 0
        self.sent_count = 0
        self.size = size

    def take(self) -> bytearray:
        i = self._next
        last = self._seq[i]
        if last:
            for h in self._hashers:
                h.wait_done(last)
        self._next = (i + 1) % len(self._bufs)
        self._seq[i] = self.sent_count + 1  # the chunk about to be read into it
        return self._bufs[i]

    def sent(self) -> None:
        """One more chunk (from the ring or not) was queued to every hasher."""
        self.sent_count += 1
