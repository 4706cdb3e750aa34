"""Checks that make `verify` notice a change to *any* byte of a bundle.

Member hashes cover member contents only. The rest of the file — tar headers'
unchecked bytes, the zero padding after each member, zstd framing, the
manifest's own descriptive fields and the end-of-archive blocks — is covered
here (format 1.1, docs/bundle-format.md "Integrity"):

* ``file_prefix`` in every checkpoint and in the manifest: the length and
  SHA-256 of the output file up to the writer's previous sync point. The
  manifest's covers every byte before the manifest's own header.
* ``self_check``, the manifest's last field: SHA-256 of the manifest's bytes
  before it.
* the tail: after the manifest's prefix, the file must be exactly the bytes the
  writer emits for the manifest, its signature and the end blocks — in a zstd
  bundle as one frame of raw (stored) blocks, which have a single encoding,
  unlike entropy-coded data whose spare bits could change without changing
  what it decompresses to.
* the custody log inside the bundle names member hashes; they must match.
* the sidecar ``<bundle>.custody.jsonl``, when present, seals the file's and
  the manifest's SHA-256 (and the signing key's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from forensics.bundle.format import MANIFEST_NAME, SELF_CHECK_KEY, SIGNATURE_NAME
from forensics.bundle.sink import stored_blocks, stored_frame_header
from forensics.bundle.writer import BLOCK, member_header

MAX_SIDECAR = 64 << 20
_SELF_CHECK = re.compile(rb',"' + SELF_CHECK_KEY.encode() + rb'":"([0-9a-f]{64})"\}\n\Z')


def has_self_check(content: bytes) -> bool:
    """Whether the manifest's end looks like it carries a ``self_check`` field."""
    return b'"' + SELF_CHECK_KEY.encode() + b'"' in content[-128:]


def check_self(content: bytes) -> str | None:
    """The manifest's ``self_check``: None when it holds, else the problem."""
    window = content[-128:]
    m = _SELF_CHECK.search(window)
    if m is None:
        return "altered: manifest.json (its self_check field is missing or malformed)"
    cut = len(content) - len(window) + m.start()
    if hashlib.sha256(content[:cut]).hexdigest() != m.group(1).decode():
        return "altered: manifest.json (its bytes do not match its self_check)"
    return None


def prefix_claim(doc: Any) -> tuple[int, str, int] | None:
    """``file_prefix`` of a checkpoint or manifest as (bytes, sha256, tar_bytes)."""
    fp = doc.get("file_prefix") if isinstance(doc, dict) else None
    if not isinstance(fp, dict):
        return None
    n, sha, tar = fp.get("bytes"), fp.get("sha256"), fp.get("tar_bytes")
    if isinstance(n, int) and n >= 0 and isinstance(sha, str) and isinstance(tar, int):
        return n, sha, tar
    return None


def hash_file(raw: BinaryIO, claims: Iterable[tuple[int, str, str]]) -> tuple[str, int, list[str]]:
    """Hash the whole file once, checking each claimed (length, sha256, who) prefix.

    Returns the file's SHA-256, its length and the problems."""
    wanted = sorted(claims)
    problems: list[str] = []
    digest = hashlib.sha256()
    pos = 0
    raw.seek(0)
    i = 0
    while True:
        while i < len(wanted) and wanted[i][0] == pos:
            n, sha, who = wanted[i]
            if digest.hexdigest() != sha:
                problems.append(f"altered: the first {n} bytes of the file differ from {who}")
            i += 1
        limit = wanted[i][0] - pos if i < len(wanted) else 1 << 20
        chunk = raw.read(min(1 << 20, limit))
        if not chunk:
            break
        digest.update(chunk)
        pos += len(chunk)
    for n, _sha, who in wanted[i:]:
        problems.append(f"truncated: {who} vouches for {n} bytes but the file has {pos}")
    return digest.hexdigest(), pos, problems


