"""BundleWriter: a sequential tar stream of hashed members, checkpoints, manifest last.

The writer never seeks, so a bundle can be produced inside a pod and piped out.
Every ``checkpoint_every_*`` it writes a checkpoint member listing the hashes of
the members since the previous one (chained by hash) and flushes, so a stream cut
at any point still verifies up to its last checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from forensics.bundle.format import (
    CHECKPOINT_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_NAME,
    MANIFEST_NAME,
    SELF_CHECK_KEY,
    SIGNATURE_NAME,
)
from forensics.bundle.frameindex import is_content
from forensics.bundle.sink import Sink
from forensics.bundle.whole import signals_deferred
from forensics.jsonfast import dumps as _dumps
from forensics.jsonfast import quote
from forensics.timeutil import iso_ns, now_ns

if TYPE_CHECKING:  # the in-pod agent never signs and need not load cryptography
    from forensics.signing import Signer

BLOCK = 512
CHUNK = 1 << 20
#: members up to this size are assembled in memory and written in one call
SMALL = 256 << 10
_USTAR_MAX_SIZE = 8**11 - 1


# the fixed fields of every header here, and their share of the checksum
_IDS = b"0000444\0" + b"0000000\0" + b"0000000\0"  # mode, uid, gid
_AFTER_TYPE = (
    b"\0" * 100  # linkname
    + b"ustar\x0000"
    + b"exuvia".ljust(32, b"\0")
    + b"exuvia".ljust(32, b"\0")
    + b"0000000\0"
    + b"0000000\0"
)
_FIXED_SUM = sum(_IDS) + sum(b" " * 8) + ord("0") + sum(_AFTER_TYPE)
_TAIL_PAD = b"\0" * 12


def ustar_header(name: str, size: int, mtime: int) -> bytes | None:
    """A plain ustar header, or None when the member needs PAX (long name, huge).

    tarfile's generic header code costs more than reading a small file; members
    here are always regular files, mode 0444, owned by "exuvia". The checksum
    adds the variable fields to the precomputed sum of the fixed ones.
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
    size_f = b"%011o\0" % size
    mtime_f = b"%011o\0" % mtime
    chksum = _FIXED_SUM + sum(raw) + sum(prefix) + sum(size_f) + sum(mtime_f)
    return b"".join(
        (
            raw.ljust(100, b"\0"),
            _IDS,
            size_f,
            mtime_f,
            b"%06o\0 " % chksum,
            b"0",
            _AFTER_TYPE,
            prefix.ljust(155, b"\0"),
            _TAIL_PAD,
        )
    )


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


def read_up_to(read: Callable[[int], bytes], size: int, digest: Any) -> Iterator[bytes]:
    """Chunks (at most :data:`CHUNK`) from ``read(n)`` until ``size`` bytes or the
    source's end, never past ``size``; each is added to ``digest`` as it goes."""
    remaining = size
    while remaining > 0:
        chunk = read(min(CHUNK, remaining))
        if not chunk:
            return
        if len(chunk) > remaining:
            chunk = chunk[:remaining]
        digest.update(chunk)
        remaining -= len(chunk)
        yield chunk


def padded(digest: Any, short: int) -> Any:
    """``digest`` as if ``short`` zero bytes followed (a copy; ``digest`` itself if none)."""
    if not short:
        return digest
    out = digest.copy()
    while short > 0:
        n = min(CHUNK, short)
        out.update(bytes(n))
        short -= n
    return out


class MemberWriter(Protocol):
    """What a collector needs of a writer to add members (BundleWriter, or a
    stand-in in another process)."""

    def add_bytes(
        self, name: str, data: bytes | memoryview, *, sha256: str | None = None
    ) -> MemberEntry: ...

    def add_stream(
        self, name: str, size: int, read: Callable[[int], bytes], digest: Any = None
    ) -> MemberEntry: ...


