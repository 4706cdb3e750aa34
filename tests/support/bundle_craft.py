"""Crafting hostile and signed bundles for tests (tarfile and zstandard, in memory)."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import zstandard

from forensics.bundle import BundleWriter
from forensics.bundle.format import CUSTODY_NAME
from forensics.custody import CustodyLog
from forensics.signing import Signer


def write_real_bundle(
    path: Path,
    *,
    compress: str = "zstd",
    signer: Signer | None = None,
    members: int = 12,
    contents: dict[str, bytes] | None = None,
    custody: CustodyLog | None = None,
) -> dict[str, bytes]:
    """A small real bundle through the real writer (checkpoints every 4 members).

    With ``custody`` it is kept as the capture does: a ``collector.finished``
    entry binds each artifact to its hash, the log goes in as ``custody.jsonl``,
    and after sealing the sidecar gets ``bundle.sealed`` with the manifest's and
    the file's SHA-256."""
    if contents is None:
        contents = {f"artifacts/a{i}.jsonl": _line(i) for i in range(members)}
        contents["files/etc/passwd"] = b"root:x:0:0:root:/root:/sbin/nologin\n"
    with path.open("wb") as f:
        w = BundleWriter(f, compress=compress, checkpoint_every_members=4)
        for name, data in contents.items():
            entry = w.add_bytes(name, data)
            if custody is not None and name.startswith("artifacts/"):
                custody.record("collector.finished", member=name, sha256=entry.sha256)
        if custody is not None:
            custody.record("capture.finished", complete=True)
            w.add_bytes(CUSTODY_NAME, custody.to_jsonl())
        manifest_sha, _ = w.finish({"complete": True, "incomplete_reason": ""}, signer=signer)
    if custody is not None:
        sealed: dict[str, object] = {"manifest_sha256": manifest_sha, "file_sha256": w.file_sha256}
        if signer is not None:
            sealed["key_fingerprint"] = signer.fingerprint
        custody.record("bundle.sealed", path=str(path), **sealed)
        custody.write_sidecar(path)
    return contents


def tar_bytes(
    entries: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], *, end: bool = True
) -> bytes:
    """A tar stream of the given members (a TarInfo alone has no content); without
    ``end``, no end-of-archive blocks (for gluing more members after it)."""
    out = bytearray()
    for e in entries:
        info, data = e if isinstance(e, tuple) else (e, b"")
        info.size = len(data)
        out += info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")
        out += data + bytes((-len(data)) % 512)
    if end:
        out += bytes(1024)
    return bytes(out)


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def header_member(version: str = "1.1") -> tuple[tarfile.TarInfo, bytes]:
    """The ``exuvia.json`` member that makes a tar look like a bundle to readers."""
    head = b'{"format":"exuvia-bundle","version":"%s","created_ns":1}\n' % version.encode()
    return regular("exuvia.json", head)


def rle_frame(segments: Iterable[bytes | tuple[int, int]]) -> bytes:
    """One zstd frame, built by hand: ``bytes`` segments go in as raw blocks,
    ``(byte, count)`` segments as RLE blocks — 4 compressed bytes per 128 KiB, so
    1 GiB takes ~32 KiB. No content size and no checksum: the decoder cannot
    know what it will inflate to."""
    block = 128 << 10
    parts: list[bytes] = []
    for seg in segments:
        if isinstance(seg, bytes):
            for i in range(0, len(seg), block):
                chunk = seg[i : i + block]
                parts.append(_block_header(0, len(chunk)) + chunk)
        else:
            byte, count = seg
            full, rest = divmod(count, block)
            one = _block_header(1, block) + bytes([byte])
            parts.extend([one] * full)
            if rest:
                parts.append(_block_header(1, rest) + bytes([byte]))
    last = bytearray(parts[-1])
    last[0] |= 1  # Last_Block
    parts[-1] = bytes(last)
    # magic; descriptor 0 (no content size, no checksum); window 2**(10+11) = 2 MiB
    return b"\x28\xb5\x2f\xfd\x00\x58" + b"".join(parts)


def bomb_member(name: str, size: int, fill: int = 0x41) -> list[bytes | tuple[int, int]]:
    """Segments of a tar member of ``size`` bytes of ``fill`` (one line, no newline)."""
    info = tarfile.TarInfo(name)
    info.size = size
    head = info.tobuf(format=tarfile.PAX_FORMAT)
    return [head, (fill, size), bytes((-size) % 512)]


def _block_header(kind: int, size: int) -> bytes:
    value = (size << 3) | (kind << 1)
    return value.to_bytes(3, "little")


def _line(i: int) -> bytes:
    return b'{"kind":"x","n":%d,"pad":"%s"}\n' % (i, os.urandom(300).hex().encode())
