"""Streaming, defensive reading of a bundle. A bundle is untrusted input.

Nothing here extracts members to disk; callers get names, sizes and bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from forensics.bundle.format import MANIFEST_NAME, SIGNATURE_NAME, ZSTD_MAGIC, check_version
from forensics.bundle.zstdstream import ZstdReader
from forensics.errors import BundleError

CHUNK = 1 << 20
#: the largest JSON member (manifest, checkpoint) a reader will hold in memory
#: (a manifest lists ~2 million members in this much)
MAX_JSON_MEMBER = 256 << 20

_TYPE_NAMES = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
    tarfile.DIRTYPE: "directory",
}


@dataclass(slots=True)
class Member:
    """A member as read: name, declared size, what was actually read and its hash."""

    name: str
    size: int
    read_bytes: int
    sha256: str
    regular: bool
    type_name: str
    content: bytes | None = None  # kept only when asked for
    mtime: int = 0
    offset: int = 0  # where its header starts in the (decompressed) tar stream
    lines: int = 0  # newlines in its content, when counting was asked for
    end: int = 0  # where its content's block padding ends in the tar stream

    @property
    def truncated(self) -> bool:
        return self.read_bytes < self.size


class _Prefixed(io.RawIOBase):
    """The bytes already read from a stream (its magic), then the rest of it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            closer = getattr(self._rest, "close", None)
            if closer is not None:
                closer()
        finally:
            super().close()


class StreamBroken(Exception):
    """The stream ended or became undecodable; carries the member it broke in."""

    def __init__(self, reason: str, member: Member | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.member = member


def open_stream(
    path: str | Path | BinaryIO, zstd_reader: Callable[[BinaryIO], Any] = ZstdReader
) -> tuple[BinaryIO, IO[bytes]]:
    """Open a bundle file; returns (raw file, decompressed stream).

    ``zstd_reader`` wraps a compressed file (the timeline passes one that
    decompresses ahead on a thread). ``path`` may also be an open binary stream
    that cannot seek (an object read from the evidence store): it is read once,
    from where it is, and closed with the raw file returned."""
    if not isinstance(path, (str, Path)):
        head = path.read(4)
        raw: BinaryIO = io.BufferedReader(_Prefixed(head, path), CHUNK)
        return raw, (zstd_reader(raw) if head == ZSTD_MAGIC else raw)
    try:
        raw = Path(path).open("rb")
    except OSError as err:
        raise BundleError(f"cannot open {path}: {err.strerror}") from err
    magic = raw.read(4)
    raw.seek(0)
    if magic == ZSTD_MAGIC:
        return raw, zstd_reader(raw)
    return raw, raw


def iter_members(
    stream: IO[bytes],
    keep: Callable[[str], bool] = lambda _n: False,
    count_lines: Callable[[str], bool] = lambda _n: False,
) -> Iterator[Member]:
    """Yield every member in order, hashing its content as it is read
    (and counting its lines when ``count_lines`` names it).

    Raises :class:`StreamBroken` when the stream ends early or cannot be decoded;
    the member that was being read (if any) is attached with what it held.
    """
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")
    except (tarfile.TarError, BundleError, OSError, EOFError) as err:
        raise StreamBroken(f"not a readable tar stream ({err})", None) from err
    current: Member | None = None
    try:
        while True:
            info = tar.next()
            if info is None:
                return
            regular = info.isreg()
            type_name = "file" if regular else _TYPE_NAMES.get(info.type, f"type {info.type!r}")
            current = Member(info.name, info.size if regular else 0, 0, "", regular, type_name)
            current.mtime = _int_mtime(info.mtime)
            current.offset = info.offset
            current.end = info.offset_data + current.size + (-current.size) % tarfile.BLOCKSIZE
            digest = hashlib.sha256()
            want = regular and keep(info.name) and info.size <= MAX_JSON_MEMBER
            count = regular and count_lines(info.name)
            parts: list[bytes] = []
            if regular:
                fobj = tar.extractfile(info)
                assert fobj is not None
                while True:
                    chunk = fobj.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    current.read_bytes += len(chunk)
                    if count:
                        current.lines += chunk.count(b"\n")
                    if want:
                        parts.append(chunk)
                if current.read_bytes < current.size:
                    raise StreamBroken("stream ends inside a member", current)
            current.sha256 = digest.hexdigest()
            if want:
                current.content = b"".join(parts)
            yield current
            current = None
    except StreamBroken:
        raise
    except (tarfile.TarError, BundleError, OSError, EOFError, ValueError) as err:
        if current is not None:
            current.sha256 = ""
        raise StreamBroken(f"stream ends or is corrupt ({err})", current) from err


def _int_mtime(value: object) -> int:
    """A header's mtime as an int (a PAX header may say "nan" or "1e400")."""
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError, OverflowError):
        return -1


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"{what} is not valid JSON ({err})") from err


