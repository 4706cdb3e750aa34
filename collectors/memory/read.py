"""Read a live process's memory region by region with pread(2) on /proc/PID/mem.

No ptrace attach, no signal, no stop: /proc/PID/mem is read while the process
runs. Pages of private anonymous mappings that /proc/PID/pagemap shows neither
present nor swapped were never touched: they are zero and are not read (reading
would fault them in, changing the target's page tables). A range the kernel
refuses (EIO/EFAULT: unmapped since maps was read, a hardware-poisoned page) is
retried page by page; what still fails is stored as zeros and reported.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from collectors.memory.maps import Mapping

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CHUNK = 1 << 20
_PRESENT = 1 << 63
_SWAPPED = 1 << 62


@dataclass(slots=True)
class RegionRead:
    """What reading one region gave: counts and the ranges not read."""

    read_bytes: int = 0
    untouched_bytes: int = 0
    #: (start address, length, reason) of ranges stored as zeros because unreadable
    unreadable: list[tuple[int, int, str]] = field(default_factory=list)
    gone: bool = False

    def fail(self, addr: int, n: int, reason: str) -> None:
        last = self.unreadable[-1] if self.unreadable else None
        if last is not None and last[0] + last[1] == addr and last[2] == reason:
            self.unreadable[-1] = (last[0], last[1] + n, reason)
        else:
            self.unreadable.append((addr, n, reason))


class MemReader:
    """/proc/PID/mem and /proc/PID/pagemap of one process, opened read-only."""

    def __init__(self, proc_dir: str) -> None:
        self.proc_dir = proc_dir
        self.mem = os.open(f"{proc_dir}/mem", os.O_RDONLY | os.O_CLOEXEC)
        self._take: Callable[[], bytearray] | None = None
        try:
            self.pagemap: int | None = os.open(f"{proc_dir}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.pagemap = None

    def close(self) -> None:
        os.close(self.mem)
        if self.pagemap is not None:
            os.close(self.pagemap)

    def __enter__(self) -> MemReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _touched(self, start: int, length: int) -> Iterator[tuple[int, int, bool]]:
        """(addr, length, touched) runs over ``start..start+length`` from pagemap;
        everything touched when pagemap cannot tell."""
        if self.pagemap is None:
            yield start, length, True
            return
        pos, end = start, start + length
        while pos < end:
            n = min(end - pos, CHUNK * 8)  # 8 MiB of address space per pagemap read
            pages = n // PAGE
            try:
                raw = os.pread(self.pagemap, pages * 8, (pos // PAGE) * 8)
            except OSError:
                raw = b""
            if len(raw) != pages * 8:
                yield pos, end - pos, True
                return
            run_start, run_t = pos, None
            for i, entry in enumerate(struct.unpack(f"<{pages}Q", raw)):
                t = bool(entry & (_PRESENT | _SWAPPED))
                if run_t is None:
                    run_t = t
                elif t != run_t:
                    addr = pos + i * PAGE
                    yield run_start, addr - run_start, run_t
                    run_start, run_t = addr, t
            yield run_start, pos + n - run_start, bool(run_t)
            pos += n

    def untouched_spans(self, start: int, length: int, min_len: int) -> list[tuple[int, int]]:
        """Runs of never-touched pages at least ``min_len`` long (none when
        pagemap cannot tell)."""
        return [(a, n) for a, n, t in self._touched(start, length) if not t and n >= min_len]

    def read_region(
        self,
        m: Mapping,
        length: int,
        out: Callable[[bytes | memoryview], None],
        take: Callable[[], bytearray] | None = None,
    ) -> RegionRead:
        """Pass exactly ``length`` bytes of ``m`` from its start to ``out``, in
        chunks of at most 1 MiB; zeros where nothing could be (or needed be) read.

        ``take``: a reused buffer of at least :data:`CHUNK` bytes to read into
        (``out`` then gets a view of it, valid until the buffer is taken again);
        without it each read is a new ``bytes``."""
        res = RegionRead()
        self._take = take
        runs = self._touched(m.start, length) if m.private_anonymous else [(m.start, length, True)]
        for addr, n, touched in runs:
            if not touched or res.gone:
                if not touched:
                    res.untouched_bytes += n
                else:
                    res.fail(addr, n, "process exited during the read")
                _zeros(out, n)
                continue
            self._read_run(addr, n, out, res)
        return res

    def _pread(self, want: int, pos: int) -> bytes | memoryview:
        take = self._take
        if take is None:
            return os.pread(self.mem, want, pos)
        buf = take()
        got = os.preadv(self.mem, [memoryview(buf)[:want]], pos)
        return memoryview(buf)[:got]

    def _read_run(
        self, addr: int, n: int, out: Callable[[bytes | memoryview], None], res: RegionRead
    ) -> None:
        pos, end = addr, addr + n
        while pos < end:
            want = min(CHUNK, end - pos)
            try:
                data = self._pread(want, pos)
            except OSError as err:
                self._by_page(pos, want, out, res, err)
                pos += want
                continue
            if len(data) == want:
                out(data)
                res.read_bytes += want
                pos += want
                continue
            # short: the mm is gone (exited) or the rest of the range is unmapped
            if data:
                out(data)
                res.read_bytes += len(data)
                pos += len(data)
                continue
            if not os.path.exists(f"{self.proc_dir}/stat"):
                res.gone = True
                res.fail(pos, end - pos, "process exited during the read")
                _zeros(out, end - pos)
                return
            self._by_page(pos, want, out, res, None)
            pos += want

    def _by_page(
        self,
        addr: int,
        n: int,
        out: Callable[[bytes | memoryview], None],
        res: RegionRead,
        first: OSError | None,
    ) -> None:
        for page in range(addr, addr + n, PAGE):
            size = min(PAGE, addr + n - page)
            try:
                data = os.pread(self.mem, size, page)
            except OSError as err:
                res.fail(page, size, _reason(err))
                _zeros(out, size)
                continue
            if len(data) < size:
                out(data)
                res.read_bytes += len(data)
                res.fail(page + len(data), size - len(data), _reason(first))
                _zeros(out, size - len(data))
                continue
            out(data)
            res.read_bytes += size


_ZERO = bytes(CHUNK)


def _zeros(out: Callable[[bytes | memoryview], None], n: int) -> None:
    view = memoryview(_ZERO)
    while n > 0:
        k = min(n, CHUNK)
        out(view[:k])
        n -= k


def _reason(err: OSError | None) -> str:
    if err is None:
        return "short read (range unmapped since maps was read)"
    name = errno.errorcode.get(err.errno or 0, "error")
    return f"kernel refused the read ({name}: {err.strerror})"
