"""Chain-of-custody log: every action, in order, with a UTC nanosecond timestamp.

The log is written into the bundle (``custody.jsonl``, covering everything up to
sealing) and, complete with the sealing entry that names the manifest's and the
file's SHA-256, into a sidecar ``<bundle>.custody.jsonl`` beside it: the seal
cannot live inside the thing it seals.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.timeutil import iso_ns, now_ns


def default_operator() -> str:
    """Who is acting: the login name behind sudo where there is one."""
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        val = os.environ.get(var)
        if val:
            return val
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


@dataclass
class CustodyLog:
    examiner: str
    host: str = field(default_factory=socket.gethostname)
    clock: Callable[[], int] = now_ns
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, action: str, **details: Any) -> dict[str, Any]:
        ts = self.clock()
        entry: dict[str, Any] = {
            "seq": len(self.entries) + 1,
            "ts_ns": ts,
            "ts": iso_ns(ts),
            "action": action,
            "examiner": self.examiner,
            "host": self.host,
        }
        if details:
            entry["details"] = details
        self.entries.append(entry)
        return entry

    def write_sidecar(self, bundle: Path) -> Path:
        """Write the whole log beside ``bundle`` as ``<bundle>.custody.jsonl``
        (under a temporary name first, so a half-written log never has its name)."""
        path = bundle.with_name(bundle.name + ".custody.jsonl")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_jsonl())
        os.rename(tmp, path)
        return path

    def to_jsonl(self) -> bytes:
        return b"".join(
            json.dumps(e, ensure_ascii=False, sort_keys=True).encode() + b"\n" for e in self.entries
        )
