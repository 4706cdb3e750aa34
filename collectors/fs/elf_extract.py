"""ELF extracts at capture time: what the inventory needs from executables not copied.

For every regular file that starts with the ELF magic and whose content the copy
policy did not copy, the capture stores an extract (forensics/inventory/elfblob.py,
docs/inventory.md): the headers and the sections the software inventory reads,
an entropy sample and the file's MD5/SHA-1, read with bounded ``pread`` calls.
It goes into the member ``elf/<encoded path>``; its record (path, member, size,
the file's SHA-256) into ``artifacts/elf.jsonl``. Executables of processes that
were deleted or live in a memfd are copied whole by the binaries collector; when
one is too big to copy, :func:`extract_process_exe` stores its extract instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from forensics.bundle.format import encode_path
from forensics.bundle.writer import BundleWriter, MemberWriter
from forensics.inventory.elfscan import DEFAULT_LIMITS, Limits, PRead, extract
from forensics.inventory.elftypes import ELF_MAGIC
from forensics.jsonfast import dumps
from forensics.records import Record, Skip, skip_from_oserror
from forensics.textsafe import bytes_field

COLLECTOR = "elf"
ELF_DIR = "elf"


def _pread(fd: int) -> PRead:
    def pread(offset: int, size: int) -> bytes:
        return os.pread(fd, size, offset)

    return pread


def elf_member_name(path: bytes) -> str:
    """``elf/<encoded path>``: where the extract of the target's file ``path`` goes."""
    if not path.startswith(b"/"):
        path = b"/" + path
    return ELF_DIR + encode_path(path)


class ElfExtractor:
    """Stores extracts as members; keeps their records for ``artifacts/elf.jsonl``."""

    def __init__(self, writer: MemberWriter, limits: Limits = DEFAULT_LIMITS) -> None:
        self.writer = writer
        self.limits = limits
        self.count = 0
        self.extract_bytes = 0
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=4 << 20)

    def take(
        self, fd: int, path: bytes, size: int, sha256: str | None, member: str | None
    ) -> Iterator[Skip]:
        """After a regular file was hashed: extract it if it is ELF and was not copied."""
        if member is not None or size < 16:
            return
        try:
            if os.pread(fd, 4, 0) != ELF_MAGIC:
                return
            blob = extract(_pread(fd), size, limits=self.limits)
        except OSError as err:
            yield skip_from_oserror(COLLECTOR, _t(path), err, "cannot read ELF headers")
            return
        name = elf_member_name(path)
        entry = self.writer.add_bytes(name, blob)
        self.count += 1
        self.extract_bytes += entry.size
        data: dict[str, Any] = bytes_field("path", path)
        data.update({"member": name, "size": size, "sha256": sha256})
        self._spool.write(_dumps({"kind": "elf", **data}) + b"\n")

    def spooled_lines(self) -> Iterator[bytes]:
        """The spooled records as JSON lines (to hand them to another process)."""
        self._spool.seek(0)
        yield from self._spool
        self._spool.seek(0, os.SEEK_END)

    def add_spooled_line(self, line: bytes) -> None:
        """Take one record made by another process's extractor (see spooled_lines);
        that process reports ``count`` and ``extract_bytes``."""
        self._spool.write(line)

    def records(self) -> Iterator[Record]:
        """The records of every extract stored (for the capture's elf.jsonl)."""
        self._spool.seek(0)
        for line in self._spool:
            data = json.loads(line)
            data.pop("kind", None)
            yield Record("elf", data)
        self._spool.close()


def extract_process_exe(
    writer: BundleWriter, procfs: str, pid: int, proc: dict[str, Any]
) -> Iterator[Record | Skip]:
    """The extract of a process's executable that was not copied whole (too big).

    Read through /proc/<pid>/exe, the kernel's handle on the inode the process
    runs, so it works for deleted files and memfds alike.
    """
    path = f"{procfs}/{pid}/exe"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        yield skip_from_oserror(
            "binaries", f"pid {pid}", err, "cannot open exe for its ELF extract"
        )
        return
    try:
        size = os.fstat(fd).st_size
        if os.pread(fd, 4, 0) != ELF_MAGIC:
            return
        blob = extract(_pread(fd), size)
        member = f"binaries/{pid}/exe.elfx"
        writer.add_bytes(member, blob)
        yield Record(
            "binary",
            {
                "pid": pid,
                "exe": proc.get("exe"),
                "reason": "memfd" if proc.get("exe_memfd") else "deleted",
                "elf_member": member,
                "size": size,
                "copied": False,
            },
        )
    except OSError as err:
        yield skip_from_oserror(
            "binaries", f"pid {pid}", err, "cannot read exe for its ELF extract"
        )
    finally:
        os.close(fd)


def _t(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def _dumps(obj: Any) -> bytes:
    return dumps(obj)
