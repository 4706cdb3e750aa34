"""Which package accounts for each executable, and what no metadata accounts for.

An executable is claimed by a package when the package lists its path (after
following the target's directory symlinks, e.g. usrmerge's /lib -> usr/lib):
"path+hash" when the listed digest (dpkg MD5, apk SHA-1, rpm/Python SHA-256)
matches the file, "path" when the metadata has no digest for it; a listed digest
that does not match makes the file "modified", not accounted for. A package
whose directory holds it (npm) claims it by "path". Any package listing the
same digest at another path claims it by "hash". Build information embedded in
the binary itself (Go, cargo-auditable, .note.package) claims it "embedded".
"""

from __future__ import annotations

import posixpath
from collections import defaultdict

from forensics.inventory.model import Claim, Coverage, Executable, FileClaim, Package
from forensics.inventory.paths import PathResolver


def _digest(exe: Executable, algo: str) -> str | None:
    return {"md5": exe.md5, "sha1": exe.sha1, "sha256": exe.sha256}.get(algo)


def _lookup_path(exe: Executable) -> str | None:
    if exe.memfd:
        return None
    return exe.path.removesuffix(" (deleted)")


def attribute(
    executables: list[Executable], packages: list[Package], resolver: PathResolver
) -> None:
    """Add path, hash and directory claims to each executable."""
    by_path: dict[str, list[tuple[str, FileClaim]]] = defaultdict(list)
    by_dir: dict[str, str] = {}
    by_hash: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pkg in packages:
        for fc in pkg.files:
            if fc.path.endswith("/"):
                by_dir[resolver.resolve(fc.path.rstrip("/") or "/")] = pkg.ref
                continue
            by_path[resolver.resolve(fc.path)].append((pkg.ref, fc))
            if fc.algo and fc.digest:
                by_hash[(fc.algo, fc.digest)].append(pkg.ref)
    for exe in executables:
        have = {c.ref for c in exe.claims}
        path = _lookup_path(exe)
        if path is not None and exe.origin == "filesystem":
            canon = resolver.resolve(path)
            for ref, fc in by_path.get(canon, []):
                if ref in have:
                    continue
                mine = _digest(exe, fc.algo) if fc.algo else None
                if fc.algo and fc.digest and mine is not None:
                    if mine == fc.digest:
                        exe.claims.append(Claim(ref, "path+hash", f"{fc.algo} matches"))
                        have.add(ref)
                    elif ref not in exe.hash_mismatch:
                        exe.hash_mismatch.append(ref)
                else:
                    exe.claims.append(Claim(ref, "path", "listed by the package"))
                    have.add(ref)
            d = posixpath.dirname(canon)
            while d and d != "/":
                owner = by_dir.get(d)
                if owner is not None:
                    if owner not in have:
                        exe.claims.append(Claim(owner, "path", f"inside the package directory {d}"))
                        have.add(owner)
                    break
                d = posixpath.dirname(d)
        for algo in ("sha256", "sha1", "md5"):
            mine = _digest(exe, algo)
            if mine is None:
                continue
            for ref in by_hash.get((algo, mine), []):
                if ref not in have and ref not in exe.hash_mismatch:
                    exe.claims.append(Claim(ref, "hash", f"{algo} listed by the package"))
                    have.add(ref)


def summarize(executables: list[Executable]) -> Coverage:
    counted = [e for e in executables if e.counted]
    return Coverage(
        total=len(counted),
        accounted=sum(1 for e in counted if e.accounted),
        unaccounted=[e.path for e in counted if not e.accounted],
        added_after_start=[e.path for e in executables if e.changed or e.added_inferred or e.memfd],
        modified=[e.path for e in executables if e.hash_mismatch and not e.accounted],
        unparseable=[f"{e.path}: {e.unparseable}" for e in executables if e.unparseable],
    )
