"""``s3://BUCKET/KEY`` locations."""

from __future__ import annotations

import re
from dataclasses import dataclass

from forensics.errors import OutputError

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def is_s3(text: object) -> bool:
    return isinstance(text, str) and text.startswith("s3://")


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str  # "" or ending in "/" for a prefix

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def child(self, name: str) -> S3Url:
        base = self.key if self.is_prefix else self.key + "/"
        return S3Url(self.bucket, base + name)

    def sibling(self, suffix: str) -> S3Url:
        return S3Url(self.bucket, self.key + suffix)

    @property
    def name(self) -> str:
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3(text: str) -> S3Url:
    """``s3://bucket/prefix/name.exv`` -> S3Url; a one-line error for anything else."""
    if not is_s3(text):
        raise OutputError(f"not an s3:// location: {text!r}")
    rest = text[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise OutputError(f"not a valid bucket name in {text!r}")
    if "//" in key or any(part in (".", "..") for part in key.split("/")):
        raise OutputError(f"refusing an object key with empty, '.' or '..' parts: {text!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise OutputError(f"refusing an object key with control characters: {text!r}")
    return S3Url(bucket, key)
