"""The process writing the second half of a large export (:mod:`.exportpart`).

``python -m forensics.timeline.exportchild STORE FORMAT HOST TS ID OUT``
``python -m forensics.timeline.exportchild --case SPEC`` (a case's, see
:func:`forensics.timeline.case.write_part`)
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--case":
        from forensics.timeline.case import write_part  # noqa: PLC0415

        sys.stdout.write(f"{write_part(argv[2])}\n")
        return 0
    if len(argv) != 7:
        sys.stderr.write(
            "usage: python -m forensics.timeline.exportchild STORE FMT HOST TS ID OUT\n"
        )
        return 2
    from forensics.timeline.export import part_lines  # noqa: PLC0415
    from forensics.timeline.query import Query, Timeline  # noqa: PLC0415

    store, fmt, host, ts, eid, out = argv[1:]
    tl = Timeline(store)
    try:
        tl.con.execute("PRAGMA mmap_size = 0")
        with open(out, "w", encoding="utf-8", newline="", errors="surrogateescape") as f:
            n = part_lines(tl, Query(), fmt, f, host, (">=", (int(ts), int(eid))))
    finally:
        tl.close()
    sys.stdout.write(f"{n}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
