"""RPM packages from the sqlite rpmdb (rpm >= 4.16: Fedora, RHEL 9, Amazon Linux 2023...).

``rpmdb.sqlite`` has a table ``Packages(hnum, blob)``; each blob is an rpm
header in its on-disk ("imported") form: big-endian ``il`` (entry count) and
``dl`` (data length), ``il`` 16-byte entries (tag, type, offset, count), then
``dl`` bytes of data. Read: NAME VERSION RELEASE EPOCH ARCH LICENSE VENDOR URL
SUMMARY SOURCERPM, and the file list (DIRNAMES + BASENAMES by DIRINDEXES) with
FILEDIGESTS in FILEDIGESTALGO. Every count and offset is checked against the
blob. The older Berkeley DB (``Packages``) and ndb (``Packages.db``) formats are
reported as present but unsupported.

The database is opened read-only and immutable (no journal, no WAL replay)
from a private temporary copy: it is untrusted input.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl

MAX_ENTRIES = 1 << 16
MAX_DATA = 256 << 20
MAX_PACKAGES = 200_000
_ENTRY = struct.Struct(">iIiI")

NAME, VERSION, RELEASE, EPOCH, SUMMARY = 1000, 1001, 1002, 1003, 1004
VENDOR, LICENSE, URL, ARCH = 1011, 1014, 1020, 1022
FILEDIGESTS, SOURCERPM, DIRINDEXES, BASENAMES, DIRNAMES = 1035, 1044, 1116, 1117, 1118
FILEDIGESTALGO = 5011
T_INT16, T_INT32, T_STRING, T_STRING_ARRAY, T_I18NSTRING = 3, 4, 6, 8, 9
#: PGPHASHALGO values rpm uses for file digests
DIGEST_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


class RpmHeaderError(ValueError):
    """A header blob is malformed (with the reason)."""


@dataclass(slots=True)
class _Entry:
    type: int
    offset: int
    count: int


class Header:
    """Lazy, bounds-checked access to one header blob's tags."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 8:
            raise RpmHeaderError("header shorter than its preamble")
        il, dl = struct.unpack_from(">II", blob, 0)
        if il > MAX_ENTRIES or dl > MAX_DATA:
            raise RpmHeaderError(f"implausible header ({il} entries, {dl} data bytes)")
        start = 8 + il * 16
        if start + dl > len(blob):
            raise RpmHeaderError("header data runs past the blob")
        self._data = blob[start : start + dl]
        self._entries: dict[int, _Entry] = {}
        for i in range(il):
            tag, typ, off, count = _ENTRY.unpack_from(blob, 8 + i * 16)
            if 0 <= off < dl or (count == 0 and off == dl):
                self._entries.setdefault(tag, _Entry(typ, off, count))

    def _strings(self, e: _Entry) -> list[str]:
        out: list[str] = []
        pos = e.offset
        for _ in range(min(e.count, MAX_ENTRIES * 16)):
            end = self._data.find(b"\0", pos)
            if end < 0:
                raise RpmHeaderError("string runs past the header data")
            out.append(self._data[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        return out

    def string(self, tag: int) -> str | None:
        e = self._entries.get(tag)
        if e is None or e.type not in (T_STRING, T_STRING_ARRAY, T_I18NSTRING) or e.count < 1:
            return None
        return self._strings(_Entry(e.type, e.offset, 1))[0]

    def strings(self, tag: int) -> list[str]:
        e = self._entries.get(tag)
        if e is None or e.type not in (T_STRING_ARRAY, T_I18NSTRING):
            return []
        return self._strings(e)

    def ints(self, tag: int) -> list[int]:
        e = self._entries.get(tag)
        if e is None or e.type not in (T_INT16, T_INT32):
            return []
        size = 4 if e.type == T_INT32 else 2
        if e.offset + e.count * size > len(self._data):
            raise RpmHeaderError(f"tag {tag} runs past the header data")
        fmt = f">{e.count}{'i' if size == 4 else 'h'}"
        return list(struct.unpack_from(fmt, self._data, e.offset))


def package_of(blob: bytes, source: str, distro: tuple[str, str | None]) -> Package | None:
    h = Header(blob)
    name, version, release = h.string(NAME), h.string(VERSION), h.string(RELEASE)
    if not name or not version or name == "gpg-pubkey":
        return None
    epoch = h.ints(EPOCH)
    arch = h.string(ARCH)
    full = f"{version}-{release}" if release else version
    ns, rel = distro
    qual = {
        "arch": arch,
        "epoch": str(epoch[0]) if epoch and epoch[0] else None,
        "distro": f"{ns}-{rel}" if rel else None,
    }
    lic = h.string(LICENSE)
    pkg = Package(
        ecosystem="rpm",
        name=name,
        version=f"{epoch[0]}:{full}" if epoch and epoch[0] else full,
        purl=purl("rpm", name, full, ns, qual),
        source=source,
        arch=arch,
        licenses=[lic] if lic else [],
        supplier=h.string(VENDOR),
        description=h.string(SUMMARY),
        homepage=h.string(URL),
    )
    srpm = h.string(SOURCERPM)
    if srpm:
        pkg.properties["rpm:sourcerpm"] = srpm
    base, dirs, idx = h.strings(BASENAMES), h.strings(DIRNAMES), h.ints(DIRINDEXES)
    digests = h.strings(FILEDIGESTS)
    algo_v = h.ints(FILEDIGESTALGO)
    algo = DIGEST_ALGOS.get(algo_v[0] if algo_v else 1)
    for i, b in enumerate(base):
        if i >= len(idx) or not 0 <= idx[i] < len(dirs):
            break
        d = digests[i] if i < len(digests) and digests[i] else None
        pkg.files.append(FileClaim(dirs[idx[i]] + b, algo if d else None, d.lower() if d else None))
    return pkg


def read_sqlite(
    db_path: str, source: str, distro: tuple[str, str | None]
) -> tuple[list[Package], list[str]]:
    """Packages of an rpmdb.sqlite file (a private copy; opened immutable)."""
    pkgs: list[Package] = []
    problems: list[str] = []
    try:
        con = sqlite3.connect(f"file:{quote(db_path)}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as err:
        return [], [f"{source}: cannot open the rpm database ({err})"]
    try:
        rows: Any = con.execute("SELECT hnum, blob FROM Packages LIMIT ?", (MAX_PACKAGES,))
        for hnum, blob in rows:
            if not isinstance(blob, bytes):
                continue
            try:
                pkg = package_of(blob, source, distro)
            except (RpmHeaderError, struct.error) as err:
                problems.append(f"{source}: package record {hnum} unreadable ({err})")
                continue
            if pkg is not None:
                pkgs.append(pkg)
    except sqlite3.Error as err:
        problems.append(f"{source}: not a readable rpm sqlite database ({err})")
    finally:
        con.close()
    return pkgs, problems
