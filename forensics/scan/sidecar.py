"""Scan results kept beside the evidence, never in it: ``<bundle>.yara.json``.

Like the examiner's notes (forensics/notes.py) the bundle is left exactly as
captured. The file names the bundle's manifest SHA-256 and the rule set's
SHA-256, ends with ``self_check`` (the SHA-256 of the canonical JSON of
everything else), and is written atomically (forensics/atomic.py). When the
bundle's directory is not writable it goes under the user's cache directory
(``$XDG_CACHE_HOME/exuvia/scan/<manifest sha256>.yara.json``). A new scan
replaces the previous one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from forensics.atomic import sidecar_path, user_cache_dir, write_atomic
from forensics.errors import BundleError
from forensics.scan.model import ScanResult

SCAN_FORMAT = "exuvia-yara-scan"
SCAN_VERSION = 1
SUFFIX = ".yara.json"
MAX_SIDECAR = 256 << 20


def _user_dir() -> Path:
    return user_cache_dir("scan")


def _candidates(bundle: Path, manifest_sha256: str | None) -> list[Path]:
    out = [bundle.with_name(bundle.name + SUFFIX)]
    if manifest_sha256:
        out.append(_user_dir() / f"{manifest_sha256}{SUFFIX}")
    return out


def result_path(bundle: Path, manifest_sha256: str | None = None) -> Path | None:
    """The existing scan results of ``bundle``, or None."""
    for p in _candidates(bundle, manifest_sha256):
        if p.is_file():
            return p
    return None


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()


def render_result(result: ScanResult) -> bytes:
    """The results file's bytes (self-checked, canonical JSON), wherever they are kept."""
    doc: dict[str, Any] = {"format": SCAN_FORMAT, "version": SCAN_VERSION, **result.to_dict()}
    doc["self_check"] = hashlib.sha256(_canonical(doc)).hexdigest()
    return _canonical(doc) + b"\n"


def save_result(bundle: Path, result: ScanResult) -> tuple[Path, str]:
    """Write the results beside ``bundle`` (or in the user's cache); (path, file SHA-256)."""
    data = render_result(result)
    sha = result.manifest_sha256
    path = sidecar_path(bundle, SUFFIX, _user_dir() / f"{sha}{SUFFIX}" if sha else None)
    write_atomic(path, data, "scan results", mode=0o640)
    return path, hashlib.sha256(data).hexdigest()


def load_result(path: Path, manifest_sha256: str | None = None) -> dict[str, Any]:
    """A scan results file, checked: its format, its self_check, and (when given)
    that it is about the bundle whose manifest hash is ``manifest_sha256``."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SIDECAR + 1)
    except OSError as err:
        raise BundleError(f"cannot read the scan results {path}: {err.strerror}") from err
    if len(data) > MAX_SIDECAR:
        raise BundleError(f"the scan results {path} are too large; refused")
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"the scan results {path} are not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != SCAN_FORMAT:
        raise BundleError(f"{path} is not an exuvia scan results file")
    if doc.get("version") != SCAN_VERSION:
        raise BundleError(f"{path}: scan results version {doc.get('version')!r} not understood")
    check = doc.pop("self_check", None)
    if check != hashlib.sha256(_canonical(doc)).hexdigest():
        raise BundleError(f"{path}: the scan results were altered (self_check does not match)")
    if manifest_sha256 is not None and doc.get("manifest_sha256") != manifest_sha256:
        raise BundleError(f"{path}: the scan results are about another bundle (manifest hash)")
    return doc


def signature(bundle: Path, manifest_sha256: str | None) -> str:
    """What identifies the current scan results of ``bundle`` (size, mtime, inode), or
    '' when there are none: the timeline cache is rebuilt when it changes."""
    path = result_path(bundle, manifest_sha256)
    if path is None:
        return ""
    try:
        st = path.stat()
    except OSError:
        return ""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def summary(result: ScanResult, results_file: str, results_sha256: str) -> dict[str, Any]:
    """A scan in short: the ``scan`` object of a capture's result (docs/scripting.md)
    and the details of a case's ``bundle.scanned`` custody entry."""
    return {
        "matches": len(result.matches),
        "rules_matched": sorted({m.family for m in result.matches}),
        "members_scanned": result.members_scanned,
        "skipped": len(result.skips),
        "scan_complete": result.complete,
        "results_file": results_file,
        "results_sha256": results_sha256,
    }
