"""The project's small exception tree.

Lower-level errors (OSError, psutil, pyelftools, kubernetes) are translated into
these at the edges, so the command line can print one clear line for any of them.
"""

from __future__ import annotations


class ExuviaError(Exception):
    """Base of every error exuvia reports to a user as one line."""


class TargetError(ExuviaError):
    """The target cannot be resolved or has gone away."""


class TargetGone(TargetError):
    """The target process exited (before or during the capture)."""


class AccessDenied(ExuviaError):
    """The operating system or an API refused an operation."""


class RuntimeToolError(ExuviaError):
    """A container runtime or its command line tool failed or is missing."""


class BundleError(ExuviaError):
    """A bundle is unreadable, malformed or hostile."""


class BundleVersionError(BundleError):
    """A bundle was written by a newer, incompatible format version."""


class OutputError(ExuviaError):
    """The output cannot be written (disk full, permission, exists)."""


class CaptureInterrupted(ExuviaError):
    """A capture stopped before it finished (signal, target gone, disk full)."""
