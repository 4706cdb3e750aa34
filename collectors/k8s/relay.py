"""Copy the agent's bundle, member by member, into the client's bundle, verifying it.

The agent's stream is a complete bundle with its own header, checkpoints,
custody log and manifest. The client's bundle takes every member through
unchanged (same name, same bytes), except the agent's bookkeeping, which moves
under ``agent/``:

    exuvia.json      -> agent/exuvia.json
    checkpoints/N    -> agent/checkpoints/N
    custody.jsonl    -> agent/custody.jsonl
    manifest.json    -> agent/manifest.json

so the client's own header, checkpoints, custody log and manifest cover
everything, and `exuvia verify` checks all of it. While copying, each member's
SHA-256 is checked against the agent's checkpoints (as they arrive) and, at the
end, against the agent's manifest. If the stream was cut, what arrived is kept:
whole members are copied (those the agent's checkpoints vouch for are marked
verified), and the member it broke in is kept as ``agent/cut/<name>`` with the
bytes that arrived. The stream is untrusted input: names are never used as paths,
and a name that would land in the client's own namespace goes under
``agent/unexpected/``.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from forensics.bundle.format import (
    CHECKPOINT_DIR,
    CUSTODY_NAME,
    HEADER_NAME,
    MANIFEST_NAME,
    check_version,
    encode_path,
)
from forensics.bundle.reader import open_stream
from forensics.bundle.writer import BundleWriter
from forensics.errors import BundleError

AGENT_DIR = "agent/"
K8S_DIR = "artifacts/k8s/"
CHUNK = 1 << 20
_RENAMES = {
    HEADER_NAME: AGENT_DIR + HEADER_NAME,
    CUSTODY_NAME: AGENT_DIR + CUSTODY_NAME,
    MANIFEST_NAME: AGENT_DIR + MANIFEST_NAME,
}


@dataclass
class RelayReport:
    """What was copied, and how much of it the agent's own hashes vouch for."""

    members: int = 0
    bytes: int = 0
    manifest: dict[str, Any] | None = None
    manifest_sha256: str = ""
    header: dict[str, Any] | None = None
    by_checkpoint: int = 0
    by_manifest: int = 0
    unverified: list[str] = field(default_factory=list)
    cut: dict[str, Any] | None = None
    broken: str | None = None
    problems: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """Every member arrived and matches the agent's manifest."""
        return self.manifest is not None and not self.problems and self.broken is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "bytes": self.bytes,
            "manifest_sha256": self.manifest_sha256 or None,
            "verified_by_manifest": self.by_manifest,
            "verified_by_checkpoints_only": self.by_checkpoint,
            "unverified": self.unverified[:1000],
            "cut": self.cut,
            "broken": self.broken,
            "problems": self.problems[:1000],
            "renamed": self.renamed,
        }


def out_name(name: str) -> tuple[str, str | None]:
    """The client-bundle name of an agent member, and a problem if it was odd."""
    if name in _RENAMES:
        return _RENAMES[name], None
    if name.startswith(CHECKPOINT_DIR):
        return AGENT_DIR + name, None
    parts = name.split("/")
    odd = (
        name.startswith(("/", AGENT_DIR, K8S_DIR))
        or ".." in parts
        or "" in parts
        or not name.isprintable()
    )
    if odd:
        safe = encode_path(name.encode("utf-8", "surrogateescape")).lstrip("/")
        return f"{AGENT_DIR}unexpected/{safe}", f"unexpected member name {name!r} from the agent"
    return name, None


def _load(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"{what} is not valid JSON ({err})") from err


