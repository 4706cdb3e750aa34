"""`exuvia verify FILE|DIR` and `exuvia info FILE|DIR` (a case directory: case_cmd)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from forensics.bundle import verify_bundle
from forensics.bundle.format import HEADER_NAME
from forensics.bundle.reader import BundleReader
from forensics.bundle.verify import VerifyReport, cut_off_banner
from forensics.case import CaseReport, is_case, load_case, verify_case
from forensics.errors import BundleError
from forensics.timeline.runtime import TARGET_MEMBER
from forensics.timeutil import iso_ns
from tui.commands import case_cmd
from tui.commands.memory_info import memory_lines
from tui.commands.options import add_output_format, print_json
from tui.commands.store_opts import add_store_options, path_or_s3, store_from


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check every member of a bundle (or every bundle of a case) against its manifest",
        description="Read the whole bundle and check every member's size and SHA-256 "
        "against the manifest. Exit 0 and say OK, or exit 1 and name every member that "
        "is missing, extra, altered or truncated, or exit 3 for a capture that was cut off "
        "(killed: no manifest) whose every member its checkpoints vouch for matches. Given "
        "a case directory (holding case.json), check case.json's seal and signature and "
        "every bundle it names: each "
        "must verify and be the one case.json names (same manifest and file SHA-256, "
        "target, completeness).",
    )
    p.add_argument("bundle", type=path_or_s3, metavar="FILE|DIR|s3://…")
    p.add_argument(
        "--key",
        type=Path,
        metavar="PUBFILE",
        help="the bundle must carry a valid Ed25519 signature by this public key "
        "(PEM, or an OpenSSH ssh-ed25519 line); fails when it is unsigned or signed by "
        "another. For a case: case.json and every bundle",
    )
    add_output_format(p)
    add_store_options(p, lock=False)
    p.set_defaults(handler=run_verify)
    p = sub.add_parser(
        "info",
        help="summarize a bundle's manifest (or a case)",
        description="Print the manifest summary: target, times, counts, skips, completeness. "
        "Given a case directory: what was asked for, the pods and nodes, and each bundle's "
        "state, size, time and reason.",
    )
    p.add_argument("bundle", type=path_or_s3, metavar="FILE|DIR|s3://…")
    add_output_format(p)
    add_store_options(p, lock=False)
    p.set_defaults(handler=run_info)


def run_verify(args: argparse.Namespace) -> int:
    if isinstance(args.bundle, str):
        return run_store("verify", args)
    key = None
    if args.key is not None:
        from forensics.signing import load_public_key  # noqa: PLC0415 - only when asked

        key = load_public_key(args.key)
    if is_case(args.bundle):
        if args.output_format == "json":
            report_c = verify_case(args.bundle, public_key=key)
            print_json(case_verify_doc(report_c))
            return 0 if report_c.ok else 1
        return case_cmd.run_verify(args, key)
    report = verify_bundle(args.bundle, public_key=key)
    return print_verify(args, report, key)


def print_verify(args: argparse.Namespace, report: VerifyReport, key: bytes | None) -> int:
    shown = getattr(args, "shown", None) or args.bundle
    if args.output_format == "json":
        print_json(verify_doc(report))
        return report.exit_status
    if report.ok:
        note = "" if report.complete else f" — INCOMPLETE capture: {report.incomplete_reason}"
        print(f"OK: {shown}: {report.members_verified} members match the manifest{note}")
        print(f"manifest sha256: {report.manifest_sha256}")
        print(f"file sha256:     {report.file_sha256}")
        if report.signed_by:
            whose = "the given key" if key is not None else "the key it names (use --key to pin it)"
            print(f"signature:       valid, by {whose}: {report.signed_by}")
        else:
            print("signature:       none")
        side = "matches" if report.sidecar_checked else "not found beside the bundle; not checked"
        print(f"custody seal:    {side}")
        for note in report.notes:
            print(f"note: {note}")
        return 0
    if report.cut_off:
        print(f"CUT OFF: {_safe(str(shown))}: the capture was interrupted (no manifest)")
        print(f"  {cut_off_line(report)}")
        print(f"  {len(report.unverifiable)} members after the last checkpoint cannot be verified")
        for line in report.failures():
            print(f"  {_safe(line)}")
        print(f"  `exuvia salvage {_safe(str(shown))}` seals a copy of what they vouch for")
        return report.exit_status
    print(f"FAILED: {_safe(str(shown))}")
    if not report.has_manifest:
        print(f"  {report.incomplete_reason}")
        print(
            f"  {report.members_verified} members verified by checkpoints; "
            f"{len(report.unverifiable)} after the last checkpoint cannot be verified"
        )
        for name in report.unverifiable[:20]:
            print(f"  unverifiable: {_safe(name)}")
    for line in report.failures():
        print(f"  {_safe(line)}")
    return 1


def cut_off_line(r: VerifyReport) -> str:
    """What the checkpoints of a cut-off bundle vouch for, in one line."""
    return (
        f"read up to checkpoint {r.last_checkpoint} ({r.checkpoints_valid} valid): "
        f"{r.members_verified} members, {r.records_vouched} records, all matching"
    )


def verify_doc(r: VerifyReport) -> dict[str, Any]:
    """``verify --output json`` (docs/scripting.md)."""
    return {
        "format": "exuvia-verify-result",
        "version": 1,
        "bundle": r.path,
        "ok": r.ok,
        "has_manifest": r.has_manifest,
        "complete": r.complete,
        "incomplete_reason": r.incomplete_reason or None,
        "members_read": r.members_read,
        "members_verified": r.members_verified,
        "manifest_sha256": r.manifest_sha256 or None,
        "file_sha256": r.file_sha256 or None,
        "signed_by": r.signed_by,
        "sidecar_checked": r.sidecar_checked,
        "missing": r.missing,
        "extra": r.extra,
        "altered": r.altered,
        "truncated": r.truncated,
        "unverifiable": r.unverifiable,
        "problems": r.problems,
        "notes": r.notes,
        "cut_off": r.cut_off,
        "checkpoints_valid": r.checkpoints_valid,
        "last_checkpoint": r.last_checkpoint,
        "records_vouched": r.records_vouched,
        "exit_status": r.exit_status,
    }


def case_verify_doc(r: CaseReport) -> dict[str, Any]:
    """``verify CASE --output json`` (docs/scripting.md)."""
    return {
        "format": "exuvia-case-verify-result",
        "version": 1,
        "case": str(r.path),
        "ok": r.ok,
        "case_sha256": r.case_sha256 or None,
        "verified": r.verified,
        "signed_by": r.signed_by,
        "sealed": r.sealed,
        "bundles": [
            {"label": c.bundle.label, "file": c.bundle.file, "status": c.bundle.status,
             "ok": c.ok, "checked": c.report is not None, "failures": c.failures()[:100]}
            for c in r.bundles
        ],
        "problems": r.problems,
        "notes": r.notes,
        "exit_status": 0 if r.ok else 1,
    }  # fmt: skip


def info_doc(path: Path, m: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``info --output json``: the manifest's summary, as the text form shows it."""
    skips = _d(m.get("skips"))
    members = m.get("members")
    return {
        "format": "exuvia-info",
        "version": 1,
        "bundle": str(path),
        "bundle_format": m.get("format"),
        "bundle_version": m.get("version"),
        "tool": _d(m.get("tool")).get("version"),
        "complete": m.get("complete") is True,
        "incomplete_reason": m.get("incomplete_reason") or None,
        "case": m.get("case"),
        "examiner": m.get("examiner"),
        "target": _d(m.get("target")),
        "acquisition": _d(m.get("acquisition")),
        "host": _d(m.get("host")),
        "counts": _d(m.get("counts")),
        "filesystem": _d(m.get("filesystem")),
        "members": len(members) if isinstance(members, list) else None,
        "memory": m.get("memory") if isinstance(m.get("memory"), dict) else None,
        "skips": {
            "total": skips.get("total", 0),
            "by_collector": _d(skips.get("by_collector")),
            "listed": (skips.get("listed") or [])[:100],
        },
        "warnings": warnings,
        "exit_status": 1 if warnings else 0,
    }


