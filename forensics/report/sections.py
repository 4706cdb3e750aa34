"""The report's sections, each a function from gathered facts to HTML.

Every value that comes from the bundle passes through :func:`esc`; labels and
structure are ours.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from forensics.bundle.verify import VerifyReport
from forensics.findings import Finding, FindingsReport
from forensics.findings.facts import Rec, argv, exe_path
from forensics.report.html import esc, kv_table, table, tag
from forensics.snapshot import Snapshot
from forensics.timeutil import iso_ns

MAX_ROWS = 500


def _t(ns: Any) -> str:
    return esc(iso_ns(ns)) if isinstance(ns, int) and not isinstance(ns, bool) else "—"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def case_and_custody(rep: FindingsReport, file_bytes: int, pre: str = "") -> str:
    m, t = rep.facts.manifest, rep.target
    acq, host = _d(m.get("acquisition")), _d(m.get("host"))
    rows = [
        ("case", esc(m.get("case"))),
        ("examiner", esc(m.get("examiner"))),
        ("examiner's host", esc(" ".join(str(host.get(k) or "") for k in
                                        ("hostname", "kernel", "machine")).strip() or None)),
        ("target", f"<code>{esc(t.get('uri'))}</code> ({esc(t.get('runtime'))} "
                   f"{esc(t.get('runtime_version'))})"),
        ("container", f"<code>{esc(t.get('container_id'))}</code> name {esc(t.get('name'))}"),
        ("image", f"<code>{esc(t.get('image'))}</code> digest <code>"
                  f"{esc(t.get('image_digest'))}</code>"),
        ("container started", _t(t.get("started_ns"))),
        ("acquisition", f"{_t(acq.get('start_ns'))} — {_t(acq.get('end_ns'))} UTC"),
        ("command line", f"<code>{esc(' '.join(map(str, m.get('command_line') or [])))}</code>"),
        ("tool", esc(_d(m.get("tool")).get("version"))),
        ("bundle file", f"<code>{esc(rep.bundle)}</code>, {file_bytes:,} bytes"),
        ("manifest SHA-256", f"<code>{esc(rep.facts.manifest_sha256)}</code>"),
    ]  # fmt: skip
    head = ["#", "time (UTC)", "action", "examiner", "details"]
    custody = rep.facts.custody
    rows_c = [
        [esc(c.get("seq")), _t(c.get("ts_ns")), f"<code>{esc(c.get('action'))}</code>",
         esc(c.get("examiner")), f'<span class="mono">{esc(_details(c.get("details")))}</span>']
        for c in custody[:MAX_ROWS]
    ]  # fmt: skip
    more = f"<p>… {len(custody) - MAX_ROWS} more entries</p>" if len(custody) > MAX_ROWS else ""
    return (
        f'<h2 id="{pre}case">Case and custody</h2>'
        + kv_table(rows)
        + f"<h3>Chain of custody inside the bundle ({len(custody)} entries)</h3>"
        + (table(head, rows_c) if custody else "<p>The bundle holds no custody log.</p>")
        + more
    )


def _details(d: Any) -> str:
    if not isinstance(d, dict):
        return "" if d is None else str(d)
    return ", ".join(f"{k}={v}" for k, v in d.items())[:400]


def verification(v: VerifyReport | None, error: str | None, pre: str = "") -> str:
    out = f'<h2 id="{pre}verify">Verification</h2>'
    if v is None:
        return out + f'<p class="bad">not verified: {esc(error)}</p>'
    if v.ok:
        state = '<span class="ok">OK</span>: every member matches the manifest'
        if not v.complete:
            state += f' — <span class="warn">INCOMPLETE capture</span>: {esc(v.incomplete_reason)}'
    else:
        state = '<span class="bad">FAILED</span>: the bundle does not match its manifest'
    rows = [
        ("result", state),
        ("members verified", esc(v.members_verified)),
        ("file SHA-256", f"<code>{esc(v.file_sha256)}</code>"),
        ("manifest SHA-256", f"<code>{esc(v.manifest_sha256)}</code>"),
        ("signature", f"valid, key <code>{esc(v.signed_by)}</code>" if v.signed_by else "none"),
        ("custody seal", "matches the sidecar custody log" if v.sidecar_checked
         else "sidecar custody log not found beside the bundle; not checked"),
    ]  # fmt: skip
    body = kv_table(rows)
    fails = v.failures()
    if fails or not v.has_manifest:
        items = "".join(f"<li><code>{esc(x)}</code></li>" for x in fails[:MAX_ROWS])
        if not v.has_manifest:
            items = f"<li>{esc(v.incomplete_reason or 'no manifest')}</li>" + items
        body += f'<div class="banner failed"><ul>{items}</ul></div>'
    notes = "".join(f"<li>{esc(n)}</li>" for n in v.notes)
    return out + body + (f"<ul>{notes}</ul>" if notes else "")


def findings(rep: FindingsReport, pre: str = "") -> str:
    counts = ", ".join(f"{n} {k}" for k, n in rep.counts.items() if n) or "none"
    out = f'<h2 id="{pre}findings">Findings ({len(rep.findings)}: {esc(counts)})</h2>'
    if not rep.findings:
        out += "<p>No rule found anything in this bundle (see the blind spots below).</p>"
    return out + "".join(finding_html(f, pre) for f in rep.findings)


def finding_html(f: Finding, pre: str = "") -> str:
    ev = "".join(
        f"<li><code>{esc(e.member)}:{e.line}</code> — {esc(e.role)}"
        + (f': <span class="mono">{esc(e.text)}</span>' if e.text else "")
        + "</li>"
        for e in f.evidence
    )
    where = f"<p>in {esc(f.where.get('label'))}</p>" if f.where else ""
    when = f" · {_t(f.ts)}" if f.ts is not None else ""
    return tag(
        "section",
        f'<h3><span class="badge {esc(f.severity.label)}">{esc(f.severity.label)}</span> '
        f"{esc(f.title)}</h3>{where}"
        f"<p>{esc(f.rationale)}</p>"
        f'<p class="meta"><code>{esc(f.id)}</code> · rule <code>{esc(f.rule)}</code> · evidence '
        f"{esc(f.strength.label)}{when}</p><ul>{ev}</ul>",
        f"finding sev-{f.severity.label}",
        id=f"{pre}f-" + f.id.replace(":", "-"),
    )


def process_tree(rep: FindingsReport, pre: str = "") -> str:
    recs = {p.get("pid"): p for p in rep.facts.processes}
    marked: dict[Any, list[str]] = {}
    for f in rep.findings:
        for e in f.evidence:
            if e.pivot == "process":
                marked.setdefault(e.key, []).append(f.severity.label)
    snap = Snapshot(processes=[p.data for p in rep.facts.processes])
    out = [f'<h2 id="{pre}processes">Process tree ({len(recs)} processes)</h2><ul class="tree">']
    depth = 0
    first = True
    for d, proc in snap.tree():
        if first:
            first = False
        elif d > depth:
            out.append("<ul>")
        else:
            out.append("</li>" + "</ul></li>" * (depth - d))
        depth = d
        out.append("<li>" + _proc_line(recs[proc.get("pid")], marked.get(proc.get("pid"), [])))
    if not first:
        out.append("</li>" + "</ul></li>" * depth)
    out.append("</ul>")
    return "".join(out) if recs else out[0] + "</ul><p>No process records.</p>"


def _proc_line(p: Rec, sev: list[str]) -> str:
    uid = p.get("uid")
    user = uid.get("effective") if isinstance(uid, dict) else uid
    flags = []
    if p.get("exe_memfd"):
        flags.append("memfd executable")
    elif p.get("exe_deleted"):
        flags.append("deleted executable")
    badge = (f' <span class="badge {esc(sev[0])}">{len(sev)} finding'
             f'{"s" if len(sev) > 1 else ""}</span>') if sev else ""  # fmt: skip
    flag = "".join(f' <span class="flag">[{esc(x)}]</span>' for x in flags)
    return (
        f"<code>{esc(p.get('nspid'))}</code> (host {esc(p.get('pid'))}) <b>{esc(p.get('name'))}</b>"
        f' uid {esc(user)} <span class="mono">{esc(" ".join(argv(p))[:300])}</span>'
        f' — <span class="mono">{esc(exe_path(p))}</span>{flag}{badge}'
    )


def changed_files(rep: FindingsReport, pre: str = "") -> str:
    changed = rep.facts.changed
    out = f'<h2 id="{pre}changed">Files changed since start ({len(changed)})</h2>'
    if not rep.facts.upper_known:
        return out + "<p>Unknown: no overlay upper layer was visible to the capture.</p>"
    rows = []
    for f in changed[:MAX_ROWS]:
        gone = f.get("type") == "whiteout" or f.get("deleted") is True
        rows.append([
            f'<span class="mono">{esc(f.get("path"))}</span>',
            '<span class="flag">deleted</span>' if gone else esc(f.get("type")),
            esc(f.get("size")), esc(f.get("mode")), _t(f.get("mtime_ns")),
            f'<span class="mono">{esc(f.get("sha256"))}</span>',
        ])  # fmt: skip
    more = f"<p>… {len(changed) - MAX_ROWS} more</p>" if len(changed) > MAX_ROWS else ""
    head = ["path", "type", "size", "mode", "modified (UTC)", "SHA-256"]
    return out + (table(head, rows) if rows else "<p>Nothing changed.</p>") + more


def sbom_summary(rep: FindingsReport, pre: str = "") -> str:
    inv = rep.facts.inventory
    out = f'<h2 id="{pre}sbom">Software inventory</h2>'
    if inv is None:
        return out + "<p>Not built.</p>"
    cov = inv.coverage
    eco = Counter(p.ecosystem for p in inv.packages)
    rows = [
        ("operating system", esc(inv.os.get("PRETTY_NAME") or inv.os.get("ID"))),
        ("packages", esc(", ".join(f"{k} {n}" for k, n in sorted(eco.items())) or "none")),
        ("executables", f"{cov.total}, of which {cov.accounted} accounted for by a package"
                        + (f" ({cov.percent} %)" if cov.percent is not None else "")),
    ]  # fmt: skip
    lists = [
        ("not accounted for", cov.unaccounted),
        ("added after start", cov.added_after_start),
        ("differ from their package", cov.modified),
        ("unparseable", cov.unparseable),
    ]
    for label, items in lists:
        if items:
            shown = "<br>".join(f'<span class="mono">{esc(x)}</span>' for x in items[:100])
            rows.append((f"{label} ({len(items)})", shown))
    return (
        out
        + kv_table(rows)
        + "<p>The full SBOM: <code>exuvia sbom BUNDLE --format cyclonedx-json</code> "
        "(or spdx-json).</p>"
    )


def blind_spots(rep: FindingsReport, pre: str = "") -> str:
    items = "".join(f"<li>{esc(b)}</li>" for b in rep.blind_spots)
    probs = "".join(f"<li>{esc(p)}</li>" for p in rep.facts.problems)
    out = f'<h2 id="{pre}blind">Blind spots</h2>'
    out += f"<ul>{items}</ul>" if items else "<p>None noted.</p>"
    if probs:
        out += f"<h3>What could not be read</h3><ul>{probs}</ul>"
    return out


__all__ = [
    "blind_spots",
    "case_and_custody",
    "changed_files",
    "finding_html",
    "findings",
    "process_tree",
    "sbom_summary",
    "verification",
]