def expected_tail(manifest: bytes, mtime: int, signature: bytes | None) -> list[bytes]:
    """The bytes the writer emits from the manifest's header to the end."""
    out = [member_header(MANIFEST_NAME, len(manifest), mtime), manifest]
    out.append(b"\0" * ((-len(manifest)) % BLOCK))
    if signature is not None:
        out += [member_header(SIGNATURE_NAME, len(signature), mtime), signature]
        out.append(b"\0" * ((-len(signature)) % BLOCK))
    out.append(b"\0" * (2 * BLOCK))
    return out


def stored(parts: list[bytes]) -> list[bytes]:
    """The tail as a zstd bundle holds it: one frame of raw blocks."""
    data = b"".join(parts)
    return [stored_frame_header(len(data)), stored_blocks(data, last=True)]


def check_raw_tail(raw: BinaryIO, start: int, parts: list[bytes]) -> str | None:
    """An uncompressed bundle: the file from ``start`` must be exactly ``parts``."""
    want = hashlib.sha256()
    for p in parts:
        want.update(p)
    length = sum(len(p) for p in parts)
    got = hashlib.sha256()
    raw.seek(start)
    n = 0
    while chunk := raw.read(1 << 20):
        got.update(chunk)
        n += len(chunk)
    if n != length or got.digest() != want.digest():
        return (
            "altered: the bytes after the last checkpoint (manifest header, padding, "
            "signature or end of archive) are not what the writer wrote"
        )
    return None


def custody_bindings(custody: bytes, observed: dict[str, tuple[int, str]]) -> list[str]:
    """Every custody entry that names a member and its SHA-256 must match that member."""
    problems: list[str] = []
    for n, line in enumerate(custody.splitlines(), 1):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            problems.append(f"custody.jsonl line {n} is not JSON")
            continue
        details = entry.get("details") if isinstance(entry, dict) else None
        if not isinstance(details, dict):
            continue
        member, sha = details.get("member"), details.get("sha256")
        if not isinstance(member, str) or not isinstance(sha, str):
            continue
        got = observed.get(member)
        if got is None:
            problems.append(f"custody entry {n} names member {member!r}, which is absent")
        elif got[1] != sha:
            problems.append(
                f"custody entry {n} binds {member!r} to sha256 {sha[:16]}…, "
                f"the member's is {got[1][:16]}…"
            )
    return problems


def sidecar_path(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".custody.jsonl")


def check_sidecar(
    bundle: Path,
    custody: bytes | None,
    file_sha256: str,
    manifest_sha256: str,
    key_fingerprint: str | None,
) -> tuple[bool, list[str]]:
    """Compare with the seal beside the bundle. Returns (found, problems)."""
    path = sidecar_path(bundle)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SIDECAR + 1)
    except OSError:
        return False, []
    if len(data) > MAX_SIDECAR:
        return True, [f"{path.name} is larger than {MAX_SIDECAR} bytes; not read"]
    problems: list[str] = []
    if custody is not None and not data.startswith(custody):
        problems.append(f"the custody log inside the bundle differs from {path.name}")
    sealed: dict[str, Any] | None = None
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            problems.append(f"{path.name} has a line that is not JSON")
            continue
        if isinstance(entry, dict) and entry.get("action") == "bundle.sealed":
            d = entry.get("details")
            sealed = d if isinstance(d, dict) else {}
    if sealed is None:
        return True, [*problems, f"{path.name} has no bundle.sealed entry"]
    if sealed.get("file_sha256") != file_sha256:
        problems.append(
            f"altered: the file's SHA-256 is not the one sealed in {path.name} "
            f"({str(sealed.get('file_sha256'))[:16]}…)"
        )
    if sealed.get("manifest_sha256") != manifest_sha256:
        problems.append(f"altered: the manifest's SHA-256 is not the one sealed in {path.name}")
    sealed_key = sealed.get("key_fingerprint")
    if sealed_key and sealed_key != key_fingerprint:
        now = f"{key_fingerprint} signed it" if key_fingerprint else "it carries no signature"
        problems.append(f"{path.name} says the bundle was signed by {sealed_key}, but {now}")
    return True, problems