class MemberStream:
    """A member being written from outside; see :meth:`BundleWriter.begin_member`."""

    def __init__(self, writer: BundleWriter, name: str, size: int) -> None:
        self._writer = writer
        self.name = name
        self.size = size
        self.remaining = size

    def write(self, data: bytes | memoryview) -> None:
        """Append content; bytes beyond the member's size are dropped."""
        if len(data) > self.remaining:
            data = data[: self.remaining]
        self._writer._sink.write(data)
        self.remaining -= len(data)

    def finish(self, sha256: str) -> MemberEntry:
        """Zero-pad a short member to its size, close it, and record ``sha256``."""
        short = self.remaining
        sink = self._writer._sink
        while self.remaining > 0:
            pad = b"\0" * min(CHUNK, self.remaining)
            sink.write(pad)
            self.remaining -= len(pad)
        tail = (-self.size) % BLOCK
        if tail:
            sink.write(b"\0" * tail)
        entry = MemberEntry(self.name, self.size, sha256, short)
        self._writer._record(entry)
        return entry


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
        checkpoint_every_seconds: float = 1.0,
        header: dict[str, Any] | None = None,
        offload: bool = False,
    ) -> None:
        # offload: compression, the output's hash and the writes on a worker
        # thread (forensics/bundle/sink.py); the stream's bytes are the same
        self._sink = Sink(raw, compress, level, threads, offload=offload)
        self._mtime = int(time.time())
        #: JSON of the members since the last checkpoint (without newlines)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._last_cp = time.monotonic()
        self._cp_seq = 0
        self._cp_prev = ""
        self._every_bytes = checkpoint_every_bytes
        self._every_members = checkpoint_every_members
        self._every_s = checkpoint_every_seconds
        #: called before each checkpoint (record chunks write what they hold)
        self._hooks: list[Callable[[], None]] = []
        self._in_hooks = False
        self._due = False  # a checkpoint waits for the next record (record_added)
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
        self._sink.member_start(is_content(name))
        return member_header(name, size, self._mtime)

    def add_bytes(
        self, name: str, data: bytes | memoryview, *, sha256: str | None = None
    ) -> MemberEntry:
        """Add a member whose whole content is in memory.

        ``sha256``: the hex SHA-256 of ``data`` when the caller already has it
        (a copied file is hashed once, for its record and its member alike).
        """
        if sha256 is not None:
            with signals_deferred():  # a member is written whole (whole.py)
                self._sink.write_member(self._header(name, len(data)), data, (-len(data)) % BLOCK)
                entry = MemberEntry(name, len(data), sha256)
                self._record(entry)
            return entry
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
        SIGINT/SIGTERM wait until the member is written (whole.py).
        """
        with signals_deferred():
            return self._add_stream(name, size, read, digest)

    def _add_stream(
        self, name: str, size: int, read: Callable[[int], bytes], digest: Any
    ) -> MemberEntry:
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
        got = 0
        for chunk in read_up_to(read, size, h):
            self._sink.write(chunk)
            got += len(chunk)
        short = size - got
        member_h = padded(h, short)
        remaining = short + tail
        while remaining > 0:
            n = min(CHUNK, remaining)
            self._sink.write(bytes(n))
            remaining -= n
        entry = MemberEntry(name, size, member_h.hexdigest(), short)
        self._record(entry)
        return entry

    def begin_member(self, name: str, size: int) -> MemberStream:
        """Start a member of ``size`` bytes whose content the caller hashes itself.

        For content hashed where it was read (another process): write it with
        :meth:`MemberStream.write`, then :meth:`MemberStream.finish` with the
        SHA-256 of the member as stored (zero padding included if short).
        """
        self._sink.write(self._header(name, size))
        return MemberStream(self, name, size)

    def _record(self, entry: MemberEntry) -> None:
        self.member_count += 1
        # what _dumps(entry.to_dict()) gives, without building the dict
        line = b'{"name":%s,"sha256":"%s","size":%d}' % (
            quote(entry.name).encode(),
            entry.sha256.encode(),
            entry.size,
        )
        self._spool.write(line + b"\n")
        if entry.name.startswith(CHECKPOINT_DIR):
            return
        self._pending.append(line)
        self._pending_bytes += entry.size
        if (
            len(self._pending) >= self._every_members
            or self._pending_bytes >= self._every_bytes
            or time.monotonic() - self._last_cp >= self._every_s
        ):
            if self._hooks and not self._in_hooks and not self._overdue():
                # records are being written: wait for the record of what was just
                # added (a copied file's fs_entry follows its member), so both land
                # behind the same checkpoint (see record_added)
                self._due = True
            else:
                self.checkpoint()

    def _overdue(self) -> bool:
        """A deferred checkpoint waits at most one more interval (or threshold)."""
        return (
            len(self._pending) >= 2 * self._every_members
            or self._pending_bytes >= 2 * self._every_bytes
            or time.monotonic() - self._last_cp >= 2 * self._every_s
        )

    def record_added(self) -> None:
        """A record stream took a record: write the checkpoint that was waiting for it."""
        if self._due:
            self.checkpoint()

    @property
    def checkpoint_seconds(self) -> float:
        return self._every_s

    def before_checkpoint(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before every checkpoint (it may add members, which that
        checkpoint then covers)."""
        self._hooks.append(hook)

    def forget_checkpoint_hook(self, hook: Callable[[], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def checkpoint(self) -> None:
        """Write a checkpoint member for the members since the last one, and flush."""
        self._due = False
        if not self._in_hooks and self._hooks:
            self._in_hooks = True
            try:
                for hook in list(self._hooks):
                    hook()
            finally:
                self._in_hooks = False
        if not self._pending:
            return
        self._cp_seq += 1
        # _dumps({"seq", "prev_sha256", "ts_ns", "file_prefix", "members"}) from the
        # member lines kept (keys in _dumps's sorted order)
        body = b'{"file_prefix":%s,"members":[%s],"prev_sha256":%s,"seq":%d,"ts_ns":%d}' % (
            _dumps(self._prefix()),
            b",".join(self._pending),
            quote(self._cp_prev).encode(),
            self._cp_seq,
            now_ns(),
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
