"""Run the filesystem acquirer's walk, reads and hashing in a forked reader process.

One Python thread cannot walk, stat, read, hash, build records, write tar
headers and feed zstd for 50,000 files as fast as ``tar | sha256sum`` uses two
processes, and threads lose to the GIL (docs/performance.md). So the capture
forks a reader process that runs the unchanged acquirer (the same fd-relative
O_NOFOLLOW walk below the same root descriptor, the same policy, hashes and
skips) with a stand-in writer, while this process turns what it sends into
JSON records, tar headers and compressed output.

File contents never go through a pipe: the reader copies them into a shared
memory ring of ``NSLOTS`` slots, and sends, per filled slot, one message (a
marshal'ed list of operations) over a socket; this process writes the members
from the ring and hands the slot back with one byte. Memory is bounded by the
ring plus one message. The reader ignores SIGINT (the capture decides what an
interrupt means), dies with this process (PR_SET_PDEATHSIG), and is killed and
reaped whenever this side stops early.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import marshal
import mmap
import os
import signal
import socket
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from collectors.fs.record_line import LineEncoder
from forensics.bundle.whole import Mask, defer_signals, restore_signals
from forensics.bundle.writer import CHUNK, MemberEntry, MemberStream, padded, read_up_to
from forensics.records import Record, RecordLine, Skip

if TYPE_CHECKING:
    from collectors.fs.acquire import FilesystemAcquirer, FsStats

NSLOTS = 8
SLOT = 4 << 20
#: operations per message when no slot fills first (directories, symlinks)
MAX_OPS = 512
NO_SLOT = 255
PR_SET_PDEATHSIG = 1
#: contents bigger than this go through the ring in chunks
_WHOLE = SLOT // 2


#: ``capture --scan``'s hook: given each chunk of file data as it is read (it copies it)
OnChunk = Callable[[memoryview], None]


class ReaderFailed(RuntimeError):
    """The reader process stopped without finishing; the message says why."""


class _Channel:
    """The reader's end: operations batched per slot, contents in the ring."""

    def __init__(self, sock: socket.socket, ring: mmap.mmap) -> None:
        self.sock = sock
        self.mv = memoryview(ring)
        self.free = list(range(NSLOTS - 1, -1, -1))
        self.slot = self.free.pop()
        self.used = 0
        self.ops: list[tuple[Any, ...]] = []

    def op(self, op: tuple[Any, ...]) -> None:
        self.ops.append(op)
        if len(self.ops) >= MAX_OPS:
            self.flush()

    def reserve(self, n: int) -> int:
        """Offset of ``n`` (at most SLOT) free bytes in the ring; ``used`` unchanged."""
        if self.used + n > SLOT:
            self.flush()
        return self.slot * SLOT + self.used

    def put(self, data: bytes | memoryview) -> int:
        """Copy ``data`` (at most SLOT bytes) into the ring; its offset there."""
        n = len(data)
        if self.used + n > SLOT:
            self.flush()
        off = self.slot * SLOT + self.used
        self.mv[off : off + n] = data
        self.used += n
        return off

    def flush(self) -> None:
        if not self.ops:
            return
        payload = marshal.dumps((self.slot if self.used else NO_SLOT, self.ops))
        self.sock.sendall(len(payload).to_bytes(4, "little") + payload)
        self.ops = []
        if self.used:
            self.used = 0
            while not self.free:  # wait until the writer hands a slot back
                back = self.sock.recv(NSLOTS)
                if not back:
                    raise ReaderFailed("the capture process went away")
                self.free.extend(back)
            self.slot = self.free.pop()