def _safe(text: str) -> str:
    """Names come from the bundle: never let one move the cursor or color the screen."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode()
        for ch in text
    )


def _t(ns: Any) -> str:
    return iso_ns(ns) if isinstance(ns, int) and not isinstance(ns, bool) else "?"


def _d(value: Any) -> dict[str, Any]:
    """A manifest field that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _v(value: Any) -> str:
    """A value from the bundle, printable as it is and never as terminal control."""
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, default=str)[:200]
    return _safe(text[:500])


def run_info(args: argparse.Namespace) -> int:
    if isinstance(args.bundle, str):
        return run_store("info", args)
    if is_case(args.bundle):
        if args.output_format == "json":
            print_json({"format": "exuvia-case-info", "version": 1,
                        **case_cmd.summary(load_case(args.bundle))})  # fmt: skip
            return 0
        return case_cmd.run_info(args)
    try:
        m, warnings = BundleReader(args.bundle).manifest_and_warnings()
    except BundleError:
        report = verify_bundle(args.bundle)  # no manifest read: a killed capture?
        if report.has_manifest or not report.vouched_names:
            raise
        return _info_cut_off(args, report)
    if args.output_format == "json":
        print_json(info_doc(getattr(args, "shown", None) or args.bundle, m, warnings))
        return 1 if warnings else 0
    t = _d(m.get("target"))
    acq = _d(m.get("acquisition"))
    tool = _d(m.get("tool")).get("version")
    done = m.get("complete") is True
    print(f"bundle:     {_safe(str(getattr(args, 'shown', None) or args.bundle))}")
    print(f"format:     {_v(m.get('format'))} {_v(m.get('version'))}  (by exuvia {_v(tool)})")
    print(f"state:      {'complete' if done else 'INCOMPLETE: ' + _v(m.get('incomplete_reason'))}")
    print(f"case:       {_v(m.get('case'))}   examiner: {_v(m.get('examiner'))}")
    print(f"target:     {_v(t.get('uri'))}  runtime {_v(t.get('runtime'))} ", end="")
    print(_v(t.get("runtime_version")))
    print(f"container:  {_v(t.get('container_id'))}  name {_v(t.get('name'))}")
    print(f"image:      {_v(t.get('image'))}  digest {_v(t.get('image_digest'))}")
    print(f"init pid:   {_v(t.get('pid'))}   started {_t(t.get('started_ns'))}")
    print(f"acquired:   {_t(acq.get('start_ns'))} .. {_t(acq.get('end_ns'))} (UTC)")
    host = _d(m.get("host"))
    print(f"host:       {_v(host.get('hostname'))} kernel {_v(host.get('kernel'))}")
    counts = _d(m.get("counts"))
    print("records:    " + ", ".join(f"{_v(k)} {_v(v)}" for k, v in sorted(counts.items())))
    fs = _d(m.get("filesystem"))
    if fs:
        print(
            f"files:      {_v(fs.get('entries'))} entries, {_v(fs.get('files'))} regular, "
            f"{_v(fs.get('copied_files'))} copied ({_v(fs.get('copied_bytes'))} bytes), "
            f"{_v(fs.get('changed'))} changed since start, {_v(fs.get('deleted'))} deleted"
        )
    members = m.get("members")
    print(f"members:    {len(members) if isinstance(members, list) else '?'} + manifest")
    for line in memory_lines(m, _v):
        print(line)
    skips = _d(m.get("skips"))
    by = _d(skips.get("by_collector"))
    total = skips.get("total", 0)
    per = ", ".join(f"{_v(k)} {_v(v)}" for k, v in sorted(by.items()))
    print(f"skipped:    {_v(total)}" + (f" ({per})" if per else ""))
    listed = skips.get("listed")
    for item in (listed if isinstance(listed, list) else [])[:15]:
        s = _d(item)
        print(f"  - [{_v(s.get('collector'))}] {_v(s.get('subject'))}: {_v(s.get('reason'))}")
    if isinstance(total, int) and total > 15:
        print(f"  … all in member {_v(skips.get('member'))}")
    print("integrity:  not checked here; `exuvia verify` checks every byte")
    for w in warnings:
        print(f"warning:    {_safe(w)}")
    return 1 if warnings else 0


