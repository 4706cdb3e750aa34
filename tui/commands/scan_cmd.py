"""`exuvia scan BUNDLE|CASE --rules FILE|DIR`: YARA rules over the captured evidence.

The rules are compiled first (a rule that does not compile is one line naming
its file and line, exit 2, before any bundle is read); the results are written
beside each bundle (``<bundle>.yara.json``, forensics/scan/sidecar.py), which
the timeline, replay and findings then show. The bundle is never modified.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forensics.case import is_case, load_case
from forensics.errors import ExuviaError
from forensics.scan.bundle import SCAN_PREFIXES, scan_bundle
from forensics.scan.engine import ScanLimits
from forensics.scan.model import ScanResult
from forensics.scan.rules import compile_rules
from forensics.scan.sidecar import save_result
from forensics.textsafe import printable
from tui.commands.options import add_output_format, print_json, size_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "scan",
        help="scan a bundle's (or a case's) captured files, executables and memory with YARA",
        description="Compile the YARA rules (a file, or every *.yar/*.yara under a "
        "directory) and scan the members of the bundle that hold evidence bytes: "
        + ", ".join(f"{k}* ({v})" for k, v in SCAN_PREFIXES.items())
        + ". Matches are written beside the bundle as BUNDLE.yara.json (the bundle is "
        "never modified) and appear in `exuvia timeline` (kind yara.match), in replay "
        "(Y) and in `exuvia findings`. Exit 0 (matches or not); 2 when the rules do not "
        "compile (FILE:LINE:COL) or the bundle cannot be read.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE|CASE",
                   help="a bundle, or a case directory (each captured bundle)")  # fmt: skip
    p.add_argument("--rules", type=Path, required=True, metavar="FILE|DIR",
                   help="a YARA rule file, or a directory of *.yar / *.yara files")  # fmt: skip
    p.add_argument("--timeout", type=int, default=60, metavar="S",
                   help="the engine's time limit per scan, in seconds (default 60); a member "
                   "that takes longer is recorded as skipped")  # fmt: skip
    p.add_argument("--window", type=size_arg, default=64 << 20, metavar="SIZE",
                   help="members larger than this are scanned in overlapping windows of "
                   "this size (default 64M; bounds memory)")  # fmt: skip
    add_output_format(p)
    p.set_defaults(handler=run)


def match_lines(m: dict[str, Any], indent: str = "") -> list[str]:
    """One match for a terminal (every string in it is already escaped text)."""
    tags = f" [{', '.join(map(printable, m.get('tags') or []))}]" if m.get("tags") else ""
    where = printable(str(m.get("member")))
    if m.get("path"):
        where += f" ({printable(str(m['path']))})"
    lines = [f"{indent}MATCH {printable(m['namespace'])}:{printable(m['rule'])}{tags} in {where}"
             f" at offset {m.get('offset', 0)}"]  # fmt: skip
    for k, v in (m.get("meta") or {}).items():
        lines.append(f"{indent}      meta {printable(str(k))} = {printable(str(v))}")
    for s in (m.get("strings") or [])[:5]:
        lines.append(f"{indent}      {printable(s['id'])} @{s['offset']} ({s['length']} bytes): "
                     f"{printable(s['data'])}")  # fmt: skip
    more = int(m.get("string_count") or 0) - min(5, len(m.get("strings") or []))
    if more > 0:
        lines.append(f"{indent}      … {more} more matched strings")
    if m.get("windowed"):
        lines.append(f"{indent}      (found scanning the member in windows)")
    return lines


def _print_result(doc: dict[str, Any], path: Path, sha: str, indent: str = "") -> None:
    r = doc["rules"]
    print(f"{indent}scan of {printable(doc['bundle'])} (manifest sha256 "
          f"{doc.get('manifest_sha256') or 'none: cut off'})")  # fmt: skip
    print(f"{indent}rules {printable(str(r['source']))}: {r['rules']} rules, sha256 {r['sha256']}, "
          f"{printable(r['engine'])}")  # fmt: skip
    print(f"{indent}{doc['members_scanned']} members scanned ({doc['bytes_scanned']} bytes, "
          f"{doc['windowed_members']} in windows); {len(doc['matches'])} matches, "
          f"{len(doc['skips'])} skipped")  # fmt: skip
    for w in doc["warnings"]:
        print(f"{indent}warning: {printable(w)}")
    for m in doc["matches"]:
        for line in match_lines(m, indent):
            print(line)
    for s in doc["skips"]:
        print(f"{indent}SKIP {printable(s['member'])}: {printable(s['reason'])}")
    print(f"{indent}results: {printable(str(path))} sha256 {sha}")


def _scan_one(bundle: Path, args: argparse.Namespace, rules: Any) -> tuple[ScanResult, Path, str]:
    limits = ScanLimits(window=args.window, overlap=min(1 << 20, args.window // 4),
                        timeout_s=args.timeout)  # fmt: skip
    progress = None
    if args.output_format == "text" and sys.stderr.isatty():

        def progress(msg: str) -> None:
            sys.stderr.write(f"\r\x1b[2K{printable(msg)[:100]} …")
            sys.stderr.flush()

    try:
        result = scan_bundle(bundle, rules, limits, progress)
    finally:
        if progress is not None:
            sys.stderr.write("\r\x1b[2K")
    path, sha = save_result(bundle, result)
    return result, path, sha


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise ExuviaError("--timeout must be at least 1 second")
    if args.window < 4096:
        raise ExuviaError("--window must be at least 4K")
    rules = compile_rules(args.rules)  # before anything is read
    if is_case(args.bundle):
        return _run_case(args, rules)
    result, path, sha = _scan_one(args.bundle, args, rules)
    doc = result.to_dict()
    if args.output_format == "json":
        head = {"format": "exuvia-scan-result", "version": 1}
        print_json({**head, **doc, "results_file": str(path), "results_sha256": sha,
                    "exit_status": 0})  # fmt: skip
    else:
        _print_result(doc, path, sha)
    return 0


def _run_case(args: argparse.Namespace, rules: Any) -> int:
    case = load_case(args.bundle)
    out: list[dict[str, Any]] = []
    seen: dict[str, list[str]] = {}
    for b in case.bundles:
        entry: dict[str, Any] = {"label": b.label, "namespace": b.namespace, "pod": b.pod,
                                 "container": b.container}  # fmt: skip
        if not b.captured or b.path is None:
            entry["error"] = f"not captured ({b.status})"
            out.append(entry)
            continue
        try:
            result, path, sha = _scan_one(Path(b.path), args, rules)
        except ExuviaError as err:
            entry["error"] = str(err)
            out.append(entry)
            continue
        doc = result.to_dict()
        entry.update(result=doc, results_file=str(path), results_sha256=sha)
        out.append(entry)
        for fam in sorted({f"{m['namespace']}:{m['rule']}" for m in doc["matches"]}):
            seen.setdefault(fam, []).append(b.label)
    across: list[dict[str, Any]] = [
        {"rule": k, "bundles": v} for k, v in sorted(seen.items()) if len(v) > 1
    ]
    if args.output_format == "json":
        print_json({"format": "exuvia-case-scan-result", "version": 1, "case": case.case_id,
                    "path": str(case.path), "rules": rules.describe(), "bundles": out,
                    "across": across, "exit_status": 0})  # fmt: skip
        return 0
    print(f"scan of case {printable(case.case_id)} ({printable(str(case.path))}): "
          f"{len(case.bundles)} bundle(s), rules sha256 {rules.sha256}")  # fmt: skip
    if across:
        print()
        print("matched in several pods:")
        for a in across:
            print(f"  {printable(a['rule'])}: in {len(a['bundles'])}: "
                  + ", ".join(map(printable, a["bundles"])))  # fmt: skip
    for entry in out:
        print()
        if "error" in entry:
            print(f"== {printable(entry['label'])}: {printable(entry['error'])}")
            continue
        print(f"== {printable(entry['label'])}")
        _print_result(entry["result"], Path(entry["results_file"]), entry["results_sha256"], "  ")
    return 0
