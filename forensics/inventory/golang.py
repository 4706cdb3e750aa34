"""Go build information embedded in a binary, read as Go's debug/buildinfo reads it.

The linker leaves a 32-byte header starting "\\xff Go buildinf:" at a 16-byte
aligned address in the .go.buildinfo section (or, without section headers, in
the first writable, non-executable PT_LOAD segment). Go >= 1.18 follows it with
two varint-prefixed strings (the Go version and the module information); older
toolchains put two pointers to Go string headers there instead. Both are read.

:func:`read_raw` works through two callables, so the extractor (which records
what it reads into the blob) and the analysis (which reads the blob) share it.
:func:`parse_modinfo` follows runtime/debug.ParseBuildInfo, and
:meth:`GoBuildInfo.render` is BuildInfo.String(): what ``go version -m`` prints.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from forensics.inventory.elftypes import PF_W, PF_X, PT_LOAD, Sec, Seg

MAGIC = b"\xff Go buildinf:"
ALIGN = 16
HEADER_SIZE = 32
SEARCH_CHUNK = 1 << 20
MAX_STRING = 4 << 20
_U64 = (1 << 64) - 1

ReadFn = Callable[[int, int], bytes]


class NotGo(ValueError):
    """No Go build information (or it is unreadable), with the reason."""


@dataclass(slots=True)
class GoModule:
    path: str
    version: str
    sum: str = ""
    replace: GoModule | None = None


@dataclass(slots=True)
class GoBuildInfo:
    go_version: str
    path: str = ""
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)

    def render(self) -> str:
        """BuildInfo.String() without the go line: the lines ``go version -m`` indents."""
        out: list[str] = []
        if self.path:
            out.append(f"path\t{self.path}")

        def fmt(word: str, m: GoModule) -> None:
            if m.replace is None:
                out.append(f"{word}\t{m.path}\t{m.version}\t{m.sum}")
            else:
                out.append(f"{word}\t{m.path}\t{m.version}")
                fmt("=>", m.replace)
                out.append("")  # Go writes the newline twice here: a blank line

        if self.main is not None and (self.main.path or self.main.version or self.main.sum):
            fmt("mod", self.main)
        for dep in self.deps:
            fmt("dep", dep)
        for key, value in self.settings:
            k = _go_quote(key) if _quote_key(key) else key
            v = _go_quote(value) if _quote_value(value) else value
            out.append(f"build\t{k}={v}")
        return "\n".join(out)

    def setting(self, key: str) -> str | None:
        for k, v in self.settings:
            if k == key:
                return v
        return None


# -- locating and decoding the raw strings ------------------------------------------
def _data_start(sections: Sequence[Sec], progs: Sequence[Seg]) -> tuple[int, int]:
    for s in sections:
        if s.name == ".go.buildinfo":
            return s.addr, s.size
    for p in progs:
        if p.type == PT_LOAD and p.flags & (PF_X | PF_W) == PF_W:
            return p.vaddr, p.memsz
    return 0, 0


def _locate(progs: Sequence[Seg], addr: int) -> tuple[int, int]:
    """(file offset, bytes left in its segment) for a virtual address, as Go's
    DataReader finds it (first program header whose file bytes hold it)."""
    for p in progs:
        if p.vaddr <= addr <= (p.vaddr + p.filesz - 1) & _U64:
            return p.offset + (addr - p.vaddr), (p.vaddr + p.filesz - addr) & _U64
    raise NotGo("address of the build information is outside every segment")


def _read_data(read: ReadFn, progs: Sequence[Seg], addr: int, size: int) -> bytes:
    off, left = _locate(progs, addr)
    return read(off, min(size, left, MAX_STRING))


def _search(scan: ReadFn, progs: Sequence[Seg], start: int, size: int, limit: int) -> int:
    end = start + size
    if end > _U64:
        raise NotGo("data segment bounds overflow")
    start = (start + ALIGN - 1) & ~(ALIGN - 1)
    scanned = 0
    while start < end:
        if scanned >= limit:
            raise NotGo(f"no build information in the first {limit} bytes of the data")
        remaining = end - start
        chunk = min(SEARCH_CHUNK, remaining)
        off, left = _locate(progs, start)
        data = scan(off, min(chunk, left))
        scanned += chunk
        if not data:
            raise NotGo("no build information (end of data)")
        i = data.find(MAGIC)
        while i >= 0:
            if remaining - i < HEADER_SIZE:
                raise NotGo("build information header cut short")
            if i % ALIGN == 0:
                return start + i
            i = data.find(MAGIC, (i + ALIGN - 1) & ~(ALIGN - 1))
        start += chunk
    raise NotGo("no build information magic")


def _uvarint(b: bytes) -> tuple[int, int]:
    x = 0
    shift = 0
    for i, c in enumerate(b[:10]):
        if c < 0x80:
            if i == 9 and c > 1:
                return 0, -(i + 1)
            return x | c << shift, i + 1
        x |= (c & 0x7F) << shift
        shift += 7
    return 0, 0


def _decode_string(read: ReadFn, progs: Sequence[Seg], addr: int) -> tuple[str, int]:
    b = _read_data(read, progs, addr, 10)
    length, n = _uvarint(b)
    if n <= 0:
        raise NotGo("bad varint length in the build information")
    addr += n
    if length > MAX_STRING:
        raise NotGo(f"build information string of {length} bytes is implausible")
    data = _read_data(read, progs, addr, length) if length else b""
    if len(data) < length:
        raise NotGo("build information string runs past its segment")
    return data.decode("utf-8", "replace"), addr + length


def _read_go_string(read: ReadFn, progs: Sequence[Seg], ptr: struct.Struct, addr: int) -> str:
    try:
        hdr = _read_data(read, progs, addr, 2 * ptr.size)
        if len(hdr) < 2 * ptr.size:
            return ""
        data_addr = ptr.unpack_from(hdr, 0)[0]
        length = ptr.unpack_from(hdr, ptr.size)[0]
        if length > MAX_STRING:
            return ""
        data = _read_data(read, progs, data_addr, length) if length else b""
    except NotGo:
        return ""
    return data.decode("utf-8", "replace") if len(data) >= length else ""


def read_raw(
    scan: ReadFn,
    read: ReadFn,
    sections: Sequence[Sec],
    progs: Sequence[Seg],
    *,
    search_limit: int = 16 << 20,
) -> tuple[str, str]:
    """(Go version, module info with its framing stripped) or NotGo with the reason.

    ``scan`` is used for the search (its bytes are not evidence), ``read`` for
    the header and strings. Both take (file offset, size) and may return less.
    """
    addr, size = _data_start(sections, progs)
    if size == 0:
        raise NotGo("no .go.buildinfo section and no writable data segment")
    at = _search(scan, progs, addr, size, search_limit)
    header = _read_data(read, progs, at, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise NotGo("build information header cut short")
    flags = header[15]
    if flags & 0x2:
        vers, nxt = _decode_string(read, progs, at + HEADER_SIZE)
        mod, _ = _decode_string(read, progs, nxt)
    else:
        ptr_size = header[14]
        order = ">" if flags & 0x1 else "<"
        if ptr_size not in (4, 8):
            raise NotGo(f"pointer size {ptr_size} in the build information header")
        ptr = struct.Struct(order + ("I" if ptr_size == 4 else "Q"))
        vers = _read_go_string(read, progs, ptr, ptr.unpack_from(header, 16)[0])
        mod = _read_go_string(read, progs, ptr, ptr.unpack_from(header, 16 + ptr_size)[0])
    if not vers:
        raise NotGo("empty Go version in the build information")
    # strip the module framing (cmd/go's 16-byte sentinels) or there is none
    mod = mod[16:-16] if len(mod) >= 33 and mod[-17] == "\n" else ""
    return vers, mod


# -- module information -------------------------------------------------------------
def parse_modinfo(go_version: str, data: str) -> GoBuildInfo:
    """runtime/debug.ParseBuildInfo. NotGo (with the line number) on a bad line."""
    bi = GoBuildInfo(go_version=go_version)
    last: GoModule | None = None
    lines = data.split("\n")
    # Go stops at the last newline: a trailing partial line is ignored
    for num, line in enumerate(lines[:-1], 1):
        try:
            if line.startswith("path\t"):
                bi.path = line[5:]
            elif line.startswith("mod\t"):
                bi.main = last = _module(line[4:].split("\t"))
            elif line.startswith("dep\t"):
                last = _module(line[4:].split("\t"))
                bi.deps.append(last)
            elif line.startswith("=>\t"):
                elem = line[3:].split("\t")
                if len(elem) != 3:
                    raise ValueError(f"expected 3 columns for replacement; got {len(elem)}")
                if last is None:
                    raise ValueError("replacement with no module on previous line")
                last.replace = GoModule(elem[0], elem[1], elem[2])
                last = None
            elif line.startswith("build\t"):
                bi.settings.append(_build_line(line[6:]))
        except ValueError as err:
            raise NotGo(f"could not parse Go build info: line {num}: {err}") from None
    return bi


def _module(elem: list[str]) -> GoModule:
    if len(elem) not in (2, 3):
        raise ValueError(f"expected 2 or 3 columns; got {len(elem)}")
    return GoModule(elem[0], elem[1], elem[2] if len(elem) == 3 else "")


def _build_line(kv: str) -> tuple[str, str]:
    if not kv:
        raise ValueError("build line missing '='")
    if kv[0] == "=":
        raise ValueError("build line with missing key")
    if kv[0] in '`"':
        raw_key, rest = _quoted_prefix(kv)
        if not rest.startswith("="):
            raise ValueError("build line missing '=' after quoted key")
        key, raw_value = _go_unquote(raw_key), rest[1:]
    else:
        key, sep, raw_value = kv.partition("=")
        if not sep:
            raise ValueError("build line missing '=' after key")
        if _quote_key(key):
            raise ValueError(f"unquoted key {key!r} must be quoted")
    value = raw_value
    if raw_value and raw_value[0] in '`"':
        value = _go_unquote(raw_value)
    elif _quote_value(raw_value):
        raise ValueError(f"unquoted value {raw_value!r} must be quoted")
    return key, value


def _quote_key(key: str) -> bool:
    return not key or any(c in key for c in '= \t\r\n"`')


def _quote_value(value: str) -> bool:
    return any(c in value for c in ' \t\r\n"`')


_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESC.update({"\\": "\\", "'": "'", '"': '"'})


def _quoted_prefix(s: str) -> tuple[str, str]:
    q = s[0]
    i = 1
    while i < len(s):
        c = s[i]
        if q == '"' and c == "\\":
            i += 2
            continue
        if c == q:
            return s[: i + 1], s[i + 1 :]
        i += 1
    raise ValueError("invalid quoted key in build line")


def _go_unquote(s: str) -> str:
    """strconv.Unquote for the escapes strconv.Quote produces."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in '`"':
        raise ValueError(f"invalid quoted string {s!r}")
    body = s[1:-1]
    if s[0] == "`":
        return body
    out: list[str] = []
    raw = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            raw += c.encode()
            i += 1
            continue
        e = body[i + 1 : i + 2]
        if e in _ESC:
            raw += _ESC[e].encode()
            i += 2
        elif e == "x":
            raw.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif e in ("u", "U"):
            n = 4 if e == "u" else 8
            raw += chr(int(body[i + 2 : i + 2 + n], 16)).encode()
            i += 2 + n
        elif e.isdigit():
            raw.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise ValueError(f"bad escape in {s!r}")
    out.append(raw.decode("utf-8", "replace"))
    return "".join(out)


def _go_quote(s: str) -> str:
    """strconv.Quote (printable runes kept, the rest escaped)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch in "\a\b\f\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch == "\ufffd" or not ch.isprintable():
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_buildinfo(
    scan: ReadFn, read: ReadFn, sections: Sequence[Sec], progs: Sequence[Seg]
) -> GoBuildInfo:
    """The whole build information of a Go binary (NotGo when there is none)."""
    vers, mod = read_raw(scan, read, sections, progs)
    return parse_modinfo(vers, mod)
