"""One streaming pass over a bundle's regular members, for the readers that look
at every member once (``exuvia findings``: forensics/findings/load.py, ``exuvia
scan``: forensics/scan/bundle.py).

The bundle is untrusted and may be cut off (a killed capture) or corrupt: the
stream is the timeline's reader (:func:`forensics.timeline.bundleio.open_stream`,
which hands out what precedes a cut or corrupt spot first). A bundle that yields
no member at all is no bundle (BundleError); one that breaks later ends the pass
there and says why in :attr:`MemberPass.cut`, the caller keeping what came
before. ``only`` limits the pass to the members named (what a cut-off bundle's
checkpoints vouch for).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from forensics.errors import BundleError, BundleVersionError
from forensics.timeline.bundleio import StreamCut, open_stream

#: what a broken stream (or a member's reader meeting it) raises
READ_ERRORS = (tarfile.TarError, BundleError, OSError, EOFError, ValueError, StreamCut)


@dataclass
class MemberPass:
    """What one pass met: ``members`` counts every tar entry read (regular or
    not); ``cut`` is the error that ended the stream early, or None."""

    members: int = 0
    cut: str | None = None


def each_member(
    bundle: str | Path | BinaryIO,
    visit: Callable[[tarfile.TarInfo, IO[bytes]], None],
    only: Container[str] | None = None,
) -> MemberPass:
    """Call ``visit(info, stream)`` for each regular member of ``bundle``, in order.

    An error of :data:`READ_ERRORS` raised while reading, by the stream or by
    ``visit``, ends the pass (recorded in ``cut``; BundleError when no member
    came before it); BundleVersionError and anything else propagate."""
    done = MemberPass()
    label = bundle if isinstance(bundle, (str, Path)) else "the stream"
    raw, stream = open_stream(bundle)
    try:
        try:
            tar = tarfile.open(
                fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
            )
        except READ_ERRORS as err:
            raise BundleError(f"{label}: not a readable bundle ({err})") from None
        try:
            for info in tar:
                done.members += 1
                if not info.isreg() or (only is not None and info.name not in only):
                    continue
                f = tar.extractfile(info)
                if f is not None:
                    visit(info, f)
        except BundleVersionError:
            raise
        except READ_ERRORS as err:
            if done.members == 0:
                raise BundleError(f"{label}: not a readable bundle ({err})") from None
            done.cut = str(err)
    finally:
        stream.close()  # the decompressing thread first (it reads ahead), then the file
        raw.close()
    return done


__all__ = ["READ_ERRORS", "MemberPass", "each_member"]
