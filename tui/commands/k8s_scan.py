"""``exuvia capture k8s://… --scan RULES``: each bundle scanned once it is sealed.

The in-pod agent does not scan; the client scans what each bundle holds once it
is sealed, with the same code and limits as ``exuvia scan BUNDLE`` (forensics/scan:
captured files, executables, memory), and writes the same ``<bundle>.yara.json``
sidecar beside it, so timeline, replay, findings and ``exuvia scan CASE``'s
"matched in several pods" read it as they read any scan. The rules are compiled
before anything is captured (a rule that does not compile is one line, exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forensics.scan.sidecar import summary
from forensics.textsafe import printable

Scanner = Callable[[Path], dict[str, Any]]
#: called with the sealed bundle's S3Url
StoreScanner = Callable[[Any], dict[str, Any]]


def sealed_scanner(args: argparse.Namespace) -> Scanner | None:
    """The ``--scan`` rules compiled (RulesError: FILE:LINE), or None without ``--scan``."""
    if getattr(args, "scan", None) is None:
        return None
    # the engine (yara_x) only when asked
    from forensics.scan.bundle import scan_bundle  # noqa: PLC0415
    from forensics.scan.engine import ScanLimits  # noqa: PLC0415
    from forensics.scan.rules import compile_rules  # noqa: PLC0415
    from forensics.scan.sidecar import save_result  # noqa: PLC0415

    rules = compile_rules(args.scan)
    limits = ScanLimits()

    def scan(bundle: Path) -> dict[str, Any]:
        result = scan_bundle(bundle, rules, limits)
        path, sha = save_result(bundle, result)
        return summary(result, str(path), sha)

    return scan


def store_scanner(
    args: argparse.Namespace, store: Any, lock: Any, on_rules: Callable[[Any], None] | None = None
) -> StoreScanner | None:
    """``--scan`` with ``-o s3://``: each bundle scanned from its sealed object, read
    back from the store as a stream (no local copy), its results put beside it as
    ``<key>.yara.json`` (collectors/store/scan.py); a bundle given as a local Path
    (a fleet's pod captured into the journal while the store was gone) is scanned
    there, its results beside it, pushed with it. ``on_rules``: told the compiled
    rules (a fleet records them in its journal). None without ``--scan``."""
    if getattr(args, "scan", None) is None:
        return None
    from collectors.store.scan import scan_object  # noqa: PLC0415 - boto3 and the engine
    from forensics.scan.bundle import scan_bundle  # noqa: PLC0415
    from forensics.scan.engine import ScanLimits  # noqa: PLC0415
    from forensics.scan.rules import compile_rules  # noqa: PLC0415
    from forensics.scan.sidecar import save_result  # noqa: PLC0415

    rules = compile_rules(args.scan)
    limits = ScanLimits()
    if on_rules is not None:
        on_rules(rules)

    def scan(sealed: Any) -> dict[str, Any]:
        if isinstance(sealed, Path):  # captured locally while the store was gone: there
            result = scan_bundle(sealed, rules, limits)
            path, sha = save_result(sealed, result)
            return summary(result, str(path), sha)
        s = scan_object(store, sealed, rules, limits, lock)
        return summary(s.result, str(s.url), s.sha256)

    return scan


def scan_sealed(scanner: Callable[[Any], dict[str, Any]], sealed: Any, progress: Any,
                what: str = "scanning the bundle") -> dict[str, Any]:  # fmt: skip
    """Scan one sealed bundle (a path or the store's S3Url); a failure is the scan's
    ``error`` (the bundle is sealed and kept: the capture says why and exits 3)."""
    from forensics.errors import ExuviaError  # noqa: PLC0415

    progress(what, None)
    try:
        return scanner(sealed)
    except ExuviaError as err:
        return {"error": str(err)}


def exit_status(complete: bool, scan: dict[str, Any] | None) -> int:
    """0 complete, 3 incomplete or (with --scan) not scanned (docs/scripting.md)."""
    return 3 if not complete or (scan is not None and "error" in scan) else 0


def across(scans: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules that matched in more than one bundle, with the bundles (as
    ``exuvia scan CASE`` lists them)."""
    seen: dict[str, list[str]] = {}
    for label, s in sorted(scans.items()):
        for rule in s.get("rules_matched") or []:
            seen.setdefault(rule, []).append(label)
    return [{"rule": k, "bundles": v} for k, v in sorted(seen.items()) if len(v) > 1]


def scan_lines(scans: dict[str, dict[str, Any]]) -> list[str]:
    """The scan part of the capture's text summary."""
    hit = {k: s for k, s in scans.items() if s.get("matches")}
    failed = {k: s for k, s in scans.items() if "error" in s}
    total = sum(int(s.get("matches") or 0) for s in scans.values())
    lines = [
        f"scan:            {total} matches in {len(hit)} of {len(scans)} bundles"
        + (f", {len(failed)} not scanned" if failed else "")
    ]
    for label, s in sorted(hit.items()):
        rules = ", ".join(map(printable, s["rules_matched"]))
        lines.append(f"  {printable(label)}: {rules}")
    for label, s in sorted(failed.items()):
        lines.append(f"  {printable(label)}: not scanned: {printable(str(s['error']))}")
    for a in across(scans):
        lines.append(
            f"  matched in several pods: {printable(a['rule'])}: "
            + ", ".join(map(printable, a["bundles"]))
        )
    return lines
