"""BundleWriter: a sequential tar stream of hashed members, checkpoints, manifest last.

The writer never seeks, so a bundle can be produced inside a pod and piped out.
Every ``checkpoint_every_*`` it writes a checkpoint member listing the hashes of
the members since the previous one (chained by hash) and flushes, so a stream cut
at any point still verifies up to its last checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from forensics.bundle.format import (
    CHECKPOINT_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_NAME,
    MANIFEST_NAME,
    SELF_CHECK_KEY,
    SIGNATURE_NAME,
)
from forensics.bundle.sink import Sink
from forensics.timeutil import iso_ns, now_ns

if TYPE_CHECKING:  # the in-pod agent never signs and need not load cryptography
    from forensics.signing import Signer

BLOCK = 512
CHUNK = 1 << 20
#: members up to this size are assembled in memory and written in one call
SMALL = 256 << 10
_USTAR_MAX_SIZE = 8**11 - 1


def ustar_header(name: str, size: int, mtime: int) -> bytes | None:
    """A plain ustar header, or None when the member needs PAX (long name, huge).

    tarfile's generic header code costs more than reading a small file; members
    here are always regular files, mode 0444, owned by "exuvia".
    """
    raw = name.encode("utf-8")
    prefix = b""
    if len(raw) > 100:
        cut = raw.rfind(b"/", 0, 156)
        if cut <= 0 or len(raw) - cut - 1 > 100 or cut > 155:
            return None
        prefix, raw = raw[:cut], raw[cut + 1 :]
    if size > _USTAR_MAX_SIZE or mtime < 0 or mtime > _USTAR_MAX_SIZE:
        return None
    head = (
        raw.ljust(100, b"\0")
        + b"0000444\0"
        + b"0000000\0"
        + b"0000000\0"
        + b"%011o\0" % size
        + b"%011o\0" % mtime
        + b"        "
        + b"0"
        + b"\0" * 100
        + b"ustar\x0000"
        + b"exuvia".ljust(32, b"\0")
        + b"exuvia".ljust(32, b"\0")
        + b"0000000\0"
        + b"0000000\0"
        + prefix.ljust(155, b"\0")
        + b"\0" * 12
    )
    chksum = b"%06o\0 " % sum(head)
    return head[:148] + chksum + head[156:]


def member_header(name: str, size: int, mtime: int) -> bytes:
    """The exact header bytes the writer emits for a member (verify rebuilds them)."""
    fast = ustar_header(name, size, mtime)
    if fast is not None:
        return fast
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o444
    info.uname = info.gname = "exuvia"
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


@dataclass(slots=True)
class MemberEntry:
    """One member as written: its name, size and SHA-256 of its content."""

    name: str
    size: int
    sha256: str
    short_by: int = 0  # bytes padded because the source ended early

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class BundleWriter:
    """Write members to ``raw`` (an open binary file or pipe)."""

    def __init__(
        self,
        raw: BinaryIO,
        *,
        compress: str = "zstd",
        level: int = 3,
        threads: int = 0,
        checkpoint_every_bytes: int = 64 << 20,
        checkpoint_every_members: int = 4096,
        checkpoint_every_seconds: float = 2.0,
        header: dict[str, Any] | None = None,
    ) -> None:
        self._sink = Sink(raw, compress, level, threads)
        self._mtime = int(time.time())
        self._pending: list[MemberEntry] = []
        self._pending_bytes = 0
        self._last_cp = time.monotonic()
        self._cp_seq = 0
        self._cp_prev = ""
        self._every_bytes = checkpoint_every_bytes
        self._every_members = checkpoint_every_members
        self._every_s = checkpoint_every_seconds
        # Entries are spooled, not held, so memory stays flat whatever the count.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        self.member_count = 0
        self.closed = False
        #: the signature document written after the manifest, if it was signed
        self.signature: dict[str, Any] | None = None
        head = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "created_ns": now_ns()}
        head.update(header or {})
        self.add_bytes(HEADER_NAME, _dumps(head) + b"\n")

    # -- members -------------------------------------------------------------
    def _header(self, name: str, size: int) -> bytes:
        return member_header(name, size, self._mtime)

    def add_bytes(self, name: str, data: bytes) -> MemberEntry:
        """Add a member whose whole content is in memory."""
        buf = io.BytesIO(data)
        return self.add_stream(name, len(data), buf.read)

    def add_stream(
        self,
        name: str,
        size: int,
        read: Callable[[int], bytes],
        digest: Any = None,
    ) -> MemberEntry:
        """Add a member of exactly ``size`` bytes taken from ``read(n)``.

        If the source ends early the rest is zero-padded and ``short_by`` says
        how much; bytes beyond ``size`` are not read. ``digest`` (a hashlib
        object) is updated with the real bytes only, so a caller can go on
        hashing a file that grew; the member's own hash covers the padding too.
        """
        h = digest if digest is not None else hashlib.sha256()
        tail = (-size) % BLOCK
        if size <= SMALL:
            parts = [self._header(name, size)]
            got = 0
            while got < size:
                chunk = read(size - got)
                if not chunk:
                    break
                chunk = chunk[: size - got]
                parts.append(chunk)
                got += len(chunk)
                h.update(chunk)
            short = size - got
            member_h = h
            if short:
                member_h = h.copy()
                member_h.update(b"\0" * short)
            parts.append(b"\0" * (short + tail))
            self._sink.write(b"".join(parts))
            entry = MemberEntry(name, size, member_h.hexdigest(), short)
            self._record(entry)
            return entry
        self._sink.write(self._header(name, size))
        remaining = size
        while remaining > 0:
            chunk = read(min(CHUNK, remaining))
            if not chunk:
                break
            if len(chunk) > remaining:
                chunk = chunk[:remaining]
            h.update(chunk)
            self._sink.write(chunk)
            remaining -= len(chunk)
        short = remaining
        member_h = h
        if short:
            member_h = h.copy()
        while remaining > 0:
            pad = b"\0" * min(CHUNK, remaining)
            member_h.update(pad)
            self._sink.write(pad)
            remaining -= len(pad)
        if tail:
            self._sink.write(b"\0" * tail)
        entry = MemberEntry(name, size, member_h.hexdigest(), short)
        self._record(entry)
        return entry

    def _record(self, entry: MemberEntry) -> None:
        self.member_count += 1
        self._spool.write(_dumps(entry.to_dict()) + b"\n")
        if entry.name.startswith(CHECKPOINT_DIR):
            return
        self._pending.append(entry)
        self._pending_bytes += entry.size
        if (
            len(self._pending) >= self._every_members
            or self._pending_bytes >= self._every_bytes
            or time.monotonic() - self._last_cp >= self._every_s
        ):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write a checkpoint member for the members since the last one, and flush."""
        if not self._pending:
            return
        self._cp_seq += 1
        body = _dumps(
            {
                "seq": self._cp_seq,
                "prev_sha256": self._cp_prev,
                "ts_ns": now_ns(),
                "file_prefix": self._prefix(),
                "members": [e.to_dict() for e in self._pending],
            }
        )
        self._pending = []
        self._pending_bytes = 0
        entry = self.add_bytes(f"{CHECKPOINT_DIR}{self._cp_seq:06d}.json", body)
        self._cp_prev = entry.sha256
        self._last_cp = time.monotonic()
        self._sink.sync_point()

    def _prefix(self) -> dict[str, Any]:
        """The output file up to the last sync point: its length and SHA-256 (so
        verify covers every byte there, tar padding and zstd framing included)."""
        size, sha, tar_bytes = self._sink.prefix
        return {"bytes": size, "sha256": sha, "tar_bytes": tar_bytes}

    # -- the end ------------------------------------------------------------
    def finish(self, manifest: dict[str, Any], signer: Signer | None = None) -> tuple[str, int]:
        """Write the manifest (the last member but its signature) and close the stream.

        ``manifest`` gets ``format``, ``version``, ``members``, ``checkpoints``,
        ``file_prefix`` (the file up to the manifest's header) and, as its last
        field, ``self_check`` (SHA-256 of the manifest's bytes before that
        field) added. With ``signer`` an Ed25519 signature of the manifest's
        hash follows as ``manifest.sig`` (:attr:`signature`). Returns the
        manifest's SHA-256 and size.
        """
        self.checkpoint()
        # everything before the manifest: one prefix hash; a zstd frame ends here
        self._sink.end_frame()
        fields = dict(manifest)
        fields.update(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "checkpoints": self._cp_seq,
                "last_checkpoint_sha256": self._cp_prev,
                "file_prefix": self._prefix(),
                "sealed_ns": now_ns(),
            }
        )
        fields.pop(SELF_CHECK_KEY, None)
        fields["sealed"] = iso_ns(fields["sealed_ns"])
        head = _dumps(fields)
        assert head.endswith(b"}")
        with tempfile.TemporaryFile() as body:
            check = hashlib.sha256()

            def put(data: bytes) -> None:
                check.update(data)
                body.write(data)

            put(head[:-1] + b',"members":[')
            self._spool.seek(0)
            first = True
            for line in self._spool:
                if not first:
                    put(b",")
                put(line.rstrip(b"\n"))
                first = False
            put(b"]")
            body.write(b',"%s":"%s"}\n' % (SELF_CHECK_KEY.encode(), check.hexdigest().encode()))
            size = body.tell()
            body.seek(0)
            digest = hashlib.sha256()
            while chunk := body.read(CHUNK):
                digest.update(chunk)
            manifest_sha = digest.hexdigest()
            sig = b""
            if signer is not None:
                from forensics.signing import dumps as signature_dumps  # noqa: PLC0415

                self.signature = signer.sign_manifest(manifest_sha)
                sig = signature_dumps(self.signature)
            # the tail (manifest, signature, end blocks) is stored, not compressed
            head_m = self._header(MANIFEST_NAME, size)
            head_s = self._header(SIGNATURE_NAME, len(sig)) if sig else b""
            tail = len(head_m) + size + (-size) % BLOCK + 2 * BLOCK
            if sig:
                tail += len(head_s) + len(sig) + (-len(sig)) % BLOCK
            self._sink.begin_stored(tail)
            self._sink.write(head_m)
            body.seek(0)
            while chunk := body.read(CHUNK):
                self._sink.write(chunk)
            if size % BLOCK:
                self._sink.write(b"\0" * ((-size) % BLOCK))
        if sig:
            self._sink.write(head_s + sig)
            self._sink.write(b"\0" * ((-len(sig)) % BLOCK))
        self._sink.write(b"\0" * (2 * BLOCK))
        self._sink.close()
        self._spool.close()
        self.closed = True
        return manifest_sha, size

    @property
    def file_sha256(self) -> str:
        return self._sink.file_sha256

    @property
    def file_bytes(self) -> int:
        return self._sink.file_bytes

    @property
    def tar_bytes(self) -> int:
        return self._sink.tar_bytes