def _info_cut_off(args: argparse.Namespace, report: VerifyReport) -> int:
    """``info`` of a bundle with no manifest (a killed capture): what its checkpoints
    vouch for, under a CUT OFF banner. Exit 3 when it is merely cut off, else 1."""
    small = BundleReader(args.bundle).read_members(
        lambda n: n in (HEADER_NAME, TARGET_MEMBER) and n in set(report.vouched_names)
    )
    head, target = _json_of(small.get(HEADER_NAME)), _json_of(small.get(TARGET_MEMBER))
    status = report.exit_status if report.exit_status else 1
    if args.output_format == "json":
        print_json({
            "format": "exuvia-info", "version": 1, "bundle": str(args.bundle),
            "bundle_format": head.get("format"), "bundle_version": head.get("version"),
            "tool": head.get("tool"), "complete": False, "cut_off": report.cut_off,
            "banner": cut_off_banner(report), "incomplete_reason": report.incomplete_reason,
            "target": target, "checkpoint": report.last_checkpoint,
            "members": report.members_verified, "records_vouched": report.records_vouched,
            "counts": report.records_by_collector,
            "unverified_members": len(report.unverifiable), "warnings": [],
            "exit_status": status,
        })  # fmt: skip
        return status
    print(_safe(cut_off_banner(report)))
    print(f"bundle:     {_safe(str(args.bundle))}")
    fmt = f"{_v(head.get('format'))} {_v(head.get('version'))}"
    print(f"format:     {fmt}  (by {_v(head.get('tool'))})")
    print(f"state:      CUT OFF: {_v(report.incomplete_reason)}")
    print(f"target:     {_v(target.get('uri'))}  runtime {_v(target.get('runtime'))}")
    print(f"container:  {_v(target.get('container_id'))}  name {_v(target.get('name'))}")
    print(f"image:      {_v(target.get('image'))}  digest {_v(target.get('image_digest'))}")
    print(f"started:    {_t(head.get('created_ns'))} (UTC); never sealed")
    per = ", ".join(f"{_v(k)} {_v(v)}" for k, v in sorted(report.records_by_collector.items()))
    print(f"records:    {per or 'none'} (behind the checkpoints)")
    print(
        f"members:    {report.members_verified} vouched for by {report.checkpoints_valid} "
        f"checkpoints; {len(report.unverifiable)} after the last one, unverified"
    )
    print(f"salvage:    `exuvia salvage {_safe(str(args.bundle))}` seals a copy of what is vouched")
    return status


