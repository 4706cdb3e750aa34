"""forensics.memory.view: pages of a core streamed from a real bundle file, and a hex
and strings rendering that never lets a target's bytes through as control codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forensics.bundle.writer import BundleWriter
from forensics.errors import BundleError
from forensics.memory.view import MAX_PAGE, CoreCursor, hexdump, stored_regions, strings


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, bytes]:
    body = os.urandom(5 << 20)
    path = tmp_path / "b.exv"
    with path.open("wb") as raw:
        w = BundleWriter(raw)
        w.add_bytes("memory/7.core", body)
        w.add_bytes("memory/8.core", b"other")
        w.finish({})
    return path, body


def test_cursor_reads_pages_forward_on_one_stream_and_reopens_to_go_back(
    bundle: tuple[Path, bytes],
) -> None:
    path, body = bundle
    c = CoreCursor(path, "memory/7.core")
    try:
        assert c.size == len(body)
        for off in (0, 4096, (3 << 20) + 17, len(body) - 100):
            assert c.read(off, 2048) == body[off : off + 2048]
        assert c.opens == 1  # forward only: one stream, never the whole member
        assert c.read(10, 50) == body[10:60]
        assert c.opens == 2
        assert len(c.read(0, 10 << 20)) == MAX_PAGE  # a page is bounded
        assert c.read(len(body) + 5, 10) == b""
    finally:
        c.close()


def test_cursor_on_a_member_not_in_the_bundle_is_a_clear_error(
    bundle: tuple[Path, bytes],
) -> None:
    c = CoreCursor(bundle[0], "memory/9.core")
    with pytest.raises(BundleError, match=r"memory/9\.core is not in the bundle"):
        c.read(0, 10)


def test_hexdump_and_strings_show_only_hex_and_printable_ascii() -> None:
    data = b"\x1b[2J\x1b]0;owned\x07[bold red]X[/]\x9b\x00secret-token\xff"
    lines = hexdump(data, 0x7F0000001000)
    assert lines[0].startswith("00007f0000001000  1b 5b 32 4a")
    joined = "\n".join(lines)
    assert all(0x20 <= ord(ch) < 0x7F for ch in joined.replace("\n", ""))
    assert "|.[2J.]0;owned.[b|" in joined and "|old red]X[/]..se|" in joined
    # markup-looking text is a string like any other (the screen shows it through safe())
    assert strings(data, 0x1000) == [
        (0x1005, "]0;owned"),
        (0x100E, "[bold red]X[/]"),
        (0x101E, "secret-token"),
    ]
    assert strings(data, 0x1000, min_len=3)[0] == (0x1001, "[2J")


def test_stored_regions_keeps_only_regions_with_bytes_and_sane_fields() -> None:
    mem = {
        "regions": [
            {"start": 1, "stored": 4096, "core_offset": 4096},
            {"start": 2, "stored": 0, "core_offset": 8192},
            {"start": 3, "stored": "4096", "core_offset": 8192},
            "junk",
            {"start": 4, "stored": 10, "core_offset": None},
        ]
    }
    assert [r["start"] for r in stored_regions(mem)] == [1]
