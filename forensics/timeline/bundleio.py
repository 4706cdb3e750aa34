"""Reading a bundle for the timeline: one quick scan, then one streaming pass.

The bundle is untrusted. Nothing is extracted to disk; members are read as
streams with size caps; a stream that breaks ends the read where it broke, and
what came before is kept and reported.

* :func:`scan_bundle` reads every member once (hashing it on a second thread,
  as :mod:`forensics.bundle.verify` would), keeps the few small members the
  timeline needs up front (target, log sources, custody, passwd, manifest) and
  works out the cache key: the manifest's SHA-256, or for a bundle cut off
  before its manifest, a hash of the names and hashes of what it holds.
* :func:`stream_members` yields the wanted members as readable streams, in
  bundle order, for the extractors; :func:`iter_lines` cuts one into lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from forensics.bundle.format import (
    HEADER_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ZSTD_MAGIC,
    check_version,
)
from forensics.bundle.frameindex import RangeFile, is_content, manifest_positions, read_plan
from forensics.bundle.reader import load_json, unsafe_name
from forensics.bundle.reader import open_stream as bundle_open_stream
from forensics.bundle.zstdstream import ZstdFeeder
from forensics.errors import BundleError
from forensics.textsafe import no_surrogates

CHUNK = 1 << 20
#: member data is read in steps this small, so a corrupt or cut-off stream loses
#: little of what precedes the damage
STEP = 64 << 10
TAR_BUFSIZE = STEP
#: the largest member :func:`scan_bundle` will hold in memory
MAX_KEPT = 64 << 20

_READ_ERRORS = (tarfile.TarError, BundleError, OSError, EOFError, ValueError)


#: compressed bytes decoded per step: small, so that what precedes a corrupt spot
#: is read before the error (the bundle reader decodes 1 MiB at once)
RAW_STEP = 16 << 10


class _Zstd:
    """A read()-able zstd stream that notices a cut-off frame and a corrupt one.

    A thread decompresses ahead (zstd releases the GIL) into a bounded queue, so
    the reading thread only parses. What precedes a corrupt or cut-off spot is
    handed out before the error.
    """

    _AHEAD = 8  # decompressed blocks (about 1 MiB each) queued at most

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self._AHEAD)
        self._buf = bytearray()
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exuvia-unzstd", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        feeder = ZstdFeeder()
        try:
            while not self._stop.is_set():
                data = self._raw.read(RAW_STEP)
                if not data:
                    feeder.end()
                    break
                held: list[bytes] = []
                size = 0
                try:
                    for out in feeder.feed(data):  # at most one zstd block each
                        held.append(out)
                        size += len(out)
                        if size >= CHUNK:
                            self._queue.put(b"".join(held))
                            held, size = [], 0
                finally:
                    if size:  # what precedes any damage goes first
                        self._queue.put(b"".join(held))
        except BaseException as err:  # noqa: BLE001 - handed to the reader, in order
            self._queue.put(err)
        self._queue.put(None)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        while len(self._buf) < n and not self._done:
            item = self._queue.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                if not self._buf:
                    raise item
                self._error: BaseException | None = item  # after what precedes it
            else:
                self._buf += item
        if not self._buf and getattr(self, "_error", None) is not None:
            err, self._error = self._error, None
            assert err is not None
            raise err
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        """Stop the decompressing thread (the caller closes the file after this)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.01)


def open_stream(
    path: str | Path | BinaryIO, skip_content: bool = False, content: Iterable[str] = ()
) -> tuple[BinaryIO, IO[bytes]]:
    """The bundle file and its decompressed stream (decompressed ahead).

    ``skip_content``: a 2.1 bundle's frames of copied file contents are not read
    (:mod:`forensics.bundle.frameindex`), except those holding the ``content``
    members named; the stream then holds every other member.
    """
    if skip_content and isinstance(path, (str, Path)):
        skipping = _open_skipping(path, list(content))
        if skipping is not None:
            return skipping
    return bundle_open_stream(path, _Zstd)


