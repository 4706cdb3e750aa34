"""Does a target's root hold a shell? Answered without following any symlink.

Each path component is opened relative to its parent with
``O_PATH|O_NOFOLLOW`` (``O_DIRECTORY`` for directories), starting at the
target's root, so nothing outside it can be reached. Symlinks are never
followed and never read (readlink(2) would update their access time): a
``bin`` that is a symlink (merged /usr) is not entered; ``usr/bin`` is checked
directly instead. ``sh`` found as a regular file or as a symlink (busybox and
dash installs are links) counts as a shell.

Opening with O_PATH and fstat touch no timestamp, so the check is read-only.
"""

from __future__ import annotations

import contextlib
import os
import stat

O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR = O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_ANY = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
SHELL_DIRS = (("bin",), ("usr", "bin"))
SHELLS = ("sh", "bash", "ash", "dash", "busybox")


def _lookup(root_fd: int, comps: tuple[str, ...]) -> os.stat_result | None:
    """lstat of ``comps`` under ``root_fd``; None if any component is missing or a
    directory on the way is not a real directory (a symlink is not entered)."""
    fd = root_fd
    opened: list[int] = []
    try:
        for comp in comps[:-1]:
            try:
                fd = os.open(comp, _DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as err:
                if err.errno == 40:  # ELOOP: a symlink where a directory was wanted
                    return None
                raise
            opened.append(fd)
        try:
            leaf = os.open(comps[-1], _ANY, dir_fd=fd)
        except FileNotFoundError:
            return None
        try:
            return os.fstat(leaf)
        finally:
            os.close(leaf)
    finally:
        for o in opened:
            os.close(o)


def has_shell(root_fd: int) -> tuple[bool, str]:
    """(True, where) when a shell is found under the root, else (False, what was checked).

    Raises OSError when the root cannot be looked into at all (permission).
    """
    checked: list[str] = []
    for d in SHELL_DIRS:
        for sh in SHELLS:
            st = _lookup(root_fd, (*d, sh))
            path = "/" + "/".join((*d, sh))
            if st is not None and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                kind = "symlink" if stat.S_ISLNK(st.st_mode) else "file"
                return True, f"{path} ({kind})"
        checked.append("/" + "/".join(d))
    return False, "no sh, bash, ash, dash or busybox in " + " or ".join(checked)


def shell_in(procfs: str, pid: int) -> tuple[bool | None, str]:
    """has_shell for a process's root; (None, reason) when it cannot be looked at."""
    try:
        root = os.open(f"{procfs}/{pid}/root", _DIR & ~os.O_NOFOLLOW)
    except OSError as err:
        return None, f"cannot open /proc/{pid}/root: {err.strerror}"
    try:
        return has_shell(root)
    except OSError as err:
        return None, f"cannot look into the root: {err.strerror}"
    finally:
        with contextlib.suppress(OSError):
            os.close(root)
