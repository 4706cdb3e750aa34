"""Acquire the target's filesystem: metadata of every entry, SHA-256 of every
regular file, and content by copy policy, written through a BundleWriter.

Regular files are opened relative to their directory with O_NOFOLLOW|O_NOATIME|
O_NONBLOCK and checked to be the same inode that was listed; FIFOs, sockets and
devices are never opened; symlinks are recorded, never followed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.fs.elf_extract import ElfExtractor
from collectors.fs.policy import CopyPolicy
from collectors.fs.reader_process import ProxyWriter, run_in_reader
from collectors.fs.sparse import hash_sparse, is_sparse
from collectors.fs.statx import Stat
from collectors.fs.walk import COLLECTOR, O_NOATIME, WalkEntry, Whiteout, walk
from forensics.bundle.format import file_member_name
from forensics.bundle.writer import SMALL, BundleWriter, MemberWriter
from forensics.records import Record, RecordLine, Skip, skip_from_oserror
from forensics.textsafe import bytes_field

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1 << 20
#: hard-linked files remembered at once; past this, a further link is hashed again
HARDLINKS_MAX = 100_000


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


#: "0644"-style text of every permission value, and "major:minor" of devices seen
_MODES = tuple(f"{m:04o}" for m in range(0o10000))
_DEVS: dict[tuple[int, int], str] = {}


def _dev(dev: tuple[int, int]) -> str:
    text = _DEVS.get(dev)
    if text is None:
        text = _DEVS[dev] = f"{dev[0]}:{dev[1]}"
    return text


def _meta(path: bytes, st: Stat) -> dict[str, Any]:
    kind = st.kind
    data: dict[str, Any] = bytes_field("path", path)
    data["type"] = kind
    data["mode"] = _MODES[st.mode & 0o7777]
    data["uid"] = st.uid
    data["gid"] = st.gid
    data["size"] = st.size
    data["inode"] = st.ino
    data["nlink"] = st.nlink
    data["dev"] = _dev(st.dev)
    data["mtime_ns"] = st.mtime_ns
    data["atime_ns"] = st.atime_ns
    data["ctime_ns"] = st.ctime_ns
    data["btime_ns"] = st.btime_ns
    if st.mode & (stat.S_ISUID | stat.S_ISGID):
        data["setid"] = True
    if kind in ("chardev", "blockdev"):
        data["rdev"] = _dev(st.rdev)
    return data


class ContentScan(Protocol):
    """``capture --scan``: sees each regular file's bytes as they are read for its hash
    (forensics.scan.capture_hook.CaptureScan)."""

    def begin(self, path: bytes, member: str | None = None) -> None: ...
    def feed(self, chunk: bytes | memoryview) -> None: ...
    def end(self, sha256: str, member: str | None = None) -> list[dict[str, Any]]: ...


class FilesystemAcquirer:
    """Walks, hashes and copies. Yields records and skips; writes file members."""

    def __init__(
        self,
        writer: BundleWriter,
        policy: CopyPolicy,
        *,
        progress: Callable[[FsStats], None] | None = None,
        reader_process: bool = False,
    ) -> None:
        self.bundle = writer
        #: where members go: the bundle, or the reader process's stand-in
        self.writer: MemberWriter = writer
        self.reader_process = reader_process
        #: in the reader process: the stand-in writer, which reads small files
        #: straight into its shared ring
        self.ring: ProxyWriter | None = None
        self.policy = policy
        self.stats = FsStats()
        self._progress = progress
        # (dev, ino) -> first path, sha256, member, links not yet seen
        self._hardlinks: dict[tuple[tuple[int, int], int], tuple[bytes, str, str | None, int]] = {}
        self._noatime = bool(O_NOATIME)
        self.elf = ElfExtractor(writer)  # extracts of ELF files not copied (artifacts/elf.jsonl)
        #: ``capture --scan``: every chunk of file data read for its hash is also given
        #: to this hook (forensics/scan/capture_hook.py); its records ride on the
        #: file's record as ``yara`` and the capture writes them to its yara records
        self.scan: ContentScan | None = None
        self._feed: Callable[[bytes | memoryview], None] | None = None

    def run(
        self, root_fd: int, no_descend: frozenset[bytes], upper_fd: int | None
    ) -> Iterator[Record | RecordLine | Skip]:
        """Records and skips of every entry below ``root_fd``, in walk order.

        With ``reader_process`` the walk, reads and hashing run in a forked
        process (collectors/fs/reader_process.py) and only the writing here;
        its ``fs_entry`` records come already encoded, as :class:`RecordLine`.
        """
        if self.reader_process:
            return run_in_reader(self, root_fd, no_descend, upper_fd)
        return self.run_here(root_fd, no_descend, upper_fd)

    def run_here(
        self, root_fd: int, no_descend: frozenset[bytes], upper_fd: int | None
    ) -> Iterator[Record | Skip]:
        skips: list[Skip] = []  # a file's skips, yielded before its record
        stats = self.stats
        for item in walk(root_fd, no_descend=no_descend, upper_fd=upper_fd):
            if isinstance(item, WalkEntry):
                record = self._entry(item, skips)
                if skips:
                    yield from skips
                    skips.clear()
                yield record
            elif isinstance(item, Whiteout):
                yield self._whiteout(item)
            else:
                yield item
            if self._progress is not None and stats.entries % 512 == 0:
                self._progress(stats)

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

    def _entry(self, e: WalkEntry, skips: list[Skip]) -> Record:
        self.stats.entries += 1
        data = _meta(e.path, e.st)
        data["changed"] = e.changed
        if e.changed:
            self.stats.changed += 1
        if e.link_target is not None:
            data.update(bytes_field("link_target", e.link_target))
        if data["type"] == "file":
            self._file(e, data, skips)
        return Record("fs_entry", data)

    def _open(self, e: WalkEntry) -> int:
        if self._noatime:
            try:
                return os.open(e.name, FILE_FLAGS | O_NOATIME, dir_fd=e.dir_fd)
            except PermissionError:
                self._noatime = False
                self.stats.noatime_refused = True
        return os.open(e.name, FILE_FLAGS, dir_fd=e.dir_fd)

    def _file(self, e: WalkEntry, data: dict[str, Any], skips: list[Skip]) -> None:
        self.stats.files += 1
        key = (e.st.dev, e.st.ino)
        if e.st.nlink > 1 and key in self._hardlinks:
            first, sha, member, left = self._hardlinks[key]
            if left > 1:
                self._hardlinks[key] = (first, sha, member, left - 1)
            else:  # every link seen: forget it, so memory stays bounded
                del self._hardlinks[key]
            data.update(bytes_field("hardlink_of", first))
            data["sha256"] = sha
            if member:
                data["member"] = member
            return
        try:
            fd = self._open(e)
        except OSError as err:
            reason = "vanished during the walk" if err.errno == errno.ENOENT else None
            if err.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink swapped in after stat
                reason = "replaced by a symlink during the walk; not followed"
            if reason:
                skips.append(Skip(COLLECTOR, _t(e.path), reason, errno.errorcode[err.errno or 0]))
            else:
                skips.append(skip_from_oserror(COLLECTOR, _t(e.path), err, "cannot open"))
            data["read_error"] = err.strerror
            return
        if not self._noatime:
            data["atime_preserved"] = False
        try:
            st = os.fstat(fd)  # cheaper than statx; only identity and size needed
            if not stat.S_ISREG(st.st_mode) or st.st_ino != e.st.ino:
                skips.append(Skip(COLLECTOR, _t(e.path), "replaced during the walk; not read"))
                data["read_error"] = "replaced during the walk"
                return
            size = st.st_size
            if is_sparse(size, st.st_blocks):
                skips.extend(hash_sparse(fd, _t(e.path), size, st.st_blocks, data))
                return
            wanted = self.policy.wants(e.path, size, e.changed)
            if wanted and self.policy.is_secret(e.path):
                wanted = False
                data["secret"] = True
                skips.append(
                    Skip(
                        COLLECTOR,
                        _t(e.path),
                        "mounted secret: hashed, not copied (--no-redact copies it)",
                    )
                )
            copy = wanted and size <= self.policy.max_file_size
            if wanted and not copy:
                skips.append(
                    Skip(
                        COLLECTOR,
                        _t(e.path),
                        f"not copied: {size} bytes is over --max-file-size "
                        f"{self.policy.max_file_size} (hashed only)",
                    )
                )
            hook = self.scan
            if hook is not None:
                hook.begin(e.path, file_member_name(e.path) if copy else None)
                self._feed = hook.feed
            try:
                if size <= SMALL:
                    sha, member, read = self._read_small(fd, e.path, size, copy)
                else:
                    sha, member, read = self._read(fd, e.path, size, copy)
            except OSError as err:
                skips.append(skip_from_oserror(COLLECTOR, _t(e.path), err, "read failed"))
                data["read_error"] = err.strerror
                return
            after = os.fstat(fd)
            if read != size or after.st_mtime_ns != st.st_mtime_ns or after.st_size != size:
                data["changed_during_read"] = True
                skips.append(
                    Skip(
                        COLLECTOR,
                        _t(e.path),
                        f"changed while being read ({size} bytes at open, {after.st_size} "
                        f"now); sha256 covers the {read} bytes read",
                    )
                )
            data["sha256"] = sha
            data["hashed_bytes"] = read
            if hook is not None:
                self._feed = None
                found = hook.end(sha, member)
                if found:
                    data["yara"] = found
            if member:
                data["member"] = member
                if self.policy.is_log(e.path):
                    self.stats.log_members.append(
                        {**bytes_field("path", e.path), "member": member, "origin": "target"}
                    )
            if e.st.nlink > 1 and len(self._hardlinks) < HARDLINKS_MAX:
                self._hardlinks[key] = (e.path, sha, member, e.st.nlink - 1)
            if member is None:  # ELF extracts are only for files not copied
                skips.extend(self.elf.take(fd, e.path, size, sha, member))
        finally:
            os.close(fd)

    def _read_small(
        self, fd: int, path: bytes, size: int, copy: bool
    ) -> tuple[str, str | None, int]:
        """Hash (and copy) the first ``size`` bytes (the size at open, at most SMALL)
        of a file, with one read when the kernel gives them all at once.

        Never past the size at open, as _read: a file growing as fast as it is
        read must not hold the capture.
        """
        if copy and self.ring is not None:
            member = file_member_name(path)
            sha, read, entry = self.ring.read_member(fd, member, size, on_chunk=self._feed)
            self.stats.hashed_bytes += read
            self.stats.copied_files += 1
            self.stats.copied_bytes += entry.size
            return sha, member, read
        buf = os.read(fd, size) if size else b""
        if len(buf) < size:  # a short read, or the file shrank: read on to EOF
            parts = [buf]
            got = len(buf)
            while got < size and (chunk := os.read(fd, size - got)):
                parts.append(chunk)
                got += len(chunk)
            buf = b"".join(parts)
        read = len(buf)
        sha = hashlib.sha256(buf).hexdigest()
        if self._feed is not None:
            self._feed(buf)
        self.stats.hashed_bytes += read
        if not copy:
            return sha, None, read
        member = file_member_name(path)
        if read == size:
            entry = self.writer.add_bytes(member, buf, sha256=sha)
        else:  # the file shrank: the member is zero-padded to the size at open
            content = buf + b"\0" * (size - read)
            entry = self.writer.add_bytes(
                member, content, sha256=hashlib.sha256(content).hexdigest()
            )
            entry.short_by = size - read
        self.stats.copied_files += 1
        self.stats.copied_bytes += entry.size
        return sha, member, read

    def _read(self, fd: int, path: bytes, size: int, copy: bool) -> tuple[str, str | None, int]:
        """Hash the first ``size`` bytes (the size at open); copy them when asked.

        One SHA-256 serves both the file record and the member when the file
        did not change while read.
        """
        if copy and self.ring is not None:
            member = file_member_name(path)
            sha, read, entry = self.ring.read_stream(fd, member, size, on_chunk=self._feed)
            self.stats.copied_files += 1
            self.stats.copied_bytes += entry.size
            self.stats.hashed_bytes += read
            return sha, member, read
        digest = hashlib.sha256()
        if copy:
            member = file_member_name(path)
            total = [0]

            feed = self._feed

            def reader(n: int) -> bytes:
                chunk = os.read(fd, n)
                total[0] += len(chunk)
                if feed is not None:
                    feed(chunk)
                return chunk

            entry = self.writer.add_stream(member, size, reader, digest=digest)
            read = total[0]
            # never past the size at open: a file growing (or extended by
            # ftruncate) as fast as it is read would keep the capture forever
            self.stats.copied_files += 1
            self.stats.copied_bytes += entry.size
            self.stats.hashed_bytes += read
            return digest.hexdigest(), member, read
        read = 0
        feed = self._feed
        while read < size and (chunk := os.read(fd, min(CHUNK, size - read))):
            digest.update(chunk)
            read += len(chunk)
            if feed is not None:
                feed(chunk)
        self.stats.hashed_bytes += read
        return digest.hexdigest(), None, read
