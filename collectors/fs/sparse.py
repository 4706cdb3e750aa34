"""Sparse files: hash their data regions instead of reading every hole.

A target can hold a file whose apparent size is a terabyte while almost none
of it is allocated (``truncate -s 1T``). Reading it through to hash it would
take many minutes of zeros, and copying it would fill the bundle with them.
So a file with more than :data:`HOLES_MIN` bytes of holes is never read in
full and never copied: its data regions are found with ``SEEK_DATA`` /
``SEEK_HOLE`` and hashed, each with its place in the file, and the record
says so (``sparse``, ``data_sha256``, ``data_extents``), with a skip whose
reason names what was not done.

``data_sha256`` is the SHA-256 of, for each data region in file order, its
offset and length (two unsigned 64-bit little-endian integers) followed by
its bytes: anyone holding the file and the extent list can recompute it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
from collections.abc import Iterator
from typing import Any

from collectors.fs.walk import COLLECTOR
from forensics.records import Skip

#: a file whose holes add up to more than this is treated as sparse
HOLES_MIN = 64 << 20
#: at most this many data regions are listed in the record (all are hashed)
MAX_LISTED_EXTENTS = 1000
CHUNK = 1 << 20
_REGION = struct.Struct("<QQ")


def is_sparse(size: int, blocks: int) -> bool:
    """More than HOLES_MIN bytes of the file are holes (st_blocks is in 512 B units)."""
    return size - blocks * 512 > HOLES_MIN


def _next_region(fd: int, offset: int, size: int) -> tuple[int, int] | None:
    try:
        start = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as err:
        if err.errno == errno.ENXIO:  # no data after offset
            return None
        raise
    if start >= size:
        return None
    end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
    return start, end


def hash_sparse(fd: int, path: str, size: int, blocks: int, data: dict[str, Any]) -> Iterator[Skip]:
    """Hash the data regions of an open sparse file into ``data``; yield its skip.

    Reading stops (and nothing is hashed) if the regions found add up to more
    than is allocated plus HOLES_MIN: the filesystem does not report holes, so
    going on would read the holes after all.
    """
    allocated = blocks * 512
    budget = allocated + HOLES_MIN
    digest = hashlib.sha256()
    extents: list[list[int]] = []
    count = 0
    data_bytes = 0
    offset = 0
    data["sparse"] = True
    data["allocated_bytes"] = allocated
    try:
        while (region := _next_region(fd, offset, size)) is not None:
            start, end = region
            if data_bytes + (end - start) > budget:
                data["read_error"] = "holes not reported by the filesystem"
                yield Skip(
                    COLLECTOR,
                    path,
                    f"sparse file ({size} bytes, {allocated} allocated) not read in full: "
                    "the filesystem does not report its holes, so it was not hashed",
                )
                return
            digest.update(_REGION.pack(start, end - start))
            pos = start
            while pos < end:
                chunk = os.pread(fd, min(CHUNK, end - pos), pos)
                if not chunk:
                    break
                digest.update(chunk)
                pos += len(chunk)
            if pos < end:
                data["changed_during_read"] = True
            count += 1
            data_bytes += pos - start
            if len(extents) < MAX_LISTED_EXTENTS:
                extents.append([start, pos - start])
            offset = end
    except OSError as err:
        data["read_error"] = err.strerror
        yield Skip(COLLECTOR, path, f"sparse file: finding its data regions failed: {err}")
        return
    data.update(
        data_sha256=digest.hexdigest(),
        data_bytes=data_bytes,
        data_extents=extents,
        data_extent_count=count,
    )
    yield Skip(
        COLLECTOR,
        path,
        f"sparse file ({size} bytes, {allocated} allocated) not read in full: "
        f"its {count} data regions ({data_bytes} bytes) hashed as data_sha256; "
        "no whole-file sha256, content not copied",
    )