class ProxyWriter:
    """Stands in for BundleWriter in the reader: members go through the ring."""

    def __init__(self, chan: _Channel) -> None:
        self.chan = chan

    def add_bytes(
        self, name: str, data: bytes | memoryview, *, sha256: str | None = None
    ) -> MemberEntry:
        if len(data) > _WHOLE:
            view = memoryview(data)
            return self.add_stream(name, len(data), _reader(view))
        if sha256 is None:
            sha256 = hashlib.sha256(data).hexdigest()
        off = self.chan.put(data)
        self.chan.op(("m", name, sha256, off, len(data)))
        return MemberEntry(name, len(data), sha256)

    def read_member(
        self, fd: int, name: str, size: int, on_chunk: OnChunk | None = None
    ) -> tuple[str, int, MemberEntry]:
        """Read a file's first ``size`` (< SLOT) bytes straight into the ring as a member.

        Same rules as the acquirer's in-process read: never past the size at
        open; a file that shrank is zero-padded to it in the member. Returns
        the SHA-256 of the bytes read, how many there were, and the member's entry.
        """
        chan = self.chan
        off = chan.reserve(size)
        view = chan.mv[off : off + size]
        got = os.readv(fd, [view]) if size else 0
        while got < size and (n := os.readv(fd, [view[got:]])):  # short read, or shrank
            got += n
        sha = hashlib.sha256(view[:got]).hexdigest()
        if on_chunk is not None:
            on_chunk(view[:got])
        member_sha = sha
        if got < size:
            view[got:size] = bytes(size - got)
            member_sha = hashlib.sha256(view).hexdigest()
        view.release()
        chan.used += size
        chan.op(("m", name, member_sha, off, size))
        return sha, got, MemberEntry(name, size, member_sha, size - got)

    def read_stream(
        self, fd: int, name: str, size: int, on_chunk: OnChunk | None = None
    ) -> tuple[str, int, MemberEntry]:
        """Like :meth:`read_member` for a file of any size, in ring-sized chunks.

        The member is the first ``size`` bytes (zero-padded if the file shrank);
        the returned SHA-256 covers the bytes read, never past ``size``.
        """
        chan = self.chan
        h = hashlib.sha256()
        chan.op(("M", name, size))
        remaining = size
        while remaining > 0:
            n = min(CHUNK, remaining)
            off = chan.reserve(n)
            view = chan.mv[off : off + n]
            got = os.readv(fd, [view])
            if got:
                h.update(view[:got])
                if on_chunk is not None:
                    on_chunk(view[:got])
            view.release()
            if not got:
                break
            chan.used += got
            chan.op(("c", off, got))
            remaining -= got
        member_sha = padded(h, remaining).hexdigest()
        chan.op(("E", member_sha))
        return h.hexdigest(), size - remaining, MemberEntry(name, size, member_sha, remaining)

    def add_stream(
        self, name: str, size: int, read: Callable[[int], bytes], digest: Any = None
    ) -> MemberEntry:
        """Like BundleWriter.add_stream: exactly ``size`` bytes, zero-padded if short."""
        h = digest if digest is not None else hashlib.sha256()
        chan = self.chan
        chan.op(("M", name, size))
        got = 0
        for chunk in read_up_to(read, size, h):
            off = chan.put(chunk)
            chan.op(("c", off, len(chunk)))
            got += len(chunk)
        remaining = size - got
        sha = padded(h, remaining).hexdigest()
        chan.op(("E", sha))
        return MemberEntry(name, size, sha, remaining)


def _reader(view: memoryview) -> Callable[[int], bytes]:
    pos = [0]

    def read(n: int) -> bytes:
        chunk = bytes(view[pos[0] : pos[0] + n])
        pos[0] += len(chunk)
        return chunk

    return read


def _snapshot(stats: FsStats, full: bool = False) -> dict[str, Any]:
    return {k: v for k, v in vars(stats).items() if full or k != "log_members"}


def _child(
    acq: FilesystemAcquirer,
    sock: socket.socket,
    ring: mmap.mmap,
    *,
    root_fd: int,
    no_descend: frozenset[bytes],
    upper_fd: int | None,
) -> NoReturn:
    """The reader process; never returns."""
    code = 0
    chan: _Channel | None = None
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the capture died before the line above
            os._exit(1)
        chan = _Channel(sock, ring)
        proxy = ProxyWriter(chan)
        acq.writer = proxy
        acq.ring = proxy
        acq.elf.writer = proxy
        if acq._progress is not None:
            progress_chan = chan
            acq._progress = lambda st: progress_chan.op(("p", _snapshot(st)))
        op = chan.op
        # records go as their JSON lines (smaller to send, written as they are);
        # one with --scan's matches keeps its dict: the capture moves them out
        encode_line = LineEncoder("fs_entry")
        for item in acq.run_here(root_fd, no_descend, upper_fd):
            if isinstance(item, Record):
                if item.kind == "fs_entry" and "yara" not in item.data:
                    op(("j", encode_line(item.data)))
                else:
                    op(("r", item.kind, item.data))
            else:
                op(("s", item.collector, item.subject, item.reason, item.errno, item.extra))
        for line in acq.elf.spooled_lines():
            op(("l", line))
        op(("z", _snapshot(acq.stats, full=True), acq.elf.count, acq.elf.extract_bytes))
        chan.flush()
    except BaseException as err:  # noqa: BLE001 - report anything to the capture, then exit
        code = 1
        try:
            why = f"{type(err).__name__}: {err}"
            if chan is not None:
                chan.ops = [("e", why)]
                chan.used = 0
                chan.flush()
        except BaseException:  # noqa: BLE001, S110 - the capture is gone; nothing to tell
            pass
    finally:
        os._exit(code)


