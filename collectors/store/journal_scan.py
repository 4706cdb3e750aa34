"""``--scan`` of what ``exuvia push JOURNAL`` finishes in the store.

A fleet captured with ``--scan RULES -o s3://…/`` records the rules in its
journal (the ``store.case`` custody entry's ``scan``: the absolute path and the
rule set's SHA-256). A bundle the fleet could not scan where it is stored (kept
in two places while the store was gone, salvaged from a killed client's spool,
sealed just before the client died) is scanned by push once it is in the store:
its object read back as a stream by the code ``--scan`` of a store capture runs
(collectors/store/scan.py), the results put beside it as ``NAME.yara.json`` with
the same lock and ``If-None-Match: *``, and ``bundle.scanned`` appended to the
case's custody log (which goes up after). Rules that are gone, or are no
longer the ones recorded, are one line on stderr, and each such bundle is
recorded ``bundle.scan_failed`` (unscanned), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from collectors.store.client import Store, StoreError
from collectors.store.lock import LockSpec
from collectors.store.push import Pushed
from collectors.store.seal import SCAN_SUFFIX
from collectors.store.uri import S3Url
from forensics.case.format import COMPLETE, CUSTODY_FILE, INCOMPLETE
from forensics.case.writer import AppendingCustody, read_custody_entries
from forensics.custody import default_operator
from forensics.errors import ExuviaError


def recorded_rules(directory: Path) -> dict[str, Any] | None:
    """The ``scan`` of the journal's ``store.case`` entry, if the fleet had ``--scan``."""
    for entry in _entries(directory):
        if entry.get("action") == "store.case":
            scan = (entry.get("details") or {}).get("scan")
            return scan if isinstance(scan, dict) and isinstance(scan.get("rules"), str) else None
    return None


def scan_finished(  # noqa: PLR0917 - one call site
    store: Store, directory: Path, base: S3Url, lock: LockSpec, doc: dict[str, Any],
    present: set[str],
) -> list[Pushed]:  # fmt: skip
    """Scan each bundle of ``doc`` in the store without results beside it (in the
    store or in the journal); the results objects put."""
    recorded = recorded_rules(directory)
    if recorded is None:
        return []
    todo = [b for b in doc["bundles"] if b.get("status") in (COMPLETE, INCOMPLETE)
            and b.get("file") and base.child(str(b["file"]) + SCAN_SUFFIX).key not in present
            and not (directory / (str(b["file"]) + SCAN_SUFFIX)).exists()]  # fmt: skip
    if not todo:
        return []
    rules, why = _rules(recorded)
    if why:
        sys.stderr.write(f"exuvia: push: {why}; {len(todo)} bundle(s) recorded unscanned\n")
    from collectors.store.scan import scan_object  # noqa: PLC0415 - the engine on demand
    from forensics.scan.engine import ScanLimits  # noqa: PLC0415
    from forensics.scan.sidecar import summary  # noqa: PLC0415

    out: list[Pushed] = []
    custody = _custody(directory)
    try:
        for b in todo:
            where = {"namespace": b.get("namespace"), "pod": b.get("pod"),
                     "container": b.get("container"), "file": b["file"],
                     "by": "exuvia push", "rules": recorded["rules"],
                     "rules_sha256": recorded.get("sha256")}  # fmt: skip
            if rules is None:
                custody.record("bundle.scan_failed", **where, error=why)
                continue
            try:
                s = scan_object(store, base.child(str(b["file"])), rules, ScanLimits(), lock)
            except StoreError:
                raise  # the store: push fails and says so, the journal is kept
            except ExuviaError as err:
                sys.stderr.write(f"exuvia: push: {b['file']} not scanned: {err}\n")
                custody.record("bundle.scan_failed", **where, error=str(err))
                continue
            custody.record("bundle.scanned", **where, **summary(s.result, str(s.url), s.sha256))
            out.append(Pushed(str(s.url), s.bytes, s.sha256, None, s.version_id,
                              lock.describe(lock.until())))  # fmt: skip
    finally:
        custody.close()
    return out


def _rules(recorded: dict[str, Any]) -> tuple[Any, str]:
    """The recorded rules compiled, or why they cannot be."""
    from forensics.scan.rules import compile_rules  # noqa: PLC0415 - the engine on demand

    path = str(recorded["rules"])
    try:
        rules = compile_rules(Path(path))
    except ExuviaError as err:
        return None, f"the --scan rules of the capture cannot be used ({err})"
    if recorded.get("sha256") and rules.sha256 != recorded["sha256"]:
        now, then = rules.sha256[:16], str(recorded["sha256"])[:16]
        return None, (f"the --scan rules {path} have changed since the capture (sha256 "
                      f"{now}…, recorded {then}…)")  # fmt: skip
    return rules, ""


def _entries(directory: Path) -> list[dict[str, Any]]:
    try:
        return read_custody_entries(directory / CUSTODY_FILE)
    except ExuviaError:
        return []


def _custody(directory: Path) -> AppendingCustody:
    """The case's custody log (sealed or not), appended to in sequence."""
    log = AppendingCustody(examiner=default_operator(), path=directory / CUSTODY_FILE)
    log.entries = _entries(directory)
    log.open(append=True)
    return log
