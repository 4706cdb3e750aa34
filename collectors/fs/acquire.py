"""Acquire the target's filesystem: metadata of every entry, SHA-256 of every
regular file, and content by copy policy, written through a BundleWriter.

Regular files are opened relative to their directory with O_NOFOLLOW|O_NOATIME|
O_NONBLOCK and checked to be the same inode that was listed; FIFOs, sockets and
devices are never opened; symlinks are recorded, never followed.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from collectors.fs.elf_extract import ElfExtractor
from collectors.fs.policy import CopyPolicy
from collectors.fs.statx import Stat
from collectors.fs.walk import COLLECTOR, O_NOATIME, WalkEntry, Whiteout, walk
from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter
from forensics.records import Record, Skip, skip_from_oserror
from forensics.textsafe import bytes_field

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1 << 20
#: files up to this size are read and hashed by a worker thread, ahead of the
#: thread that walks and writes; records still come out in walk order
PREFETCH_MAX = 256 << 10
#: bound on files in flight (open fds) and on their bytes held in memory
MAX_IN_FLIGHT = 512
MAX_IN_FLIGHT_BYTES = 32 << 20
#: a batch goes to the worker when it holds this many files or bytes
BATCH_FILES = 64
BATCH_BYTES = 4 << 20


class _Batch:
    """Small files read and hashed together by the worker: one hand-off per
    batch, not per file, so thread overhead stays far below the work."""

    def __init__(self) -> None:
        self.jobs: list[tuple[int, int]] = []
        self.bytes = 0
        self.future: Future[list[tuple[bytes, Any] | OSError]] | None = None


@dataclass
class _Wait:
    """Yielded by an entry's generator: resume it with its batch result."""

    batch: _Batch
    index: int
    size: int

    def done(self) -> bool:
        return self.batch.future is not None and self.batch.future.done()

    def result(self) -> tuple[bytes, Any]:
        assert self.batch.future is not None
        res = self.batch.future.result()[self.index]
        if isinstance(res, OSError):
            raise res
        return res


Output = Record | Skip
EntryGen = Generator[Output | _Wait, Any, None]


@dataclass
class _Slot:
    gen: EntryGen | None
    out: list[Output] = field(default_factory=list)
    wait: _Wait | None = None


