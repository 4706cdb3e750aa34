"""Benchmark: software inventory (`exuvia sbom`) of a 50,000-file snapshot; target <= 10 s.

Writes a bundle shaped like a capture of a full Debian-like image, from this
machine's own data: 50,000 filesystem records; this system's dpkg database
(status and every info/*.list and *.md5sums); the dist-info of every Python
distribution in the venv; ELF extracts of up to --elves real executables and
shared objects (made by the capture's own extractor), some of them copied whole
instead; a few processes. Then times, from the bundle:

  inventory:  build_inventory(bundle)  (read, parse, analyse every ELF, coverage)
  cyclonedx / spdx: serialising it

and, for the capture side, the extractor's cost per ELF file (with and without
the MD5/SHA-1 of the whole file).

    .venv/bin/python bench/inventory_speed.py [--files 50000] [--elves 1000]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter
from forensics.inventory.analyze import build_inventory
from forensics.inventory.cyclonedx import to_cyclonedx
from forensics.inventory.elfscan import extract
from forensics.inventory.spdx import to_spdx


def elves(limit: int) -> list[str]:
    out: list[str] = []
    pats = [
        "/usr/bin/*",
        "/usr/sbin/*",
        "/usr/lib/x86_64-linux-gnu/*.so*",
        "/usr/lib/x86_64-linux-gnu/*/*.so*",
        "/usr/local/go/pkg/tool/*/*",
    ]
    for pat in pats:
        for p in sorted(glob.glob(pat)):
            try:
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or st.st_size < 64:
                    continue
                with open(p, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        out.append(p)
            except OSError:
                continue
            if len(out) >= limit:
                return out
    return out


def _extract(path: str, digests: bool = True) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return extract(lambda o, n: os.pread(fd, n, o), os.fstat(fd).st_size, digests=digests)
    finally:
        os.close(fd)


def write_bundle(out: Path, nfiles: int, nelves: int) -> dict[str, Any]:
    raw = out.open("wb")
    w = BundleWriter(raw, compress="zstd", threads=2)
    fs: list[dict[str, Any]] = []
    counts = {"elf": 0, "copied_elf": 0, "metadata": 0}

    def rec(path: str, size: int, **kw: Any) -> dict[str, Any]:
        r = {
            "kind": "fs_entry",
            "path": path,
            "type": "file",
            "mode": "0644",
            "size": size,
            "sha256": hashlib.sha256(path.encode()).hexdigest(),
            "changed": False,
        }
        r.update(kw)
        fs.append(r)
        return r

    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/sbin", "usr/sbin")):
        fs.append({"kind": "fs_entry", "path": link, "type": "symlink", "link_target": target})
    meta = ["/var/lib/dpkg/status", "/etc/os-release", "/usr/lib/os-release"]
    meta += sorted(glob.glob("/var/lib/dpkg/info/*.list")) + sorted(
        glob.glob("/var/lib/dpkg/info/*.md5sums")
    )
    venv_site = (
        Path(sys.prefix)
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
    )
    for dist in sorted(venv_site.glob("*.dist-info")):
        meta += [str(dist / "METADATA"), str(dist / "RECORD")]
    for p in meta:
        if not os.path.isfile(p):
            continue
        data = Path(p).read_bytes()
        r = rec(p, len(data), member=file_member_name(p.encode()))
        w.add_bytes(r["member"], data)
        counts["metadata"] += 1
    for i, p in enumerate(elves(nelves)):
        data_size = os.path.getsize(p)
        real = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        if i % 50 == 0 and data_size < 4 << 20:  # a few copied whole, as `changed` ones are
            r = rec(p, data_size, sha256=real, mode="0755", member=file_member_name(p.encode()))
            w.add_bytes(r["member"], Path(p).read_bytes())
            counts["copied_elf"] += 1
        else:
            rec(p, data_size, sha256=real, mode="0755")
            w.add_bytes("elf" + p, _extract(p))
            counts["elf"] += 1
    n = 0
    while len(fs) < nfiles:
        rec(f"/srv/data/d{n // 500:04d}/f{n:06d}.dat", 1000 + n % 5000)
        n += 1
    procs = [
        {"kind": "process", "pid": 1 + i, "exe": fs[-1 - i]["path"], "maps": []} for i in range(5)
    ]
    w.add_bytes(
        "artifacts/processes.jsonl", b"".join(json.dumps(p).encode() + b"\n" for p in procs)
    )
    w.add_bytes("artifacts/filesystem.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in fs))
    w.finish({"complete": True})
    raw.close()
    counts["fs_records"] = len(fs)
    return counts


def capture_side(paths: list[str]) -> None:
    total = sum(os.path.getsize(p) for p in paths)
    for digests in (False, True):
        t0 = time.perf_counter()
        for p in paths:
            _extract(p, digests)
        dt = time.perf_counter() - t0
        label = "with MD5/SHA-1" if digests else "headers+entropy only"
        print(
            f"  capture-side extract ({label}): {len(paths)} files, {total / 1e6:.0f} MB: "
            f"{dt:.2f} s ({dt / len(paths) * 1000:.2f} ms/file)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--elves", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "inv.exv"
        t0 = time.perf_counter()
        counts = write_bundle(bundle, args.files, args.elves)
        print(
            f"bundle: {bundle.stat().st_size / 1e6:.1f} MB, {counts} (written in "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        t0 = time.perf_counter()
        inv = build_inventory(bundle)
        t_inv = time.perf_counter() - t0
        t0 = time.perf_counter()
        cdx = json.dumps(to_cyclonedx(inv))
        t_cdx = time.perf_counter() - t0
        t0 = time.perf_counter()
        spdx = json.dumps(to_spdx(inv))
        t_spdx = time.perf_counter() - t0
        cov = inv.coverage
        print(
            f"inventory: {t_inv:.2f} s  (target <= 10 s: {'OK' if t_inv <= 10 else 'OVER'}; "
            f"ratio {t_inv / 10:.2f})"
        )
        print(
            f"  {len(inv.packages)} packages, {len(inv.executables)} executables, "
            f"{cov.accounted}/{cov.total} accounted ({cov.percent}%)"
        )
        print(
            f"  cyclonedx: {t_cdx:.2f} s ({len(cdx) / 1e6:.1f} MB), spdx: {t_spdx:.2f} s "
            f"({len(spdx) / 1e6:.1f} MB)"
        )
        capture_side(elves(min(args.elves, 300)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