def _json_of(data: bytes | None) -> dict[str, Any]:
    try:
        doc = json.loads(data) if data else {}
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run_store(command: str, args: argparse.Namespace) -> int:
    """``verify``/``info`` of an s3:// bundle or case prefix: copied, streamed, into a
    private directory under the exuvia cache (removed afterwards), then read as a
    local one; the object's metadata must agree with its bytes."""
    from collectors.store.fetch import (  # noqa: PLC0415 - boto3 only for s3://
        fetch_bundle,
        fetch_case,
        is_case_prefix,
        scratch_dir,
    )
    from collectors.store.uri import parse_s3  # noqa: PLC0415

    url = parse_s3(args.bundle)
    store = store_from(args)
    local = argparse.Namespace(**vars(args))
    with scratch_dir() as d:
        if url.is_prefix or is_case_prefix(store, url):
            local.bundle = fetch_case(store, url, d / "case")
            if not is_case(local.bundle):
                from forensics.errors import BundleError  # noqa: PLC0415

                raise BundleError(f"{url}: no such bundle object, and no case.json under it")
            print(f"store: {url} (a case; copied into the exuvia cache to check)")
            return run_verify(local) if command == "verify" else run_info(local)
        fetched = fetch_bundle(store, url, d)
        local.bundle = fetched.local
        local.shown = str(url)
        if command == "info":
            return run_info(local)
        key = None
        if args.key is not None:
            from forensics.signing import load_public_key  # noqa: PLC0415

            key = load_public_key(args.key)
        report = verify_bundle(fetched.local, public_key=key)
        report.path = str(url)
        report.problems += fetched.store_problems()
        if args.output_format == "text":
            version = fetched.head.get("VersionId") or "-"
            mode = fetched.head.get("ObjectLockMode")
            until = fetched.head.get("ObjectLockRetainUntilDate")
            hold = fetched.head.get("ObjectLockLegalHoldStatus") == "ON"
            lock = f"{mode} until {until}" if mode else "no retention"
            print(f"store: {url} version {version}, {lock}{', legal hold' if hold else ''}")
        return print_verify(local, report, key)
