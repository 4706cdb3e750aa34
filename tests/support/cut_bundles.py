"""A bundle written with record chunks (format 2.0), cut as a kill -9 leaves it."""

from __future__ import annotations

import os
from pathlib import Path

from forensics.bundle import BundleWriter
from forensics.bundle.chunks import RecordChunks


def cut_bundle(d: Path, frac: float = 0.6, compress: str = "zstd") -> Path:
    whole = d / "whole.exv"
    with whole.open("wb") as f:
        w = BundleWriter(f, compress=compress, checkpoint_every_members=5,
                         header={"tool": "exuvia test", "target": "runc://x"})  # fmt: skip
        w.add_bytes("artifacts/target.json", b'{"uri":"runc://x","runtime":"runc"}\n')
        chunks = RecordChunks(w, "filesystem", max_records=40)
        for i in range(800):
            chunks.add(b'{"kind":"fs_entry","path":"/f%d","mtime_ns":%d}\n' % (i, 10**18 + i))
            if i % 25 == 0:
                w.add_bytes(f"files/f{i}", os.urandom(1500))
        chunks.close()
        w.finish({"complete": True, "incomplete_reason": ""})
    data = whole.read_bytes()
    cut = d / "k.exv.partial"
    cut.write_bytes(data[: int(len(data) * frac)])
    return cut
