"""The indexing process of a timeline build: ``python -m forensics.timeline.indexer STORE``.

Reads the path of each finished chunk of records (one a line) on stdin until
it closes, assembles them into the store (:func:`forensics.timeline.store.assemble`)
and prints what it found as one JSON line. ``--live`` after STORE: a store read while it
grows (see :func:`~forensics.timeline.store.assemble`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from forensics.timeline.store import assemble


def _chunks() -> Iterator[Path]:
    for line in sys.stdin:
        if line.strip():
            yield Path(line.rstrip("\n"))


def main(argv: list[str]) -> int:
    live = argv[2:] == ["--live"]  # read while it grows (see assemble)
    if len(argv) != 2 and not live:
        sys.stderr.write("usage: python -m forensics.timeline.indexer STORE [--live]\n")
        return 2
    result = assemble(Path(argv[1]), _chunks(), live=live)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