def run_in_reader(
    acq: FilesystemAcquirer, root_fd: int, no_descend: frozenset[bytes], upper_fd: int | None
) -> Iterator[Record | RecordLine | Skip]:
    """What ``acq.run`` yields, with the walk, reads and hashing in a reader process;
    ``fs_entry`` records come as :class:`RecordLine` (the same JSON).

    Members are written to ``acq.writer`` here; ``acq.stats`` and ``acq.elf``
    hold the reader's figures and ELF records when this generator is exhausted.
    """
    writer = acq.bundle
    ring = mmap.mmap(-1, NSLOTS * SLOT)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # Objects that exist now are left out of both processes' garbage
    # collections until the reader is done: a full collection writes to every
    # object it visits, which would copy each shared page after the fork.
    gc.freeze()
    try:
        with warnings.catch_warnings():
            # zstd's worker threads may run here; the child runs no code of theirs,
            # takes no lock they hold (glibc's fork resets malloc's), and only
            # walks, reads and hashes before it _exits.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:  # no process to be had: the collector fails, recorded as such
        gc.unfreeze()
        for end in (mine, theirs):
            end.close()
        ring.close()
        raise
    if pid == 0:
        mine.close()
        _child(acq, theirs, ring, root_fd=root_fd, no_descend=no_descend, upper_fd=upper_fd)
    theirs.close()
    reaped = False
    mv = memoryview(ring)
    stream = mine.makefile("rb", buffering=1 << 16)
    mask: Mask | None = None
    try:
        member: MemberStream | None = None
        done = False
        while not done:
            head = stream.read(4)
            if len(head) < 4:
                raise ReaderFailed("the filesystem reader process ended unexpectedly")
            # from our own forked child over a private socketpair, never from the target
            slot, ops = marshal.loads(stream.read(int.from_bytes(head, "little")))  # noqa: S302
            for op in ops:
                kind = op[0]
                if kind == "j":
                    yield RecordLine("fs_entry", op[1])
                elif kind == "r":
                    yield Record(op[1], op[2])
                elif kind == "m":
                    off = op[3]
                    writer.add_bytes(op[1], mv[off : off + op[4]], sha256=op[2])
                elif kind == "s":
                    yield Skip(op[1], op[2], op[3], op[4], op[5])
                elif kind == "M":
                    # SIGINT/SIGTERM wait until the member is whole, or the
                    # sealed bundle would not verify (forensics/bundle/whole.py)
                    mask = defer_signals()
                    member = writer.begin_member(op[1], op[2])
                elif kind == "c" and member is not None:
                    member.write(mv[op[1] : op[1] + op[2]])
                elif kind == "E" and member is not None:
                    member.finish(op[1])
                    member = None
                    if mask is not None:
                        restore_signals(mask)
                        mask = None
                elif kind == "p":
                    _adopt(acq.stats, op[1])
                    if acq._progress is not None:
                        acq._progress(acq.stats)
                elif kind == "l":
                    acq.elf.add_spooled_line(op[1])
                elif kind == "z":
                    _adopt(acq.stats, op[1])
                    acq.elf.count, acq.elf.extract_bytes = op[2], op[3]
                    done = True
                elif kind == "e":
                    raise ReaderFailed(f"filesystem reader process failed: {op[1]}")
                else:
                    raise ReaderFailed(f"filesystem reader process sent {kind!r} out of order")
            if slot != NO_SLOT and not done:
                # a reader that failed has exited: its last message says why
                with contextlib.suppress(BrokenPipeError):
                    mine.send(bytes((slot,)))
        os.waitpid(pid, 0)
        reaped = True
    finally:
        if mask is not None:
            restore_signals(mask)
        if not reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        stream.close()
        mine.close()
        try:
            mv.release()
            ring.close()
        except BufferError:
            # a signal (Ctrl-C, SIGTERM) raised while a member's chunk was being
            # written: the traceback still holds that slice of the ring. Raising
            # here would replace the interruption (the capture must seal what it
            # has, as interrupted); the mapping goes when the traceback does.
            pass
        gc.unfreeze()


def _adopt(stats: FsStats, snapshot: dict[str, Any]) -> None:
    for key, value in snapshot.items():
        setattr(stats, key, value)
