"""Where a capture's parts go when the store stops answering mid-upload.

The parts already in the store stay there (an unfinished multipart upload
cannot be read back, so they cannot be brought home); every part the store did
not take is written, whole and under its own number, into
``DIR/NAME.partial.parts/NNNNN.part`` (``forensics.atomic``: a name only ever
holds a whole part). When the bundle is sealed the store is tried again: if it
answers, those parts are uploaded and the capture ends as if nothing happened;
if not, ``upload.json`` beside them says which upload holds the others, so
that nothing captured is lost and the bundle can be finished later.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from forensics.atomic import write_atomic
from forensics.errors import OutputError

PARTS_SUFFIX = ".parts"
UPLOAD_FILE = "upload.json"
FALLBACK_ENV = "EXUVIA_FALLBACK_DIR"


def fallback_dir(option: Path | None) -> Path:
    """``--fallback-dir``, else ``$EXUVIA_FALLBACK_DIR``, else the current directory."""
    if option is not None:
        return option
    env = os.environ.get(FALLBACK_ENV)
    return Path(env) if env else Path.cwd()


class LocalParts:
    """Parts kept on local disk, by part number; the directory is made on first use."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / (name + PARTS_SUFFIX)
        self._made = False

    def refuse_existing(self) -> None:
        if os.path.lexists(self.path):
            raise OutputError(f"{self.path} already exists; refusing to overwrite evidence")

    def _part(self, number: int) -> Path:
        return self.path / f"{number:05d}.part"

    def put(self, number: int, data: bytes | bytearray) -> None:
        if not self._made:
            try:
                self.path.mkdir(mode=0o750)
            except OSError as err:
                raise OutputError(f"cannot create {self.path}: {err.strerror}") from None
            self._made = True
        write_atomic(self._part(number), data, what=f"part {number} in {self.path}")

    @property
    def used(self) -> bool:
        return self._made

    def numbers(self) -> list[int]:
        if not self._made:
            return []
        return sorted(int(n.split(".")[0]) for n in os.listdir(self.path) if n.endswith(".part"))

    def read(self, number: int) -> bytes:
        return self._part(number).read_bytes()

    def remove(self, number: int) -> None:
        self._part(number).unlink()

    def remove_dir(self) -> None:
        """Once every part is in the store (the directory is then empty)."""
        if self._made:
            self.path.rmdir()

    def describe(self, doc: dict[str, Any]) -> Path:
        path = self.path / UPLOAD_FILE
        write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n",
                     what=str(path))  # fmt: skip
        return path
