"""YARA matches as timeline events of their own kind, ``yara.match`` (source ``scan``).

Two places hold matches: the ``yara`` records inside the bundle (written by
``capture --scan`` while the files were read) and the scan results beside the
bundle (``<bundle>.yara.json``, written by ``exuvia scan``; checked against the
bundle's manifest hash and its own self_check). A match is about bytes as they
were captured, not about a moment of the target's life: its time is when the
bytes were read (``capture --scan``) or the capture's end (``exuvia scan``),
flagged inferred with ``time_from`` saying which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.errors import BundleError
from forensics.scan.sidecar import load_result, result_path
from forensics.timeline.events import Flag, Kind, Source
from forensics.timeline.fs import parse_json_line
from forensics.timeline.sink import Sink
from forensics.timeline.text import one_line

YARA_COLLECTOR = "yara"
#: 1.x: one member; 2.0 writes chunks ``artifacts/yara/NNNNNN.jsonl`` (both are read)
YARA_MEMBER = "artifacts/yara.jsonl"
_SCAN = int(Source.SCAN)
_KIND = int(Kind.YARA_MATCH)


def match_message(m: dict[str, Any]) -> str:
    tags = m.get("tags")
    tag_text = f" [{', '.join(map(str, tags))}]" if isinstance(tags, list) and tags else ""
    where = m.get("path") or m.get("member") or "?"
    return one_line(
        f"YARA {m.get('namespace', '?')}:{m.get('rule', '?')}{tag_text} matched {where}"
        f" at offset {m.get('offset', '?')}"
    )


Attrs = dict[str, Any]


def _emit(sink: Sink, m: Attrs, ts: int, ref: tuple[int, int], attrs: Attrs) -> None:
    entity = str(m.get("path") or m.get("member") or "?")
    row_attrs = {**m, **attrs}
    sink.event(
        (_SCAN, _KIND, ts, None, int(Flag.TIME_INFERRED), entity, match_message(m), ref[0], ref[1],
         json.dumps(row_attrs, default=str))
    )  # fmt: skip


def extract_capture_matches(
    members: list[tuple[str, bytes]], sink: Sink, ref_ns: int | None
) -> None:
    """The ``yara_match`` records ``capture --scan`` wrote into the bundle: (member, its
    bytes) in bundle order, the one 1.x member or the 2.0 chunks."""
    for name, data in members:
        _capture_member(name, data, sink, ref_ns)


def _capture_member(name: str, data: bytes, sink: Sink, ref_ns: int | None) -> None:
    mid = sink.member(name)
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        rec, why = parse_json_line(raw)
        if why is not None or not isinstance(rec, dict):
            sink.problem("record_malformed", name, n, why or "not an object")
            continue
        if rec.get("kind") != "yara_match":
            continue
        ts = rec.get("ts_ns")
        if not isinstance(ts, int) or isinstance(ts, bool):
            ts = ref_ns or 0
        extra = {"time_from": "read at capture", "found_by": "capture --scan"}
        _emit(sink, rec, ts, (mid, n), extra)


def extract_sidecar_matches(bundle: Path, manifest_sha256: str | None, sink: Sink,
                            ref_ns: int | None) -> None:  # fmt: skip
    """The matches of ``exuvia scan`` kept beside the bundle, if any."""
    path = result_path(bundle, manifest_sha256)
    if path is None:
        return
    try:
        doc = load_result(path, manifest_sha256)
    except BundleError as err:
        sink.warn(f"scan results not used: {err}")
        return
    matches = doc.get("matches")
    if not isinstance(matches, list):
        return
    ts = ref_ns or doc.get("finished_ns") or 0
    rules_doc = doc.get("rules")
    rules: dict[str, Any] = rules_doc if isinstance(rules_doc, dict) else {}
    extra = {
        "time_from": "capture end (exuvia scan)",
        "found_by": "exuvia scan",
        "results_file": str(path),
        "rules_sha256": rules.get("sha256"),
        "scanned_ns": doc.get("finished_ns"),
    }
    mid = sink.member(path.name)
    for n, m in enumerate(matches, 1):
        if isinstance(m, dict):
            _emit(sink, m, int(ts), (mid, n), extra)
