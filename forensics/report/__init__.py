"""`exuvia report`: one self-contained HTML file for a ticket or a court.

    write_report("capture.exv", "report.html")

Sections: case and custody, verification, findings with their evidence, the
process tree, the timeline's event density (inline SVG), the files changed
since start, the software inventory's summary, the blind spots. No script, no
external resource (a Content-Security-Policy forbids any fetch), inline CSS;
every string from the bundle escaped (forensics/report/html.py). Written to a
temporary name, synced, then renamed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from forensics import __version__
from forensics.bundle.verify import VerifyReport, verify_bundle
from forensics.case import is_case
from forensics.errors import ExuviaError, OutputError
from forensics.findings import FindingsReport, analyze_bundle
from forensics.report import sections
from forensics.report.html import esc, page
from forensics.report.svg import density_svg
from forensics.timeline import Query, open_timeline
from forensics.timeutil import iso_ns, now_ns

Progress = Callable[[str], None]
BUCKETS = 120


def timeline_section(bundle: str | Path, rep: FindingsReport, pre: str = "") -> str:
    out = f'<h2 id="{pre}timeline">Timeline</h2>'
    try:
        with open_timeline(bundle) as tl:
            meta = tl.meta
            total = tl.count(Query())
            starts = tl.events(Query(kinds=("container.created", "container.started")), limit=1)
            lo = starts[0].ts if starts else meta.get("time_min")
            ref = meta.get("reference_ns")
            hi = max(x for x in (ref, meta.get("time_max"), lo) if isinstance(x, int))
            if not isinstance(lo, int):
                return out + "<p>The timeline holds no event.</p>"
            hist = tl.histogram(Query(start=lo, end=hi + 1), buckets=BUCKETS)
            before = tl.count(Query(end=lo))
    except ExuviaError as err:
        return out + f"<p>The timeline could not be built: {esc(err)}</p>"
    markers = [(lo, "the container starts", "start")] if starts else []
    markers += [(f.ts, f"{f.severity.label}: {f.title}", "finding")
                for f in rep.findings if f.ts is not None]  # fmt: skip
    svg = density_svg(hist.bins, hist.width, lo, hi, markers)
    cap = (
        f"{total:,} events in all; shown: from the container's start "
        f"({esc(iso_ns(lo))}) to the capture ({esc(iso_ns(hi))}). {before:,} events are older "
        "(mostly the image's file times). Dashed lines: green, the container's start; red, "
        "findings. `exuvia timeline BUNDLE` lists them; `exuvia replay BUNDLE` browses them."
    )
    return out + f"<figure>{svg}<figcaption>{cap}</figcaption></figure>"


def verify_one(bundle: str | Path) -> tuple[VerifyReport | None, str | None]:
    try:
        return verify_bundle(bundle), None
    except ExuviaError as err:
        return None, str(err)


def banner(verify: VerifyReport | None, rep: FindingsReport) -> str:
    if verify is None or not verify.ok:
        return (
            '<div class="banner failed"><b>This bundle did not verify.</b> What follows '
            "was read from it anyway; see Verification.</div>"
        )
    if not rep.complete:
        why = rep.facts.cut or rep.facts.manifest.get("incomplete_reason") or "?"
        return f'<div class="banner"><b>Incomplete capture</b>: {esc(why)}</div>'
    return ""


def bundle_body(bundle: str | Path, rep: FindingsReport, verify: VerifyReport | None,
                verify_error: str | None, pre: str = "") -> str:  # fmt: skip
    """Every section of one bundle's report (ids prefixed with ``pre``)."""
    return (
        banner(verify, rep)
        + sections.case_and_custody(rep, Path(bundle).stat().st_size, pre)
        + sections.verification(verify, verify_error, pre)
        + sections.findings(rep, pre)
        + sections.process_tree(rep, pre)
        + timeline_section(bundle, rep, pre)
        + sections.changed_files(rep, pre)
        + sections.sbom_summary(rep, pre)
        + sections.blind_spots(rep, pre)
    )


def nav(pre: str = "") -> str:
    return " · ".join(
        f'<a href="#{pre}{a}">{esc(b)}</a>'
        for a, b in (("case", "case"), ("verify", "verification"), ("findings", "findings"),
                     ("processes", "processes"), ("timeline", "timeline"),
                     ("changed", "changed files"), ("sbom", "inventory"), ("blind", "blind spots"))
    )  # fmt: skip


FOOTER = (
    "<footer>Every string taken from the bundle is shown literally: control and "
    "bidirectional characters as escapes (\\x1b, \\u202e). Times are UTC. Record "
    "references (member:line) name lines of the bundle's members: <code>exuvia "
    "timeline</code> and <code>exuvia replay</code> open them.</footer>"
)


def build_report(path: str | Path, progress: Progress | None = None) -> str:
    """The report of the bundle (or the case directory) at ``path`` as one HTML document."""
    if is_case(path):
        from forensics.report.case import build_case_report  # noqa: PLC0415

        return build_case_report(path, progress)
    note = progress or (lambda _m: None)
    note("verifying the bundle")
    verify, verify_error = verify_one(path)
    note("running the findings rules")
    rep = analyze_bundle(path, progress=note)
    note("building the timeline")
    t = rep.target
    title = f"exuvia report: {t.get('uri') or t.get('name') or Path(path).name}"
    body = (
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="sub">generated {esc(iso_ns(now_ns()))} by exuvia {esc(__version__)} from '
        f"<code>{esc(Path(path).name)}</code></p><nav>{nav()}</nav></header>"
        + bundle_body(path, rep, verify, verify_error)
        + FOOTER
    )
    return page(title, body)


def write_report(bundle: str | Path, out: str | Path, progress: Progress | None = None) -> Path:
    """Write the report of ``bundle`` (or a case directory) to ``out`` (temporary name,
    fsync, rename)."""
    out = Path(out)
    text = build_report(bundle, progress)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(out)
        dfd = os.open(out.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {err.strerror or err}") from err
    return out


__all__ = ["build_report", "write_report"]
