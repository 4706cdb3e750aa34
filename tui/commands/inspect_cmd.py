"""`exuvia verify FILE` and `exuvia info FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from forensics.bundle import verify_bundle
from forensics.bundle.reader import BundleReader
from forensics.timeutil import iso_ns


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check every member of a bundle against its manifest",
        description="Read the whole bundle and check every member's size and SHA-256 "
        "against the manifest. Exit 0 and say OK, or exit 1 and name every member that "
        "is missing, extra, altered or truncated.",
    )
    p.add_argument("bundle", type=Path, metavar="FILE")
    p.add_argument(
        "--key",
        type=Path,
        metavar="PUBFILE",
        help="the bundle must carry a valid Ed25519 signature by this public key "
        "(PEM, or an OpenSSH ssh-ed25519 line); fails when it is unsigned or signed by another",
    )
    p.set_defaults(handler=run_verify)
    p = sub.add_parser(
        "info",
        help="summarize a bundle's manifest",
        description="Print the manifest summary: target, times, counts, skips, completeness.",
    )
    p.add_argument("bundle", type=Path, metavar="FILE")
    p.set_defaults(handler=run_info)


def run_verify(args: argparse.Namespace) -> int:
    key = None
    if args.key is not None:
        from forensics.signing import load_public_key  # noqa: PLC0415 - only when asked

        key = load_public_key(args.key)
    report = verify_bundle(args.bundle, public_key=key)
    if report.ok:
        note = "" if report.complete else f" — INCOMPLETE capture: {report.incomplete_reason}"
        print(f"OK: {args.bundle}: {report.members_verified} members match the manifest{note}")
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
    print(f"FAILED: {_safe(str(args.bundle))}")
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


def _safe(text: str) -> str:
    """Names come from the bundle: never let one move the cursor or color the screen."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode()
        for ch in text
    )


def _t(ns: Any) -> str:
    return iso_ns(ns) if isinstance(ns, int) else "?"


def run_info(args: argparse.Namespace) -> int:
    m = BundleReader(args.bundle).manifest()
    t = m.get("target") or {}
    acq = m.get("acquisition") or {}
    print(f"bundle:     {args.bundle}")
    tool = (m.get("tool") or {}).get("version")
    print(f"format:     {m.get('format')} {m.get('version')}  (written by exuvia {tool})")
    state = "complete" if m.get("complete") else f"INCOMPLETE: {m.get('incomplete_reason')}"
    print(f"state:      {state}")
    print(f"case:       {m.get('case') or '-'}   examiner: {m.get('examiner')}")
    print(
        f"target:     {t.get('uri')}  runtime {t.get('runtime')} {t.get('runtime_version') or ''}"
    )
    print(f"container:  {t.get('container_id') or '-'}  name {t.get('name') or '-'}")
    print(f"image:      {t.get('image') or '-'}  digest {t.get('image_digest') or '-'}")
    print(f"init pid:   {t.get('pid')}   started {_t(t.get('started_ns'))}")
    print(f"acquired:   {_t(acq.get('start_ns'))} .. {_t(acq.get('end_ns'))} (UTC)")
    host = m.get("host") or {}
    print(f"host:       {host.get('hostname')} kernel {host.get('kernel')}")
    counts = m.get("counts") or {}
    print("records:    " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    fs = m.get("filesystem") or {}
    if fs:
        print(
            f"files:      {fs.get('entries')} entries, {fs.get('files')} regular, "
            f"{fs.get('copied_files')} copied ({fs.get('copied_bytes')} bytes), "
            f"{fs.get('changed')} changed since start, {fs.get('deleted')} deleted"
        )
    members = m.get("members") or []
    print(f"members:    {len(members)} + manifest")
    skips = m.get("skips") or {}
    by = skips.get("by_collector") or {}
    print(
        f"skipped:    {skips.get('total', 0)}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(by.items())) + ")" if by else "")
    )
    for s in (skips.get("listed") or [])[:15]:
        print(f"  - [{s.get('collector')}] {s.get('subject')}: {s.get('reason')}")
    if skips.get("total", 0) > 15:
        print(f"  … all in member {skips.get('member')}")
    return 0
