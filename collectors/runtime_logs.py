"""The container's stdout/stderr as its runtime keeps it on this host.

These are the runtime's own files (podman/docker json-file or k8s-file, CRI log
files, a runc container's redirected stdio), not files of the target, so they
are read from their host paths. Each is copied as it was at open: a log that
grows meanwhile is cut at the size it had, and that is recorded.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

from forensics.bundle.format import LOGS_DIR, encode_path
from forensics.bundle.writer import BundleWriter
from forensics.records import Record, Skip, skip_from_oserror

COLLECTOR = "logs"


def copy_runtime_logs(
    writer: BundleWriter, paths: list[str], log_format: str | None, max_size: int
) -> Iterator[Record | Skip]:
    for n, path in enumerate(paths, 1):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            yield skip_from_oserror(COLLECTOR, path, err, "cannot open runtime log")
            continue
        try:
            st = os.fstat(fd)
            size = st.st_size
            start = 0
            if size > max_size:
                start = size - max_size
                yield Skip(
                    COLLECTOR,
                    path,
                    f"runtime log is {size} bytes; kept its last {max_size} (--max-file-size)",
                )
                os.lseek(fd, start, os.SEEK_SET)
            member = f"{LOGS_DIR}runtime/{n:02d}-{encode_path(os.path.basename(path).encode())}"
            entry = writer.add_stream(member, size - start, partial(os.read, fd))
            if entry.short_by:
                yield Skip(
                    COLLECTOR,
                    path,
                    f"runtime log shrank while read ({entry.short_by} bytes padded)",
                )
            data: dict[str, Any] = {
                "origin": "runtime",
                "host_path": path,
                "format": log_format or "raw",
                "member": member,
                "size": entry.size,
                "offset": start,
                "sha256": entry.sha256,
                "mtime_ns": st.st_mtime_ns,
            }
            yield Record("log_source", data)
        except OSError as err:
            yield skip_from_oserror(COLLECTOR, path, err, "cannot read runtime log")
        finally:
            os.close(fd)


def copy_process_binary(
    writer: BundleWriter, procfs: str, pid: int, max_size: int
) -> tuple[dict[str, Any] | None, Skip | None]:
    """Copy the executable a process runs, through /proc/<pid>/exe.

    Used for executables that were deleted or live in a memfd: the running
    process keeps the only copy. /proc/<pid>/exe is the kernel's handle on that
    inode, not a path walk, so it cannot lead anywhere else.
    """
    path = f"{procfs}/{pid}/exe"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        return None, skip_from_oserror("binaries", f"pid {pid}", err, "cannot open exe")
    try:
        size = os.fstat(fd).st_size
        if size > max_size:
            return None, Skip(
                "binaries",
                f"pid {pid}",
                f"executable is {size} bytes, over --max-file-size {max_size}; not copied",
            )
        member = f"binaries/{pid}/exe"
        digest = hashlib.sha256()
        entry = writer.add_stream(member, size, partial(os.read, fd), digest=digest)
        return {"pid": pid, "member": member, "size": size, "sha256": entry.sha256}, None
    except OSError as err:
        name = errno.errorcode.get(err.errno or 0)
        return None, Skip("binaries", f"pid {pid}", f"cannot read exe: {err.strerror}", name)
    finally:
        os.close(fd)
