"""A kernel-enforced read-only view of the target's root.

/proc/<pid>/root gives the target's files, but even with O_NOATIME some reads
still touch access times (readlink has no such flag; overlayfs reads its layers'
directories itself). So, where we may (root with CAP_SYS_ADMIN), a short-lived
child process joins the target's mount namespace and root (which may be a chroot
inside it), unshares a private copy of the namespace,
and marks every mount of that copy read-only and noatime with mount_setattr(2).
It hands back a descriptor of the copy's root and one of the namespace (which
keeps the copy's mounts attached), then exits. Nothing in the target's own
namespace changes; nothing read through that view can update a timestamp, and
no write through it is possible.

Without the privileges (an unprivileged in-pod agent) the caller falls back to
/proc/<pid>/root with O_NOATIME and records that.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR__ATIME = 0x70
SYS_MOUNT_SETATTR = 442  # x86_64, aarch64 and the generic table agree
CHILD_TIMEOUT_S = 10.0


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


@dataclass
class ReadOnlyView:
    root_fd: int
    ns_fd: int

    def close(self) -> None:
        for fd in (self.root_fd, self.ns_fd):
            os.close(fd)


def _fail(what: str) -> str:
    err = ctypes.get_errno()
    return f"{what}: {os.strerror(err)}"


def _child(procfs: str, pid: int, sock: socket.socket) -> None:
    """Runs in the forked child only; never returns."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        host_proc = os.open(procfs, os.O_RDONLY | os.O_DIRECTORY)
        ns = os.open(f"{procfs}/{pid}/ns/mnt", os.O_RDONLY)
        # The target's root may be a chroot inside its namespace: take it along.
        target_root = os.open(f"{procfs}/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
        if libc.setns(ns, CLONE_NEWNS) != 0:
            raise OSError(_fail("setns into the target's mount namespace"))
        os.fchdir(target_root)
        os.chroot(".")
        # unshare moves our root and cwd to the corresponding mounts of the copy
        if libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(_fail("unshare a private copy of it"))
        attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME, 0, 0)
        rc = libc.syscall(
            SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr),
            ctypes.sizeof(attr),
        )  # fmt: skip
        if rc != 0:
            raise OSError(_fail("mount_setattr read-only,noatime"))
        root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        mine = os.open(f"{os.getpid()}/ns/mnt", os.O_RDONLY, dir_fd=host_proc)
        socket.send_fds(sock, [b"ok"], [root, mine])
        os._exit(0)
    except BaseException as err:  # noqa: BLE001 - report anything to the parent, then exit
        try:
            sock.sendall(f"{err}".encode()[:500] or b"failed")
        finally:
            os._exit(1)


def open_readonly_view(procfs: str, pid: int) -> ReadOnlyView | str:
    """The view, or a one-line reason why it could not be had."""
    if os.geteuid() != 0:
        return "not root"
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        cpid = os.fork()
        if cpid == 0:
            parent.close()
            _child(procfs, pid, child)
        child.close()
        ready, _, _ = select.select([parent], [], [], CHILD_TIMEOUT_S)
        if not ready:
            os.kill(cpid, 9)
            os.waitpid(cpid, 0)
            return "the helper process did not answer"
        msg, fds, _flags, _addr = socket.recv_fds(parent, 1024, 2)
        os.waitpid(cpid, 0)
        if msg == b"ok" and len(fds) == 2:
            return ReadOnlyView(fds[0], fds[1])
        for fd in fds:
            os.close(fd)
        return msg.decode("utf-8", "replace") or "the helper process failed"
    except OSError as err:
        return f"{err.strerror or err}"
    finally:
        parent.close()
        if not child._closed:  # type: ignore[attr-defined]
            child.close()