def _open_skipping(path: str | Path, content: list[str]) -> tuple[BinaryIO, IO[bytes]] | None:
    try:
        raw = Path(path).open("rb")
    except OSError as err:
        raise BundleError(f"cannot open {path}: {err.strerror}") from err
    try:
        if raw.read(4) == ZSTD_MAGIC:
            plan = read_plan(raw, os.fstat(raw.fileno()).st_size)
            if plan is not None:
                wanted = manifest_positions(plan.tail_bytes(raw), content) if content else []
                view = RangeFile(raw, plan.ranges(wanted))
                return view, _Zstd(view)  # type: ignore[return-value, arg-type]
    except OSError:
        pass
    raw.close()
    return None


def skips_content(stream: IO[bytes]) -> bool:
    return isinstance(stream, _Zstd) and isinstance(stream._raw, RangeFile)


def _close(raw: BinaryIO, stream: IO[bytes]) -> None:
    if isinstance(stream, _Zstd):
        stream.close()
    raw.close()


class StreamCut(Exception):
    """The bundle's stream ended or broke while a member was being read."""


@dataclass
class BundleScan:
    """What one pass over a bundle found."""

    path: Path
    members: list[tuple[str, int, str]] = field(default_factory=list)  # name, size, sha256
    kept: dict[str, bytes] = field(default_factory=dict)
    too_big: list[str] = field(default_factory=list)
    header: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    manifest_sha256: str | None = None
    broken: str | None = None
    problems: list[str] = field(default_factory=list)
    #: copied file contents were not read (their frames skipped; `verify` reads them)
    content_skipped: bool = False
    #: the manifest's member list, as text (see :func:`_manifest_head`)
    members_json: bytes | None = None
    #: (size, sha256) the manifest lists for each member read, once worked out
    #: (:func:`_unread` walks the list; :func:`check_against_manifest` needs no second walk)
    listed: dict[str, tuple[object, object]] | None = None

    def manifest_entries(self) -> Iterator[dict[str, Any]] | None:
        """The manifest's member entries one by one, or None when it has no list."""
        if self.members_json is not None:
            return _entries(self.members_json.decode("utf-8"))
        entries = (self.manifest or {}).get("members")
        if not isinstance(entries, list):
            return None
        return (e for e in entries if isinstance(e, dict))

    @property
    def key(self) -> str:
        """The cache key: the manifest's SHA-256, else a hash of what was read."""
        if self.manifest_sha256:
            return self.manifest_sha256
        h = hashlib.sha256(b"exuvia-no-manifest\n")
        for name, size, sha in self.members:
            h.update(f"{name}\0{size}\0{sha}\n".encode("utf-8", "surrogateescape"))
        h.update(f"broken\0{self.broken}\n".encode("utf-8", "surrogateescape"))
        return "partial-" + h.hexdigest()

    def json_member(self, name: str) -> Any:
        """A kept member parsed as one JSON value; None when absent or malformed."""
        data = self.kept.get(name)
        if data is None:
            return None
        try:
            return no_surrogates(load_json(data, name))
        except BundleError as err:
            self.problems.append(str(err))
            return None