class _Copier:
    def __init__(self, writer: BundleWriter, report: RelayReport) -> None:
        self.w = writer
        self.r = report
        self.observed: dict[str, tuple[int, str]] = {}
        self.vouched: set[str] = set()
        self.cp_prev = ""

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        name = info.name
        if not info.isreg():
            self.r.problems.append(f"agent member {name!r} is not a regular file; not copied")
            return
        if name in self.observed:
            self.r.problems.append(f"duplicate agent member {name!r}; second copy not kept")
            return
        fobj = tar.extractfile(info)
        assert fobj is not None
        keep_json = name in (MANIFEST_NAME, HEADER_NAME) or name.startswith(CHECKPOINT_DIR)
        digest = hashlib.sha256()
        got = 0
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            try:
                while chunk := fobj.read(CHUNK):
                    digest.update(chunk)
                    spool.write(chunk)
                    got += len(chunk)
            except (tarfile.TarError, BundleError, OSError, EOFError, ValueError) as err:
                self._cut(name, info.size, got, spool, f"{type(err).__name__}: {err}")
                raise
            if got < info.size:
                self._cut(name, info.size, got, spool, "stream ends inside the member")
                raise EOFError("stream ends inside a member")
            sha = digest.hexdigest()
            self.observed[name] = (got, sha)
            target, problem = out_name(name)
            if problem:
                self.r.problems.append(problem)
            if target != name:
                self.r.renamed[name] = target
            spool.seek(0)
            content = spool.read() if keep_json else None
            spool.seek(0)
            self.w.add_stream(target, got, spool.read)
        self.r.members += 1
        self.r.bytes += got
        if content is not None:
            self._bookkeeping(name, sha, content)

    def _cut(self, name: str, size: int, got: int, spool: IO[bytes], why: str) -> None:
        target = f"{AGENT_DIR}cut/{out_name(name)[0]}"
        spool.seek(0)
        self.w.add_stream(target, got, spool.read)
        self.r.cut = {"name": name, "member": target, "size": size, "received": got, "why": why}

    def _bookkeeping(self, name: str, sha: str, content: bytes) -> None:
        try:
            if name == HEADER_NAME:
                head = _load(content, "agent header")
                self.r.header = head if isinstance(head, dict) else None
            elif name == MANIFEST_NAME:
                manifest = _load(content, "agent manifest")
                if not isinstance(manifest, dict):
                    raise BundleError("agent manifest is not a JSON object")
                check_version(manifest.get("version"))
                self.r.manifest = manifest
                self.r.manifest_sha256 = sha
            else:
                self._checkpoint(name, sha, _load(content, name))
        except BundleError as err:
            self.r.problems.append(str(err))

    def _checkpoint(self, name: str, sha: str, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            self.r.problems.append(f"agent checkpoint {name} is malformed")
            return
        if body.get("prev_sha256", "") != self.cp_prev:
            self.r.problems.append(f"agent checkpoint {name} does not chain to the previous one")
        self.cp_prev = sha
        for entry in body["members"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            got = self.observed.get(entry["name"])
            if got is None:
                self.r.problems.append(f"agent checkpoint {name} lists {entry['name']!r}, not seen")
            elif got == (entry.get("size"), entry.get("sha256")):
                self.vouched.add(entry["name"])
            else:
                self.r.problems.append(f"agent member {entry['name']!r} does not match {name}")

    def finish(self) -> None:
        manifest = self.r.manifest
        names = [n for n in self.observed if n != MANIFEST_NAME]
        if manifest is None:
            self.r.by_checkpoint = sum(1 for n in names if n in self.vouched)
            self.r.unverified = [
                n for n in names if n not in self.vouched and not n.startswith(CHECKPOINT_DIR)
            ]
            return
        listed: set[str] = set()
        for entry in manifest.get("members") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                self.r.problems.append("agent manifest has a malformed member entry")
                continue
            listed.add(entry["name"])
            got = self.observed.get(entry["name"])
            if got is None:
                self.r.problems.append(f"agent member {entry['name']!r} is missing")
            elif got != (entry.get("size"), entry.get("sha256")):
                self.r.problems.append(
                    f"agent member {entry['name']!r} does not match its manifest"
                )
            else:
                self.r.by_manifest += 1
        for n in names:
            if n not in listed:
                self.r.problems.append(f"agent member {n!r} is not in the agent's manifest")
                self.r.unverified.append(n)


def relay(agent_stream: str | Path, writer: BundleWriter) -> RelayReport:
    """Copy every member of the agent's bundle file into ``writer``; never raises
    for a cut or corrupt stream (the report says what happened)."""
    report = RelayReport()
    copier = _Copier(writer, report)
    raw, stream = open_stream(agent_stream)
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")
        while True:
            info = tar.next()
            if info is None:
                break
            copier.member(tar, info)
    except (tarfile.TarError, BundleError, OSError, EOFError, ValueError) as err:
        report.broken = (
            "the agent's stream is empty"
            if report.members == 0 and not report.cut and isinstance(err, tarfile.ReadError)
            else f"the agent's stream ends or is corrupt ({type(err).__name__}: {err})"
        )
    finally:
        raw.close()
    if report.broken is None and report.manifest is None:
        report.broken = "the agent's stream ends before its manifest"
    copier.finish()
    return report
