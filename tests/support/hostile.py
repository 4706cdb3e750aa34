"""Crafting hostile and signed bundles for tests (tarfile and zstandard, in memory)."""

from __future__ import annotations

import io
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


def tar_bytes(entries: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """A tar stream of the given members (a TarInfo alone has no content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if isinstance(e, tuple):
                info, data = e
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(e)
    return buf.getvalue()


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


def rle_bomb(header_tar: bytes, inflated: int) -> bytes:
    """A zstd frame of ``header_tar`` followed by ``inflated`` zero bytes as RLE blocks:
    ~4 bytes per 128 KiB, so 1 GiB of zeros takes ~32 KiB. No content checksum,
    no content size: the decoder cannot know in advance."""
    block = 128 << 10
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out.append(0x00)  # frame header descriptor: no FCS, not single segment, no checksum
    out.append(0x58)  # window descriptor: 2**(10+11) = 2 MiB window
    # the tar header as raw blocks
    for i in range(0, len(header_tar), block):
        chunk = header_tar[i : i + block]
        out += _block_header(0, len(chunk), last=False) + chunk
    left = inflated
    while left > 0:
        n = min(block, left)
        left -= n
        out += _block_header(1, n, last=left == 0) + b"\0"
    return bytes(out)


def _block_header(kind: int, size: int, *, last: bool) -> bytes:
    value = (size << 3) | (kind << 1) | int(last)
    return value.to_bytes(3, "little")


def _line(i: int) -> bytes:
    return b'{"kind":"x","n":%d,"pad":"%s"}\n' % (i, os.urandom(300).hex().encode())