def unsafe_name(name: str) -> str | None:
    """Why a member name could not have come from exuvia's writer, or None.

    Readers never use names as paths; this only lets them flag a crafted bundle."""
    if not name:
        return "an empty name"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a '..' component"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "control characters"
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return "bytes that are not UTF-8"
    return None


class BundleReader:
    """Convenience access to a bundle file: its manifest and selected members."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def members(self, keep: Callable[[str], bool] = lambda _n: False) -> Iterator[Member]:
        raw, stream = open_stream(self.path)
        try:
            yield from iter_members(stream, keep)
        finally:
            raw.close()

    def read_members(self, names: Callable[[str], bool]) -> dict[str, bytes]:
        """Contents of the members whose names match (complete members only)."""
        out: dict[str, bytes] = {}
        try:
            for m in self.members(names):
                if m.content is not None and names(m.name):
                    out[m.name] = m.content
        except StreamBroken as err:
            if not out:
                raise BundleError(f"{self.path}: {err.reason}") from err
        return out

    def manifest(self) -> dict[str, Any]:
        """The manifest, version-checked. BundleError if it is absent."""
        return self.manifest_and_warnings()[0]

    def manifest_and_warnings(self, max_warnings: int = 20) -> tuple[dict[str, Any], list[str]]:
        """The manifest, and what about the bundle's structure looks crafted
        (links, devices, duplicate or path-like names, members after the manifest).
        One pass; nothing is verified (that is :func:`verify_bundle`'s job)."""
        content: bytes | None = None
        warnings: list[str] = []
        seen: set[str] = set()
        after = False

        def warn(text: str) -> None:
            if len(warnings) < max_warnings:
                warnings.append(text)
            elif len(warnings) == max_warnings:
                warnings.append("… (more not listed; run `exuvia verify`)")

        try:
            for m in self.members(lambda n: n == MANIFEST_NAME):
                why = unsafe_name(m.name)
                if why:
                    warn(f"member {m.name!r} has {why} (never used as a path)")
                if not m.regular:
                    warn(f"member {m.name!r} is a {m.type_name}, not a file")
                if m.name in seen:
                    warn(f"duplicate member {m.name!r}")
                seen.add(m.name)
                if after and m.name != SIGNATURE_NAME:
                    warn(f"member {m.name!r} follows the manifest")
                if m.name == MANIFEST_NAME and m.content is not None and content is None:
                    content, after = m.content, True
        except StreamBroken as err:
            if content is None:
                raise BundleError(f"{self.path}: {err.reason}") from err
            warn(f"stream broken after the manifest: {err.reason}")
        if content is None and MANIFEST_NAME in seen:
            raise BundleError(f"{self.path}: manifest larger than {MAX_JSON_MEMBER} bytes; refused")
        if content is None:
            raise BundleError(
                f"{self.path}: no manifest (the capture was cut off before it finished)"
            )
        manifest = load_json(content, "manifest")
        if not isinstance(manifest, dict):
            raise BundleError("manifest is not a JSON object")
        check_version(manifest.get("version"))
        return manifest, warnings
