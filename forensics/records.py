"""What collectors yield: records (artifact data) and skips (what was not taken).

Collectors never write storage themselves; they yield these, and the capture
mediator decides where they go (plaso's parser/mediator split).
"""

from __future__ import annotations

import errno as errno_mod
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class Record:
    """One artifact record. ``kind`` is stable (e.g. "process", "socket")."""

    kind: str
    data: dict[str, Any]


class RecordLine(NamedTuple):
    """A record already encoded as the capture writes it: ``line`` is
    ``jsonfast.dumps({"kind": kind, **data})`` and a newline.

    The filesystem reader process sends its records so (collectors/fs/record_line.py),
    and the capture writes the line as it is; :attr:`data` decodes it for anyone
    who wants the fields.
    """

    kind: str
    line: bytes

    @property
    def data(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.line)
        del fields["kind"]
        return fields


@dataclass(frozen=True, slots=True)
class Skip:
    """Something a collector did not (fully) take, and why.

    ``subject`` names the item (a path, "pid 42", a log file); ``reason`` is a
    short human sentence; ``errno`` is the OS error name when there was one.
    """

    collector: str
    subject: str
    reason: str
    errno: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "collector": self.collector,
            "subject": self.subject,
            "reason": self.reason,
        }
        if self.errno:
            out["errno"] = self.errno
        if self.extra:
            out.update(self.extra)
        return out


def skip_from_oserror(collector: str, subject: str, err: OSError, what: str) -> Skip:
    """A Skip for an OSError, with the errno name kept."""
    name = errno_mod.errorcode.get(err.errno or 0) if err.errno else None
    return Skip(collector, subject, f"{what}: {err.strerror or err}", name)
