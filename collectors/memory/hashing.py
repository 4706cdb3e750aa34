"""SHA-256 on a background thread, so a core's region hash and member hash run
on another CPU while the main thread reads /proc/PID/mem and writes the bundle
(hashlib releases the GIL for large buffers). Chunks are hashed in order; at
most ``depth`` wait, so memory stays bounded (depth x 1 MiB)."""

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
                self._q.task_done()

    def update(self, hashes: tuple[Any, ...], data: bytes | memoryview) -> None:
        """Queue ``data`` (immutable while queued) to be added to each of ``hashes``."""
        self._q.put((hashes, data))

    def wait(self) -> None:
        """Until everything queued is hashed (then a digest may be read)."""
        self._q.join()
        if self._err is not None:
            raise self._err

    def close(self) -> None:
        self._q.put(_STOP)
        self._t.join()
