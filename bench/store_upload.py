"""Benchmark: one multipart upload through collectors/store/upload.py's writer to a
real versitygw on 127.0.0.1, in the two request shapes, alternating, with the
CPU seconds of this client process and of the server for each:

  signed:   no part checksum; SigV4 signs the payload's SHA-256 (the shape over
            plain http before 2026-12-07)
  checksum: x-amz-checksum-sha256 on every part (signed), payload UNSIGNED-PAYLOAD
            (collectors/store/client.py; the shape now, over http and https)

and then the seal copy of the uploaded object (collectors/store/copy.py) timed
alone. Random data (incompressible, like a zstd bundle), 8 MiB parts, two threads.

    .venv/bin/python bench/store_upload.py [--mib 800] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.store.client import Store
from collectors.store.copy import copy_version
from collectors.store.upload import MultipartWriter
from tests.support.s3server import S3Server, versitygw_binary


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _server_cpu(server: S3Server) -> float:
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload(store: Store, server: S3Server, key: str, data: bytes, checksum: bool) -> tuple[
    float, float, float, str | None
]:  # fmt: skip
    c0, s0, t0 = _self_cpu(), _server_cpu(server), time.perf_counter()
    w = MultipartWriter(store, "bench", key, part_checksums=checksum, track_sha256=False)
    view = memoryview(data)
    for i in range(0, len(data), 1 << 20):  # the bundle writer's writes are ~1 MiB
        w.write(view[i : i + (1 << 20)])
    done = w.complete()
    return (time.perf_counter() - t0, _self_cpu() - c0, _server_cpu(server) - s0,
            done.get("VersionId"))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=800)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    binary = versitygw_binary()
    if binary is None:
        raise SystemExit("Go is needed to build versitygw")
    work = Path(tempfile.mkdtemp(prefix="exuvia-upload-bench-"))
    server = S3Server(binary, work / "s3")
    server.start()
    try:
        server.make_bucket("bench", lock=True)
        os.environ.update(server.env())
        store = Store(endpoint_url=server.endpoint)
        data = os.urandom(args.mib << 20)
        print(f"{args.mib} MiB, 8 MiB parts; {os.getloadavg()[0]:.2f} load (1 min) before")
        res: dict[str, list[tuple[float, float, float]]] = {"signed": [], "checksum": []}
        copies: list[tuple[float, float]] = []
        for i in range(args.runs):
            order = ["signed", "checksum"] if i % 2 == 0 else ["checksum", "signed"]
            for mode in order:
                key = f"run{i}-{mode}.bin"
                wall, cpu, srv, version = upload(store, server, key, data, mode == "checksum")
                res[mode].append((wall, cpu, srv))
                print(f"run {i} {mode}: wall {wall:.2f}s, client CPU {cpu:.2f}s, "
                      f"server CPU {srv:.2f}s", flush=True)  # fmt: skip
                if mode == "checksum":
                    s0, t0 = _server_cpu(server), time.perf_counter()
                    copy_version(store, "bench", src_key=key, src_version=version, size=len(data),
                                 dst_key=key + ".sealed", create_args={})  # fmt: skip
                    copies.append((time.perf_counter() - t0, _server_cpu(server) - s0))
                    print(f"run {i} seal copy: wall {copies[-1][0]:.2f}s, server CPU "
                          f"{copies[-1][1]:.2f}s", flush=True)  # fmt: skip
        for mode, runs in res.items():
            w, c, s = (statistics.median(r[k] for r in runs) for k in range(3))
            print(f"{mode}: median wall {w:.2f}s, client CPU {c:.2f}s, server CPU {s:.2f}s")
        print(f"seal copy: median wall {statistics.median(c[0] for c in copies):.2f}s, "
              f"server CPU {statistics.median(c[1] for c in copies):.2f}s")  # fmt: skip
        print(f"load (1/5/15 min) after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