def bundle_signature(path: str | Path) -> str:
    """Identity of the bundle file as it is now (device, inode, size, times)."""
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _open_tar(stream: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(
            fileobj=stream,
            mode="r|",
            bufsize=TAR_BUFSIZE,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except _READ_ERRORS as err:
        raise BundleError(f"not an exuvia bundle: not a readable tar stream ({err})") from err


class _Hasher:
    """SHA-256 of each member on a worker thread (hashlib releases the GIL), so
    hashing overlaps decompression."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | int | None] = queue.Queue(maxsize=8)
        self.digests: dict[int, str] = {}
        self.thread = threading.Thread(target=self._run, name="exuvia-hash", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        digest = hashlib.sha256()
        while (item := self.queue.get()) is not None:
            if isinstance(item, bytes):
                digest.update(item)
            else:
                self.digests[item] = digest.hexdigest()
                digest = hashlib.sha256()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def scan_bundle(
    path: str | Path,
    keep: Callable[[str], bool],
    skip_content: bool = False,
    content: Iterable[str] = (),
) -> BundleScan:
    """Read and hash every member once; keep those ``keep`` names (up to :data:`MAX_KEPT`).

    ``skip_content``: skip the frames of copied file contents when the bundle has
    a frame index; if what was read then does not account for every other member
    the manifest lists, the bundle is read again in full (the index is untrusted).
    ``content``: the copied files to read all the same (those ``keep`` wants).
    """
    if skip_content:
        wanted = list(content)
        try:
            scan = _scan(path, keep, True, wanted)
        except BundleError:  # what was read is not a bundle: let a full read say why
            return _scan(path, keep, False, [])
        if not scan.content_skipped:
            return scan
        if scan.manifest is None or scan.broken:
            return _scan(path, keep, False, [])  # damaged: a full read says what and where
        missing = _unread(scan, wanted)
        if not missing:
            return scan
        full = _scan(path, keep, False, [])
        full.problems.append(
            f"the frame index does not account for {missing} members the manifest lists;"
            " the bundle was read in full"
        )
        return full
    return _scan(path, keep, False, [])


def _unread(scan: BundleScan, content: list[str]) -> int:
    """Members other than copied contents that the manifest lists and the scan missed."""
    entries = scan.manifest_entries()
    if entries is None:
        return 0
    seen = {name for name, _s, _h in scan.members}
    listed: dict[str, tuple[object, object]] = {}
    missing = 0
    for e in entries:
        name = e.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            listed[name] = (e.get("size"), e.get("sha256"))
        elif not is_content(name) or name in content:
            missing += 1
    scan.listed = listed
    return missing


def _scan(
    path: str | Path, keep: Callable[[str], bool], skip_content: bool, content: list[str]
) -> BundleScan:
    scan = BundleScan(Path(path))
    raw, stream = open_stream(path, skip_content, content)
    scan.content_skipped = skips_content(stream)
    hasher = _Hasher()
    seen: set[str] = set()
    try:
        tar = _open_tar(stream)
        current = ""
        try:
            while True:
                info = tar.next()
                if info is None:
                    break
                current = info.name
                _flag(scan, info, seen)
                size = info.size if info.isreg() else 0
                want = info.isreg() and (keep(info.name) or info.name in (HEADER_NAME,))
                want = want or info.name == MANIFEST_NAME
                if want and size > MAX_KEPT:
                    scan.too_big.append(info.name)
                    want = False
                parts: list[bytes] = []
                got = 0
                if info.isreg():
                    fobj = tar.extractfile(info)
                    assert fobj is not None
                    while chunk := fobj.read(CHUNK):
                        got += len(chunk)
                        hasher.queue.put(chunk)
                        if want:
                            parts.append(chunk)
                    if got < size:
                        raise StreamCut(f"the stream ends inside member {info.name!r}")
                hasher.queue.put(len(scan.members))
                scan.members.append((info.name, size, ""))
                if want:
                    scan.kept[info.name] = b"".join(parts)
                current = ""
        except StreamCut as err:
            scan.broken = str(err)
        except _READ_ERRORS as err:
            where = f" in member {current!r}" if current else f" after {len(scan.members)} members"
            scan.broken = f"the stream is cut off or corrupt{where} ({err})"
    finally:
        _close(raw, stream)
        hasher.close()
    scan.members = [(n, sz, hasher.digests.get(i, "")) for i, (n, sz, _) in enumerate(scan.members)]
    for name, _size, sha in scan.members:
        if name == MANIFEST_NAME and name in scan.kept:
            scan.manifest_sha256 = sha
    if not scan.members:
        raise BundleError(f"{path}: not an exuvia bundle ({scan.broken or 'it is empty'})")
    head = scan.json_member(HEADER_NAME)
    if not isinstance(head, dict) or head.get("format") != "exuvia-bundle":
        raise BundleError(f"{path}: not an exuvia bundle (no {HEADER_NAME} header)")
    scan.header = head
    check_version(head.get("version"))
    manifest = _manifest_head(scan)
    if manifest is None:
        manifest = scan.json_member(MANIFEST_NAME)
    if manifest is not None:
        if not isinstance(manifest, dict):
            scan.problems.append("manifest is not a JSON object; ignored")
        else:
            check_version(manifest.get("version"))
            scan.manifest = manifest
    return scan


_MEMBERS_START = b',"members":['


def _manifest_head(scan: BundleScan) -> dict[str, Any] | None:
    """The manifest without its member list, which is kept as text for
    :meth:`BundleScan.manifest_entries` (parsed one entry at a time: as a whole,
    the list of a 100,000-file bundle is ~150 MiB of Python objects); None when
    the manifest is not laid out as the writer lays it out (then it is parsed whole)."""
    data = scan.kept.get(MANIFEST_NAME)
    if data is None:
        return None
    start = data.find(_MEMBERS_START)
    end = data.rfind(b'],"self_check":')
    if end < 0:
        end = data.rstrip().rfind(b"]}")
    if start < 0 or end < start:
        return None
    try:
        head = no_surrogates(json.loads(data[:start] + data[end + 1 :]))
        members = data[start + len(_MEMBERS_START) : end]
        members.decode("utf-8")  # checked here; decoded again when read
    except (ValueError, RecursionError):
        return None
    if not isinstance(head, dict) or "members" in head:
        return None
    scan.members_json = members
    return head


#: structural warnings kept per bundle (a crafted bundle may hold millions)
MAX_FLAGGED = 50


def _flag(scan: BundleScan, info: tarfile.TarInfo, seen: set[str]) -> None:
    """Note what no exuvia writer produces: links, devices, path-like or repeated names."""
    why = unsafe_name(info.name)
    notes = [f"member {info.name!r} has {why}; ignored as a path"] if why else []
    if not info.isreg():
        kind = "link" if info.issym() or info.islnk() else "non-file"
        notes.append(f"member {info.name!r} is a {kind} member (type {info.type!r}); not read")
    if info.name in seen:
        notes.append(f"duplicate member {info.name!r}")
    seen.add(info.name)
    for note in notes:
        if len(scan.problems) < MAX_FLAGGED:
            scan.problems.append(f"crafted bundle? {note}")
        elif len(scan.problems) == MAX_FLAGGED:
            scan.problems.append("crafted bundle? … more structural problems not listed")


def _entries(text: str) -> Iterator[dict[str, Any]]:
    decode = _DECODER.scan_once  # type: ignore[attr-defined]  # raw_decode, no Python frame
    pos, n = 0, len(text)
    while pos < n:
        try:
            obj, pos = decode(text, pos)
        except (ValueError, RecursionError, StopIteration):
            return  # malformed: the entries before it are checked
        if isinstance(obj, dict):
            yield obj
        while pos < n and text[pos] in ", \n":
            pos += 1


_DECODER = json.JSONDecoder()


def check_against_manifest(scan: BundleScan) -> list[str]:
    """Members whose size or hash differ from the manifest, or that it does not list."""
    if scan.manifest is None:
        return []
    entries = scan.manifest_entries()
    if entries is None:
        return ["the manifest has no member list"]
    read = {name for name, _s, _h in scan.members}
    listed = scan.listed
    if listed is None:
        listed = {}
        for e in entries:
            name = e.get("name")
            if isinstance(name, str) and name in read:
                listed[name] = (e.get("size"), e.get("sha256"))
    out: list[str] = []
    for name, size, sha in scan.members:
        if name in (MANIFEST_NAME, SIGNATURE_NAME):
            continue  # the signature follows the manifest; `verify` checks it
        want = listed.get(name)
        if want is None:
            out.append(f"{name}: not listed in the manifest")
        elif want != (size, sha):
            out.append(f"{name}: does not match the manifest (altered or truncated)")
    return out


class MemberStream:
    """A member being read; read errors become :class:`StreamCut`."""

    def __init__(self, name: str, size: int, fobj: IO[bytes]) -> None:
        self.name = name
        self.size = size
        self._f = fobj
        self.read_bytes = 0

    def read(self, n: int = STEP) -> bytes:
        try:
            data = self._f.read(n)
        except _READ_ERRORS as err:
            raise StreamCut(f"the stream breaks inside member {self.name!r} ({err})") from err
        self.read_bytes += len(data)
        if not data and self.read_bytes < self.size:
            raise StreamCut(f"the stream ends inside member {self.name!r}")
        return data


def stream_members(
    path: str | Path,
    want: Callable[[str], bool],
    skip_content: bool = False,
    content: Iterable[str] = (),
) -> Iterator[MemberStream]:
    """The wanted regular members, in bundle order, as streams (read them before the next).

    Raises :class:`StreamCut` where the stream breaks. ``skip_content`` and
    ``content``: see :func:`open_stream` (``content`` names the copied files wanted).
    """
    raw, stream = open_stream(path, skip_content, content)
    try:
        tar = _open_tar(stream)
        while True:
            try:
                info = tar.next()
            except _READ_ERRORS as err:
                raise StreamCut(f"the stream is cut off or corrupt ({err})") from err
            if info is None:
                return
            if not info.isreg() or not want(info.name):
                continue
            fobj = tar.extractfile(info)
            assert fobj is not None
            yield MemberStream(info.name, info.size, fobj)
    finally:
        _close(raw, stream)


class Cut(bytes):
    """A line cut at the limit; ``full`` is its real length in bytes."""

    full: int


def _cut(line: bytes, full: int) -> Cut:
    out = Cut(line)
    out.full = full
    return out


def read_record(path: str | Path, member: str, line: int, max_bytes: int = 1 << 20) -> bytes:
    """The raw bytes of one record: line ``line`` (1-based) of ``member``, or the whole
    member for line 0, at most ``max_bytes``. BundleError when it is not there."""
    for m in stream_members(path, lambda n: n == member):
        if line == 0:
            return m.read(max_bytes)
        for n, raw in enumerate(iter_lines(m, max_bytes), 1):
            if n == line:
                return bytes(raw)
        break
    raise BundleError(f"{path}: no line {line} in member {member!r}")


def iter_lines(member: MemberStream, max_line: int) -> Iterator[bytes]:
    """Each line of a member, without its newline.

    A line longer than ``max_line`` comes as a :class:`Cut` of its first
    ``max_line`` bytes (``type(line) is not bytes`` tells them apart cheaply);
    its tail is read and dropped, never held. A last line without a newline is
    still a line.
    """
    rest = b""
    overflow = 0  # > 0 while skipping the tail of an overlong line
    while True:
        block = member.read(STEP)
        if not block:
            break
        start = 0
        if overflow:
            nl = block.find(b"\n")
            if nl < 0:
                overflow += len(block)
                continue
            yield _cut(rest, overflow + nl)
            rest, overflow, start = b"", 0, nl + 1
        lines = block[start:].split(b"\n")
        if rest:
            lines[0] = rest + lines[0]
        rest = lines.pop()
        for line in lines:
            if len(line) > max_line:
                yield _cut(line[:max_line], len(line))
            else:
                yield line
        if len(rest) > max_line:
            overflow = len(rest)
            rest = rest[:max_line]
    if overflow:
        yield _cut(rest, overflow)
    elif rest:
        yield rest