def _slurp(fd: int, size: int) -> tuple[bytes, Any]:
    """Read up to size+1 bytes (one more reveals growth) and hash them."""
    parts: list[bytes] = []
    got = 0
    while got <= size:
        chunk = os.read(fd, size + 1 - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    return data, hashlib.sha256(data)


def _slurp_batch(jobs: list[tuple[int, int]]) -> list[tuple[bytes, Any] | OSError]:
    out: list[tuple[bytes, Any] | OSError] = []
    for fd, size in jobs:
        try:
            out.append(_slurp(fd, size))
        except OSError as err:
            out.append(err)
    return out


@dataclass
class FsStats:
    entries: int = 0
    files: int = 0
    hashed_bytes: int = 0
    copied_files: int = 0
    copied_bytes: int = 0
    changed: int = 0
    deleted: int = 0
    noatime_refused: bool = False
    log_members: list[dict[str, Any]] = field(default_factory=list)


def _t(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def _meta(path: bytes, st: Stat) -> dict[str, Any]:
    data: dict[str, Any] = bytes_field("path", path)
    data.update(
        {
            "type": st.kind,
            "mode": f"{stat.S_IMODE(st.mode):04o}",
            "uid": st.uid,
            "gid": st.gid,
            "size": st.size,
            "inode": st.ino,
            "nlink": st.nlink,
            "dev": f"{st.dev[0]}:{st.dev[1]}",
            "mtime_ns": st.mtime_ns,
            "atime_ns": st.atime_ns,
            "ctime_ns": st.ctime_ns,
            "btime_ns": st.btime_ns,
        }
    )
    if st.mode & (stat.S_ISUID | stat.S_ISGID):
        data["setid"] = True
    if st.kind in ("chardev", "blockdev"):
        data["rdev"] = f"{st.rdev[0]}:{st.rdev[1]}"
    return data


class FilesystemAcquirer:
    """Walks, hashes and copies. Yields records and skips; writes file members."""

    def __init__(
        self,
        writer: BundleWriter,
        policy: CopyPolicy,
        *,
        progress: Callable[[FsStats], None] | None = None,
    ) -> None:
        self.writer = writer
        self.policy = policy
        self.stats = FsStats()
        self._progress = progress
        self._hardlinks: dict[tuple[tuple[int, int], int], tuple[bytes, str, str | None]] = {}
        self._noatime = bool(O_NOATIME)
        self.elf = ElfExtractor(writer)  # extracts of ELF files not copied (artifacts/elf.jsonl)

    def run(
        self, root_fd: int, no_descend: frozenset[bytes], upper_fd: int | None
    ) -> Iterator[Record | Skip]:
        """Walk, hash, copy. Small files are read by a worker thread while this
        one goes on walking and writing; outputs keep the walk's order."""
        queue: deque[_Slot] = deque()
        self._in_flight_bytes = 0
        self._links_in_flight: set[tuple[tuple[int, int], int]] = set()
        self._batch = _Batch()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="exuvia-read") as pool:
            self._pool = pool
            try:
                for item in walk(root_fd, no_descend=no_descend, upper_fd=upper_fd):
                    if isinstance(item, Skip):
                        slot = _Slot(None, [item])
                    elif isinstance(item, Whiteout):
                        slot = _Slot(None, [self._whiteout(item)])
                    else:
                        if (item.st.dev, item.st.ino) in self._links_in_flight:
                            # a hard link to a file still being read: let it finish,
                            # so this entry is recorded as its link, not read again
                            yield from self._emit(queue, drain=True)
                        slot = _Slot(self._entry(item))
                        self._advance(slot, None)
                    queue.append(slot)
                    yield from self._emit(queue, drain=False)
                    if self._progress is not None and self.stats.entries % 512 == 0:
                        self._progress(self.stats)
                yield from self._emit(queue, drain=True)
            finally:
                # an abandoned walk (interrupt): stop the worker first, then let
                # every waiting entry close its fd
                pool.shutdown(wait=True, cancel_futures=True)
                for slot in queue:
                    if slot.gen is not None:
                        slot.gen.close()

    def _enqueue(self, fd: int, size: int) -> _Wait:
        batch = self._batch
        batch.jobs.append((fd, size))
        batch.bytes += size
        wait = _Wait(batch, len(batch.jobs) - 1, size)
        if len(batch.jobs) >= BATCH_FILES or batch.bytes >= BATCH_BYTES:
            self._submit()
        return wait

    def _submit(self) -> None:
        batch = self._batch
        if batch.jobs and batch.future is None:
            batch.future = self._pool.submit(_slurp_batch, batch.jobs)
            self._batch = _Batch()

    def _advance(self, slot: _Slot, result: Any, error: BaseException | None = None) -> None:
        """Run an entry's generator to its next wait (or its end)."""
        assert slot.gen is not None
        try:
            item = slot.gen.throw(error) if error is not None else slot.gen.send(result)
            while not isinstance(item, _Wait):
                slot.out.append(item)
                item = next(slot.gen)
            slot.wait = item
            self._in_flight_bytes += item.size
        except StopIteration:
            slot.gen = None
            slot.wait = None

    def _emit(self, queue: deque[_Slot], drain: bool) -> Iterator[Output]:
        """Yield finished slots from the head; resume waits when needed or ready."""
        while queue:
            head = queue[0]
            if head.wait is not None:
                must = (
                    drain
                    or len(queue) > MAX_IN_FLIGHT
                    or self._in_flight_bytes > MAX_IN_FLIGHT_BYTES
                )
                if not (must or head.wait.done()):
                    return
                wait = head.wait
                if wait.batch.future is None:
                    self._submit()
                head.wait = None
                self._in_flight_bytes -= wait.size
                try:
                    res = wait.result()
                except OSError as err:
                    self._advance(head, None, err)
                else:
                    self._advance(head, res)
                continue
            if head.gen is not None:  # not started waiting yet (cannot happen) - be safe
                self._advance(head, None)
                continue
            queue.popleft()
            yield from head.out

    def _whiteout(self, item: Whiteout) -> Record:
        self.stats.deleted += 1
        data = bytes_field("path", item.path)
        data.update(
            {
                "type": "whiteout",
                "deleted": True,
                "changed": True,
                "ctime_ns": item.st.ctime_ns,
                "mtime_ns": item.st.mtime_ns,
                "note": "overlay whiteout: deleted since the container started",
            }
        )
        return Record("fs_entry", data)

    def _entry(self, e: WalkEntry) -> EntryGen:
        self.stats.entries += 1
        data = _meta(e.path, e.st)
        data["changed"] = e.changed
        if e.changed:
            self.stats.changed += 1
        if e.link_target is not None:
            data.update(bytes_field("link_target", e.link_target))
        if e.st.kind == "file":
            yield from self._file(e, data)
        yield Record("fs_entry", data)

    def _open(self, e: WalkEntry) -> int:
        if self._noatime:
            try:
                return os.open(e.name, FILE_FLAGS | O_NOATIME, dir_fd=e.dir_fd)
            except PermissionError:
                self._noatime = False
                self.stats.noatime_refused = True
        return os.open(e.name, FILE_FLAGS, dir_fd=e.dir_fd)

    def _file(self, e: WalkEntry, data: dict[str, Any]) -> EntryGen:
        self.stats.files += 1
        key = (e.st.dev, e.st.ino)
        if e.st.nlink > 1 and key in self._hardlinks:
            first, sha, member = self._hardlinks[key]
            data.update(bytes_field("hardlink_of", first))
            data["sha256"] = sha
            if member:
                data["member"] = member
            return
        try:
            fd = self._open(e)
        except OSError as err:
            reason = "vanished during the walk" if err.errno == errno.ENOENT else None
            if reason:
                yield Skip(COLLECTOR, _t(e.path), reason, "ENOENT")
            else:
                yield skip_from_oserror(COLLECTOR, _t(e.path), err, "cannot open")
            data["read_error"] = err.strerror
            return
        if not self._noatime:
            data["atime_preserved"] = False
        try:
            st = os.fstat(fd)  # cheaper than statx; only identity and size needed
            if not stat.S_ISREG(st.st_mode) or st.st_ino != e.st.ino:
                yield Skip(COLLECTOR, _t(e.path), "replaced during the walk; not read")
                data["read_error"] = "replaced during the walk"
                return
            wanted = self.policy.wants(e.path, st.st_size, e.changed)
            if wanted and self.policy.is_secret(e.path):
                wanted = False
                data["secret"] = True
                yield Skip(
                    COLLECTOR,
                    _t(e.path),
                    "mounted secret: hashed, not copied (--no-redact copies it)",
                )
            copy = wanted and st.st_size <= self.policy.max_file_size
            if wanted and not copy:
                yield Skip(
                    COLLECTOR,
                    _t(e.path),
                    f"not copied: {st.st_size} bytes is over --max-file-size "
                    f"{self.policy.max_file_size} (hashed only)",
                )
            try:
                if st.st_size <= PREFETCH_MAX:
                    if e.st.nlink > 1:
                        self._links_in_flight.add(key)
                    try:
                        got = yield self._enqueue(fd, st.st_size)
                    finally:
                        self._links_in_flight.discard(key)
                    sha, member, read = self._finish_small(fd, e.path, st.st_size, copy, got)
                else:
                    sha, member, read = self._read(fd, e.path, st.st_size, copy)
            except OSError as err:
                yield skip_from_oserror(COLLECTOR, _t(e.path), err, "read failed")
                data["read_error"] = err.strerror
                return
            after = os.fstat(fd)
            if read != st.st_size or (after.st_mtime_ns, after.st_size) != (
                st.st_mtime_ns,
                st.st_size,
            ):
                data["changed_during_read"] = True
                yield Skip(
                    COLLECTOR,
                    _t(e.path),
                    f"changed while being read ({read} of {st.st_size} bytes at open, "
                    f"{after.st_size} now); hash covers what was read",
                )
            data["sha256"] = sha
            data["hashed_bytes"] = read
            if member:
                data["member"] = member
                if self.policy.is_log(e.path):
                    self.stats.log_members.append(
                        {**bytes_field("path", e.path), "member": member, "origin": "target"}
                    )
            if e.st.nlink > 1:
                self._hardlinks[key] = (e.path, sha, member)
            yield from self.elf.take(fd, e.path, st.st_size, sha, member)
        finally:
            os.close(fd)

    def _finish_small(
        self, fd: int, path: bytes, size: int, copy: bool, got: tuple[bytes, Any]
    ) -> tuple[str, str | None, int]:
        """Write what the worker read (exactly ``size`` bytes, padded if it shrank)."""
        data, digest = got
        read = len(data)
        member = None
        if copy:
            member = file_member_name(path)
            if read == size:
                self.writer.add_prehashed(member, data, digest.hexdigest())
            else:  # shrank (zero-padded) or grew (cut at its size when opened)
                self.writer.add_stream(member, size, io.BytesIO(data[:size]).read)
            self.stats.copied_files += 1
            self.stats.copied_bytes += size
        if read > size:  # it grew: hash the rest too, so the hash is of the whole file
            while chunk := os.read(fd, CHUNK):
                digest.update(chunk)
                read += len(chunk)
        self.stats.hashed_bytes += read
        return str(digest.hexdigest()), member, read

    def _read(self, fd: int, path: bytes, size: int, copy: bool) -> tuple[str, str | None, int]:
        """Hash the file; copy ``size`` bytes into the bundle when asked.

        One SHA-256 serves both the file record and the member when the file
        did not change while read.
        """
        digest = hashlib.sha256()
        if copy:
            member = file_member_name(path)
            total = [0]

            def reader(n: int) -> bytes:
                chunk = os.read(fd, n)
                total[0] += len(chunk)
                return chunk

            entry = self.writer.add_stream(member, size, reader, digest=digest)
            read = total[0]
            # a file that grew: hash the rest too, so the hash is of the whole file
            while chunk := os.read(fd, CHUNK):
                digest.update(chunk)
                read += len(chunk)
            self.stats.copied_files += 1
            self.stats.copied_bytes += entry.size
            self.stats.hashed_bytes += read
            return digest.hexdigest(), member, read
        read = 0
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            read += len(chunk)
        self.stats.hashed_bytes += read
        return digest.hexdigest(), None, read
