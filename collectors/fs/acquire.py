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
from typing import Any

from collectors.fs.elf_extract import ElfExtractor
from collectors.fs.policy import CopyPolicy
from collectors.fs.sparse import hash_sparse, is_sparse
from collectors.fs.statx import Stat
from collectors.fs.walk import COLLECTOR, O_NOATIME, WalkEntry, Whiteout, walk
from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter
from forensics.records import Record, Skip, skip_from_oserror
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
        # (dev, ino) -> first path, sha256, member, links not yet seen
        self._hardlinks: dict[tuple[tuple[int, int], int], tuple[bytes, str, str | None, int]] = {}
        self._noatime = bool(O_NOATIME)
        self.elf = ElfExtractor(writer)  # extracts of ELF files not copied (artifacts/elf.jsonl)

    def run(
        self, root_fd: int, no_descend: frozenset[bytes], upper_fd: int | None
    ) -> Iterator[Record | Skip]:
        for item in walk(root_fd, no_descend=no_descend, upper_fd=upper_fd):
            if isinstance(item, Skip):
                yield item
            elif isinstance(item, Whiteout):
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
                yield Record("fs_entry", data)
            else:
                yield from self._entry(item)
            if self._progress is not None and self.stats.entries % 512 == 0:
                self._progress(self.stats)

    def _entry(self, e: WalkEntry) -> Iterator[Record | Skip]:
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

    def _file(self, e: WalkEntry, data: dict[str, Any]) -> Iterator[Skip]:
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
                yield Skip(COLLECTOR, _t(e.path), reason, errno.errorcode[err.errno or 0])
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
            if is_sparse(st.st_size, st.st_blocks):
                yield from hash_sparse(fd, _t(e.path), st.st_size, st.st_blocks, data)
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
                    f"changed while being read ({st.st_size} bytes at open, {after.st_size} "
                    f"now); sha256 covers the {read} bytes read",
                )
            data["sha256"] = sha
            data["hashed_bytes"] = read
            if member:
                data["member"] = member
                if self.policy.is_log(e.path):
                    self.stats.log_members.append(
                        {**bytes_field("path", e.path), "member": member, "origin": "target"}
                    )
            if e.st.nlink > 1 and len(self._hardlinks) < HARDLINKS_MAX:
                self._hardlinks[key] = (e.path, sha, member, e.st.nlink - 1)
            yield from self.elf.take(fd, e.path, st.st_size, sha, member)
        finally:
            os.close(fd)

    def _read(self, fd: int, path: bytes, size: int, copy: bool) -> tuple[str, str | None, int]:
        """Hash the first ``size`` bytes (the size at open); copy them when asked.

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
            # never past the size at open: a file growing (or extended by
            # ftruncate) as fast as it is read would keep the capture forever
            self.stats.copied_files += 1
            self.stats.copied_bytes += entry.size
            self.stats.hashed_bytes += read
            return digest.hexdigest(), member, read
        read = 0
        while read < size and (chunk := os.read(fd, min(CHUNK, size - read))):
            digest.update(chunk)
            read += len(chunk)
        self.stats.hashed_bytes += read
        return digest.hexdigest(), None, read
