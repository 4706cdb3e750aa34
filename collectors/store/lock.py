"""Object lock settings: retention (mode + until) and legal hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forensics.errors import OutputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '1y', '3600s', '2w' -> timedelta (a year is 365 days)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdwy])\s*", text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 3600s, 12h, 90d, 2w, 1y)")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class LockSpec:
    """What to set on each uploaded object. ``use_lock`` False: --no-lock."""

    use_lock: bool = True
    retain: timedelta | None = None
    mode: str = "GOVERNANCE"
    legal_hold: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise OutputError(f"unknown lock mode {self.mode!r}; use governance or compliance")
        if not self.use_lock and (self.retain is not None or self.legal_hold):
            raise OutputError("--no-lock cannot be combined with --retain or --legal-hold")

    def until(self, now: datetime | None = None) -> datetime | None:
        if self.retain is None:
            return None
        return (now or datetime.now(UTC)) + self.retain

    def put_args(self, until: datetime | None) -> dict[str, Any]:
        """The object-lock arguments of PutObject / CreateMultipartUpload."""
        args: dict[str, Any] = {}
        if until is not None:
            args["ObjectLockMode"] = self.mode
            args["ObjectLockRetainUntilDate"] = until
        if self.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    def describe(self, until: datetime | None) -> dict[str, Any]:
        """For the custody log and the result: no secrets, only the settings."""
        return {
            "object_lock": self.use_lock,
            "mode": self.mode if until is not None else None,
            "retain_until": until.astimezone(UTC).isoformat() if until is not None else None,
            "legal_hold": self.legal_hold,
        }
