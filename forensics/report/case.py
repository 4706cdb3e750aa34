"""The HTML report of a case: the case's facts and verification, the findings that
hold in several pods, then every bundle's full report (forensics/report/__init__.py)
in a ``<details>`` of its own (opens without a script)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from forensics import __version__
from forensics.case import verify_case
from forensics.errors import ExuviaError
from forensics.findings.case import CaseFindings, analyze_case
from forensics.report.html import esc, kv_table, page, table
from forensics.timeutil import iso_ns, now_ns

Progress = Callable[[str], None]


def _pre(label: str, i: int) -> str:
    return f"b{i}-" + re.sub(r"[^A-Za-z0-9_-]", "-", label)[:60] + "-"


def _t(ns: int | None) -> str:
    return esc(iso_ns(ns)) if isinstance(ns, int) else "—"


def case_facts(cf: CaseFindings, path: Path) -> str:
    case = cf.case
    try:
        rep = verify_case(path)
    except ExuviaError as err:
        verdict = f'<span class="bad">not verified: {esc(err)}</span>'
        checks: dict[str, str] = {}
    else:
        verdict = (
            f'<span class="ok">OK</span>: case.json and its {rep.verified} bundle(s) verify'
            if rep.ok
            else '<span class="bad">FAILED</span>: '
            + esc("; ".join(rep.problems + [f for c in rep.bundles for f in c.failures()][:20]))
        )
        verdict += (f"; signed by <code>{esc(rep.signed_by)}</code>" if rep.signed_by
                    else "; not signed")  # fmt: skip
        verdict += "; custody sealed" if rep.sealed else "; custody log not sealed"
        checks = {c.bundle.label: "verifies" if c.ok else "FAILED" for c in rep.bundles}
    rows = [
        ("case", esc(case.case_id)),
        ("examiner", esc(case.examiner)),
        ("asked for", f"<code>{esc(case.target)}</code>"),
        ("state", esc(case.state)),
        ("created / sealed", f"{_t(case.created_ns)} / {_t(case.sealed_ns)}"),
        ("directory", f"<code>{esc(str(case.path))}</code>"),
        ("verification", verdict),
    ]
    head = ["bundle", "node", "status", "verification", "findings", "reason"]
    body = []
    for b, r, why in cf.bundles:
        n = f"{len(r.findings)}" if r is not None else "—"
        body.append([f"<code>{esc(b.label)}</code>", esc(b.node), esc(b.status),
                     esc(checks.get(b.label, "—")), esc(n), esc(b.reason or why)])  # fmt: skip
    not_captured = "".join(
        f"<li>{esc(s.namespace)}/{esc(s.name)}: {esc(s.reason)}</li>"
        for s in case.seen_not_captured
    )
    return (
        '<h2 id="case">Case</h2>'
        + kv_table(rows)
        + table(head, body)
        + (
            f"<h3>Seen after resolution, not captured</h3><ul>{not_captured}</ul>"
            if not_captured
            else ""
        )
    )


def across(cf: CaseFindings) -> str:
    out = f'<h2 id="across">Held in several pods ({len(cf.across)})</h2>'
    if not cf.across:
        return out + "<p>No finding holds in more than one bundle.</p>"
    items = []
    for a in cf.across:
        pods = ", ".join(f"<code>{esc(lbl)}</code>" for lbl in a.labels)
        items.append(
            f'<section class="finding sev-{esc(a.severity.label)}"><h3>'
            f'<span class="badge {esc(a.severity.label)}">{esc(a.severity.label)}</span> '
            f"{esc(a.title)}</h3><p>rule <code>{esc(a.rule)}</code> in {len(a.findings)} "
            f"bundles: {pods}</p></section>"
        )
    return out + "".join(items)


def build_case_report(path: str | Path, progress: Progress | None = None) -> str:
    from forensics.report import bundle_body, verify_one  # noqa: PLC0415 - shared pieces

    note = progress or (lambda _m: None)
    cf = analyze_case(path, progress=note)
    case = cf.case
    title = f"exuvia report: case {case.case_id}"
    counts = ", ".join(f"{n} {k}" for k, n in cf.counts.items() if n) or "no findings"
    parts = []
    for i, (b, rep, err) in enumerate(cf.bundles):
        if rep is None or b.path is None:
            parts.append(f"<h2>{esc(b.label)}</h2><p>{esc(err)}</p>")
            continue
        note(f"report of {b.label}")
        verify, verify_error = verify_one(b.path)
        n = len(rep.findings)
        summary = f"{esc(b.label)} — {n} finding{'s' if n != 1 else ''}"
        parts.append(
            f"<details open><summary><b>{summary}</b></summary>"
            + bundle_body(b.path, rep, verify, verify_error, _pre(b.label, i))
            + "</details>"
        )
    body = (
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="sub">generated {esc(iso_ns(now_ns()))} by exuvia {esc(__version__)}: '
        f"{len(case.bundles)} bundle(s), {esc(counts)}</p>"
        '<nav><a href="#case">case</a> · <a href="#across">held in several pods</a></nav>'
        "</header>"
        + case_facts(cf, Path(path))
        + across(cf)
        + "".join(parts)
        + "<footer>Every string taken from a bundle or case.json is shown literally: "
        "control and bidirectional characters as escapes. Times are UTC.</footer>"
    )
    return page(title, body)


__all__ = ["build_case_report"]
