"""SIGINT/SIGTERM held back while a core streams, and acted on between chunks.

The capture turns these signals into CaptureInterrupted raised wherever Python
happens to be; in the middle of a chunk that would leave the member's hash, the
bundle's hash and the bytes written disagreeing. While a core streams they are
blocked (main thread only: only it runs signal handlers) and polled with
sigpending(2) before each chunk; unblocking delivers them, once the member is
closed consistently.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class Interrupted(Exception):
    """A stop signal is pending: close the core and let it be delivered."""


class DeferredSignals:
    def __enter__(self) -> DeferredSignals:
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self._old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        return self

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop signal is waiting."""
        if self.active and signal.sigpending() & STOP_SIGNALS:
            raise Interrupted

    def __exit__(self, *_exc: object) -> None:
        if self.active:
            # a pending signal's handler runs now (and may raise CaptureInterrupted)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
