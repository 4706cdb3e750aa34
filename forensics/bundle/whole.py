"""Members are written whole: SIGINT/SIGTERM wait until a member is.

A capture turns those signals into an exception (``CaptureInterrupted``)
raised wherever Python happens to be, and then seals the bundle as
incomplete. Raised between a member's tar header and its last byte, it would
leave a header that promises bytes the stream does not hold: the sealed
bundle would not verify. Blocking the two signals while a member is written
(two ``pthread_sigmask`` calls) delivers them just after it instead.

A capture writes one member per copied file, so this is on its per-entry
path: the masks are taken from ``_signal`` itself (the ``signal`` module's
wrapper turns every signal number of the returned mask into an enum member,
which was most of the cost), and :func:`signals_deferred` is a plain class,
not a generator context manager.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C module: no stub
import signal
from collections.abc import Callable, Iterable
from types import TracebackType

_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_BLOCK = signal.SIG_BLOCK
_SETMASK = signal.SIG_SETMASK
_sigmask: Callable[[int, Iterable[int]], set[int]] = _signal.pthread_sigmask
#: a thread's signal mask, as pthread_sigmask gives it (signal numbers)
Mask = set[int]


def defer_signals() -> Mask:
    """Block SIGINT and SIGTERM for this thread; returns the mask to restore."""
    return _sigmask(_BLOCK, _SIGNALS)


def restore_signals(mask: Mask) -> None:
    """Restore ``mask``: a signal that came meanwhile is handled right here."""
    _sigmask(_SETMASK, mask)


class signals_deferred:
    """``with signals_deferred():`` blocks SIGINT and SIGTERM for the block."""

    __slots__ = ("_mask",)

    def __enter__(self) -> None:
        self._mask = _sigmask(_BLOCK, _SIGNALS)

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        _sigmask(_SETMASK, self._mask)
