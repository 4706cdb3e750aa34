"""Seal a copy of what a killed capture's checkpoints vouch for (``exuvia salvage``).

A ``.partial`` has no manifest: it verifies only up to its last checkpoint. This
writes a new bundle holding exactly the members those checkpoints vouch for, in
their order, with a manifest (``complete: false``, ``salvaged_from``: the
original's file name, SHA-256, size and checkpoint) that verifies like any
other. The original is only read. The copy is written under a temporary name in
the output's directory, fsync'ed and linked to its final name only when whole
(a name that exists is never replaced); every member copied is checked against
its checkpoint entry again, so a source that changed meanwhile aborts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from forensics import __version__
from forensics.atomic import sync_dir
from forensics.bundle.format import (
    CHECKPOINT_DIR,
    CUSTODY_NAME,
    HEADER_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SKIPS_NAME,
)
from forensics.bundle.reader import MAX_JSON_MEMBER, open_stream
from forensics.bundle.verify import VerifyReport, cut_off_banner, verify_bundle
from forensics.bundle.writer import BundleWriter
from forensics.custody import CustodyLog
from forensics.errors import BundleError, OutputError
from forensics.timeutil import CLOCK_SOURCE, iso_ns, now_ns

if TYPE_CHECKING:
    from forensics.signing import Signer

TARGET_NAME = "artifacts/target.json"
_READ_ERRORS = (tarfile.TarError, BundleError, OSError, EOFError, ValueError)


@dataclass
class SalvageResult:
    path: Path
    source: Path
    source_sha256: str
    checkpoint: int
    members: int
    records: int
    dropped: int
    manifest_sha256: str
    file_sha256: str
    file_bytes: int
    custody_path: Path
    signed_by: str | None
    banner: str


def default_output(source: Path) -> Path:
    """``X.exv.partial`` -> ``X.exv.incomplete`` (anything else: ``+ .incomplete``)."""
    name = source.name.removesuffix(".partial")
    return source.with_name(name + ".incomplete")


def salvage(
    source: Path,
    out: Path | None = None,
    *,
    examiner: str,
    host: dict[str, Any] | None = None,
    argv: list[str] | None = None,
    signer: Signer | None = None,
    whole_ok: bool = False,
) -> SalvageResult:
    """Write the sealed ``.incomplete`` copy of ``source``; see the module doc.
    ``whole_ok``: a source that verifies whole (an agent's stream received in full,
    whose client died before it made its own bundle of it) is copied too, every
    member its manifest vouches for (``salvaged_from.sealed``)."""
    out = out if out is not None else default_output(source)
    for p in (out, out.with_name(out.name + ".custody.jsonl")):
        if os.path.lexists(p):
            raise OutputError(f"{p} already exists; refusing to overwrite evidence")
    if out.resolve() == source.resolve():
        raise OutputError("the output would be the original; give another -o")
    report = verify_bundle(source)
    if report.has_manifest and whole_ok and report.ok:
        pass  # every member its manifest lists, checked again as it is copied
    elif report.has_manifest:
        raise BundleError(
            f"{source} has a manifest (it was sealed): nothing to salvage; `exuvia verify` it"
        )
    elif not report.cut_off:
        problems = "; ".join(report.failures()[:3])
        raise BundleError(f"{source} is not merely cut off, it does not verify: {problems}")
    elif report.checkpoints_valid == 0:
        raise BundleError(f"{source}: no checkpoint was written before it was cut off")
    custody = CustodyLog(examiner=examiner)
    custody.record(
        "salvage.started",
        source=str(source),
        source_sha256=report.file_sha256,
        checkpoint=report.last_checkpoint,
        command_line=argv or [],
        signing_key=signer.fingerprint if signer else None,
    )
    try:
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write in {out.parent}: {err.strerror}") from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
            os.fchmod(raw.fileno(), 0o640)
            manifest_sha, writer, copied = _write(
                source, raw, report=report, custody=custody, host=host, argv=argv, signer=signer
            )
            raw.flush()
            os.fsync(raw.fileno())
        try:
            os.link(tmp, out)  # never over an existing name
        except OSError as err:
            raise OutputError(f"cannot create {out}: {err.strerror}") from err
        sync_dir(out.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    custody.record(
        "bundle.sealed",
        path=str(out),
        manifest_sha256=manifest_sha,
        file_sha256=writer.file_sha256,
        bytes=writer.file_bytes,
        complete=False,
        salvaged_from=report.file_sha256,
        **({"key_fingerprint": signer.fingerprint} if signer else {}),
    )
    custody_path = custody.write_sidecar(out)
    return SalvageResult(
        path=out,
        source=source,
        source_sha256=report.file_sha256,
        checkpoint=report.last_checkpoint,
        members=copied,
        records=report.records_vouched,
        dropped=len(report.unverifiable) + len(report.truncated),
        manifest_sha256=manifest_sha,
        file_sha256=writer.file_sha256,
        file_bytes=writer.file_bytes,
        custody_path=custody_path,
        signed_by=signer.fingerprint if signer else None,
        banner=(
            f"WHOLE: the stream verifies with its manifest: {report.members_verified} "
            f"members, {report.records_vouched} records"
        )
        if report.has_manifest
        else cut_off_banner(report),
    )


def _write(
    source: Path,
    raw: BinaryIO,
    *,
    report: VerifyReport,
    custody: CustodyLog,
    host: dict[str, Any] | None,
    argv: list[str] | None,
    signer: Signer | None,
) -> tuple[str, BundleWriter, int]:
    """Copy the vouched members of ``source`` into a new bundle on ``raw``; seal it."""
    start = now_ns()
    whole = report.has_manifest  # salvage() let it through: it verifies whole
    wanted = set(report.vouched_names)
    copied: dict[str, tuple[int, str]] = {}
    claimed: dict[str, tuple[Any, Any]] = {}
    header: dict[str, Any] = {}
    target: dict[str, Any] = {}
    last_cp_ns: int | None = None
    checkpoints = 0
    prior: list[dict[str, Any]] = []  # the original's custody log, if it got that far
    skips_member = False
    writer: BundleWriter | None = None
    src_raw, stream = open_stream(source)
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")
        for info in tar:
            name = info.name
            is_cp = name.startswith(CHECKPOINT_DIR)
            if not info.isreg() or not (is_cp or whole or name in wanted):
                continue
            f = tar.extractfile(info)
            assert f is not None
            if is_cp:  # read for its claims; the copy gets checkpoints of its own
                body = _json(f.read(MAX_JSON_MEMBER))
                for e in body.get("members") or []:
                    if isinstance(e, dict) and isinstance(e.get("name"), str):
                        claimed[e["name"]] = (e.get("size"), e.get("sha256"))
                if isinstance(body.get("ts_ns"), int):
                    last_cp_ns = body["ts_ns"]
                checkpoints += 1
                if checkpoints >= report.checkpoints_valid and not whole:
                    break  # what follows the last valid checkpoint is not vouched for
                continue
            if name == HEADER_NAME:
                header = _json(f.read(MAX_JSON_MEMBER))
                writer = BundleWriter(raw, header=_salvage_header(header, report, source))
                copied[name] = (info.size, "")  # the copy's header is its own
                continue
            if writer is None:
                raise BundleError(f"{source}: its first member is not {HEADER_NAME}")
            if name == TARGET_NAME:
                data = f.read(MAX_JSON_MEMBER)
                target = _json(data)
                entry = writer.add_bytes(name, data)
            elif name == CUSTODY_NAME:  # killed while sealing: the log so far
                data = f.read(MAX_JSON_MEMBER)
                prior = [e for e in map(_json, data.splitlines()) if e]
                copied[name] = (len(data), hashlib.sha256(data).hexdigest())
                continue  # it heads the copy's own log, written last
            elif name == MANIFEST_NAME and whole:  # what a whole source vouches for
                wanted, claimed = _manifest_claims(f.read(MAX_JSON_MEMBER))
                continue
            elif name in (MANIFEST_NAME, SIGNATURE_NAME):
                continue
            else:
                if name == SKIPS_NAME:
                    skips_member = True
                entry = writer.add_stream(name, info.size, f.read)
            copied[name] = (entry.size, entry.sha256)
    except _READ_ERRORS as err:
        if checkpoints < report.checkpoints_valid:
            raise BundleError(f"{source}: changed or unreadable while salvaged ({err})") from err
    finally:
        close = getattr(stream, "close", None)
        if close is not None and stream is not src_raw:
            close()
        src_raw.close()
    if writer is None:
        raise BundleError(f"{source}: no {HEADER_NAME} among what its checkpoints vouch for")
    if checkpoints < report.checkpoints_valid or (whole and not wanted) or set(copied) != wanted:
        raise BundleError(f"{source}: changed while salvaged (not every vouched member found)")
    for name, (size, sha) in copied.items():
        if name == HEADER_NAME:
            continue
        if claimed.get(name) != (size, sha):
            raise BundleError(f"{source}: {name} no longer matches its checkpoint; not salvaged")
    custody.record(
        "salvage.finished",
        members=len(copied),
        records=report.records_vouched,
        dropped=len(report.unverifiable) + len(report.truncated),
    )
    if prior:  # the capture's own entries first, then the salvage's, in one sequence
        for n, logged in enumerate(custody.entries, len(prior) + 1):
            logged["seq"] = n
        custody.entries[:0] = prior
    writer.add_bytes(CUSTODY_NAME, custody.to_jsonl())
    end = now_ns()
    created = header.get("created_ns") if isinstance(header.get("created_ns"), int) else None
    acq_end = last_cp_ns or created or end
    manifest: dict[str, Any] = {
        "tool": {"name": "exuvia", "version": __version__},
        "case": None,
        "examiner": custody.examiner,
        "host": host or {"hostname": custody.host},
        "command_line": argv or [],
        "clock": {"source": CLOCK_SOURCE, "timezone": "UTC", "resolution": "ns"},
        "acquisition": {
            "start_ns": created,
            "start": iso_ns(created) if created is not None else None,
            "end_ns": acq_end,
            "end": iso_ns(acq_end),
            "note": "the original capture's start and its last checkpoint",
        },
        "target": target,
        "options": {"salvaged": True},
        "complete": False,
        "incomplete_reason": (
            f"salvaged: the stream {source.name} was received whole, but its capture was cut "
            f"off before it was made into a bundle; this copy holds every member its manifest "
            f"(sha256 {report.manifest_sha256[:16]}…) vouches for"
            if whole
            else f"salvaged: the capture was cut off before its manifest; this copy holds what "
            f"checkpoint {report.last_checkpoint} of {source.name} vouches for"
        ),
        "counts": dict(report.records_by_collector),
        "salvaged_from": _salvaged_from(source, report),
        "filesystem_view": None,
        "filesystem": None,
        "skips": {
            "total": None,
            "by_collector": {},
            "member": SKIPS_NAME if skips_member else None,
            "listed": [],
            "listed_all": False,
            "note": (
                f"the capture's skip list, as it was when cut off, is in {SKIPS_NAME}"
                if skips_member
                else "a cut-off capture's skip list is written at sealing: it was lost"
            ),
        },
        "salvage": {"started_ns": start, "sealed_by": f"exuvia {__version__}"},
    }
    manifest_sha, _size = writer.finish(manifest, signer=signer)
    return manifest_sha, writer, len(copied)


def _manifest_claims(data: bytes) -> tuple[set[str], dict[str, tuple[Any, Any]]]:
    """The members a whole source's manifest lists (checkpoints aside), and each
    one's (size, SHA-256)."""
    claimed: dict[str, tuple[Any, Any]] = {}
    for e in _json(data).get("members") or []:
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            claimed[e["name"]] = (e.get("size"), e.get("sha256"))
    wanted = {n for n in claimed if not n.startswith(CHECKPOINT_DIR) and n != SIGNATURE_NAME}
    return wanted, claimed


def _salvaged_from(source: Path, report: VerifyReport) -> dict[str, Any]:
    return {
        "file": source.name,
        "path": str(source),
        "sha256": report.file_sha256,
        "checkpoint": report.last_checkpoint,
        "checkpoints_valid": report.checkpoints_valid,
        "members": report.members_verified,
        "records": report.records_vouched,
        "dropped_members": len(report.unverifiable) + len(report.truncated),
        **(
            {"sealed": True, "manifest_sha256": report.manifest_sha256}
            if report.has_manifest
            else {}
        ),
    }


def _salvage_header(header: dict[str, Any], report: VerifyReport, source: Path) -> dict[str, Any]:
    keep = {k: v for k, v in header.items() if k in ("tool", "target", "created_ns")}
    keep["original_tool"] = keep.pop("tool", None)
    keep["tool"] = f"exuvia {__version__}"
    keep["salvaged_from"] = {"file": source.name, "sha256": report.file_sha256}
    keep["salvaged_ns"] = now_ns()
    return keep


def _json(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}
