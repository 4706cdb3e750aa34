"""The reader process's record lines are the bytes jsonfast.dumps gives for the
same record (collectors/fs/record_line.py): odd names, every key, random records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.fs.acquire import FilesystemAcquirer
from collectors.fs.policy import CopyPolicy
from collectors.fs.record_line import _KINDS, LineEncoder
from forensics.bundle import BundleWriter
from forensics.jsonfast import dumps
from forensics.records import Record, RecordLine
from forensics.textsafe import bytes_field

ODD_NAMES = [
    b"plain",
    b"new\nline",
    b'quote"and\\backslash',
    b"tab\there\rcr",
    b"\x00nul?",  # not a possible file name, but a possible field value
    b"\x01\x1f\x7f control",
    b"caf\xc3\xa9 \xe2\x80\xae bidi",
    b"\xff\xfe not utf-8",
    b"\xed\xa0\x80 surrogate bytes",
    b"emoji \xf0\x9f\x90\x8d",
    b"percent %d %s %%",
    b"{json}:[1,2]",
    b"x" * 5000,
    "\u2028\u2029 separators".encode(),
]


def _same(data: dict[str, Any], kind: str = "fs_entry") -> None:
    enc = LineEncoder(kind)
    want = dumps({"kind": kind, **data}) + b"\n"
    assert enc(data) == want
    assert enc(data) == want  # the compiled shape, the second time


def _file(path: bytes, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = bytes_field("path", path)
    data.update(type="file", mode="0644", uid=0, gid=1000, size=12, inode=99, nlink=1)
    data.update(dev="254:0", mtime_ns=1_796_660_004_179_341_742, atime_ns=0, ctime_ns=-1)
    data.update(btime_ns=None, changed=None, sha256="ab" * 32, hashed_bytes=12)
    data.update(extra)
    return data


def test_odd_names_in_every_quoted_field() -> None:
    for name in ODD_NAMES:
        _same(_file(b"/d/" + name, member="files/d/" + name.decode("utf-8", "replace")))
        link: dict[str, Any] = _file(b"/l")
        link.update(bytes_field("link_target", name))
        _same(link)
        hard: dict[str, Any] = _file(b"/h")
        hard.update(bytes_field("hardlink_of", name))
        _same(hard)
        _same(_file(b"/e", read_error=name.decode("utf-8", "replace")))


def test_every_key_and_the_general_encoder_for_anything_else() -> None:
    every = _file(b"/a", member="files/a", changed=True, btime_ns=5)
    every.update(rdev="1:3", setid=True, atime_preserved=False, secret=True)
    every.update(changed_during_read=True, sparse=True, allocated_bytes=4096)
    every.update(bytes_field("link_target", b"\xff"), **bytes_field("hardlink_of", b"\xfe"))
    every.update(read_error="Permission denied")
    assert set(every) | {"path_b64"} >= set(_KINDS) - {"path_b64"}
    _same(every)
    _same(_file(b"/a", yara=[{"rule": "x"}]))  # a key it does not know
    _same(_file(b"/a", uid="0"))  # a value of another type than its key's
    _same(_file(b"/a", changed="yes"))
    _same({**_file(b"/a"), "path": 7})
    _same(_file(b"/a", btime_ns="never"))
    _same({"path": "/p"}, kind='odd "kind" %s')


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "d": st.integers(min_value=-(2**63), max_value=2**64),
    "n": st.none() | st.integers(min_value=-(2**63), max_value=2**64),
    "b": st.none() | st.booleans(),
    "s": st.sampled_from(["0644", "254:0", "ab" * 32, "file", "/w==", ""]),
    "q": st.text(),
}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_records(data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.sampled_from(sorted(_KINDS)), min_size=1, unique=True))
    record = {k: data.draw(_VALUES[_KINDS[k]]) for k in keys}
    _same(record)


def test_a_real_walk_gives_the_same_lines_both_ways(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for i, name in enumerate([*ODD_NAMES[:-2], b"long" * 60]):
        safe = name.replace(b"/", b"_").replace(b"\x00", b"0")
        path = os.path.join(os.fsencode(root), safe)
        with open(path, "wb") as f:
            f.write(b"content %d\n" % i)
        os.symlink(safe, path + b".link")
    os.mkfifo(root / "fifo")
    os.link(root / "plain", root / "plain.hard")
    with (tmp_path / "b.exv").open("wb") as raw:
        w = BundleWriter(raw, compress="none")
        acq = FilesystemAcquirer(w, CopyPolicy("all"))
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            records = [r for r in acq.run(fd, frozenset(), None) if isinstance(r, Record)]
        finally:
            os.close(fd)
        w.finish({"complete": True})
    enc = LineEncoder("fs_entry")
    assert len(records) > 25
    for rec in records:
        line = enc(rec.data)
        assert line == dumps({"kind": rec.kind, **rec.data}) + b"\n"
        assert RecordLine(rec.kind, line).data == rec.data
