"""fs.stored_fields: one pass giving exactly file_message and dumps(display_fields)."""

from __future__ import annotations

from typing import Any

import pytest

from forensics.timeline.events import Flag
from forensics.timeline.fs import display_fields, dumps, file_message, stored_fields

RECORDS: list[dict[str, Any]] = [
    {"path": "/etc/passwd", "type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": 148,
     "inode": 12, "nlink": 1, "sha256": "ab" * 32, "kind": "fs_entry"},
    {"path": "/usr", "type": "dir", "mode": "0755", "uid": 0, "gid": 0, "size": 4096},
    {"path": "/l", "type": "symlink", "link_target": 'é"\\\n\x00', "mode": True, "uid": -1,
     "gid": 1 << 64, "size": "3", "note": "n", "read_error": "E", "path_b64": "AA=="},
    {"path": "/y", "type": "", "link_target": "", "size": 0, "uid": 0, "gid": None,
     "nlink": False, "inode": (1 << 63) - 1},
    {"path": "/w", "type": "whiteout", "size": 1},
    {"path": "/v"},
    {"path": "/u", "type": "file", "size": -(1 << 63), "sha256": "\u00e9x", "uid": 1.5},
]  # fmt: skip


@pytest.mark.parametrize("rec", RECORDS)
@pytest.mark.parametrize("flags", [0, 1, 2, 3])
def test_same_text_as_the_dict_path(rec: dict[str, Any], flags: int) -> None:
    fields = display_fields(rec)
    assert stored_fields(rec, rec["path"], flags) == (
        file_message(rec["path"], fields, flags),
        dumps(fields),
    )


def test_a_plain_file() -> None:
    msg, attrs = stored_fields(RECORDS[0], "/etc/passwd", 0)
    assert msg == "/etc/passwd (file, 148 bytes, 0644, 0:0)"
    assert attrs.startswith('{"gid":0,"inode":12,"mode":"0644","nlink":1,"sha256":')
    assert attrs.endswith('"size":148,"type":"file","uid":0}')


def test_bad_values_are_left_out() -> None:
    msg, attrs = stored_fields(RECORDS[2], "/l", int(Flag.CHANGED))
    assert '"mode"' not in attrs and '"gid"' not in attrs and '"size"' not in attrs
    assert msg.endswith("(symlink, -1:?) [changed since start]")


def test_bodyfile_row_line_is_bodyfile_line() -> None:
    from forensics.timeline.export import bodyfile_line, bodyfile_row_line  # noqa: PLC0415

    for rec in RECORDS:
        fields = display_fields(rec)
        times = {"atime": -1_500_000_000, "mtime": 10**18 + 7, "ctime": None, "btime": 0}
        full = {**fields, "path": rec["path"], **times}
        row = (
            rec["path"], *(fields.get(k) for k in
            ("path_b64", "type", "link_target", "inode", "mode", "uid", "gid", "size")),
            times["atime"], times["mtime"], times["ctime"], times["btime"],
        )  # fmt: skip
        assert bodyfile_row_line(row) == bodyfile_line(full)
