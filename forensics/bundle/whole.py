"""Members are written whole: SIGINT/SIGTERM wait until a member is.

A capture turns those signals into an exception (``CaptureInterrupted``)
raised wherever Python happens to be, and then seals the bundle as
incomplete. Raised between a member's tar header and its last byte, it would
leave a header that promises bytes the stream does not hold: the sealed
bundle would not verify. Blocking the two signals while a member is written
(two ``pthread_sigmask`` calls) delivers them just after it instead.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
#: a thread's signal mask, as pthread_sigmask gives it
Mask = set[int | signal.Signals]


def defer_signals() -> Mask:
    """Block SIGINT and SIGTERM for this thread; returns the mask to restore."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def restore_signals(mask: Mask) -> None:
    """Restore ``mask``: a signal that came meanwhile is handled right here."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextmanager
def signals_deferred() -> Iterator[None]:
    mask = defer_signals()
    try:
        yield
    finally:
        restore_signals(mask)
