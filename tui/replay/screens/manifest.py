"""`M`: the manifest, the custody log, the skips, and what verification found."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from forensics.bundle.verify import VerifyReport
from forensics.snapshot import Snapshot
from tui.replay.render import safe, safe_block


def custody_text(entries: list[dict[str, Any]]) -> Text:
    t = Text()
    for e in entries:
        t.append(f"{e.get('seq', '?'):>4} ", style="dim")
        t.append_text(safe(e.get("ts", "?"))).append("  ")
        t.append_text(safe(e.get("action", "?"), "bold")).append("  ")
        t.append_text(safe(f"{e.get('examiner', '?')}@{e.get('host', '?')}")).append("\n")
        details = e.get("details")
        if details:
            t.append_text(
                safe_block(json.dumps(details, ensure_ascii=False, sort_keys=True), "dim")
            )
            t.append("\n")
    return t or Text("(no custody log)", style="dim")


def verify_text(report: VerifyReport | None, snap: Snapshot) -> Text:
    t = Text()
    if report is None:
        t.append("verification still running …\n", style="yellow")
    else:
        ok = report.ok
        t.append(
            "verification: " + ("OK" if ok else "FAILED") + "\n",
            style="bold green" if ok else "bold red",
        )
        t.append(f"members verified: {report.members_verified} of {report.members_read} read\n")
        t.append(f"complete: {report.complete}")
        if report.incomplete_reason:
            t.append("  (").append_text(safe(report.incomplete_reason)).append(")")
        t.append(
            f"\nfile sha256:     {report.file_sha256}\nmanifest sha256: {report.manifest_sha256}\n"
        )
        for line in report.failures():
            t.append("  ").append_text(safe(line, "red")).append("\n")
    for p in snap.problems:
        t.append("snapshot: ").append_text(safe(p, "yellow")).append("\n")
    return t


class ManifestScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, snap: Snapshot, report: VerifyReport | None) -> None:
        super().__init__()
        self.snap = snap
        self.report = report

    def compose(self) -> ComposeResult:
        manifest = dict(self.snap.manifest)
        members = manifest.pop("members", None)
        with TabbedContent():
            with TabPane("Verification", id="tab-verify"), VerticalScroll():
                yield Static(verify_text(self.report, self.snap))
            with TabPane("Manifest", id="tab-manifest"), VerticalScroll():
                body = safe_block(
                    json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True)
                )
                if isinstance(members, list | dict):
                    body.append(
                        f"\n\nmembers: {len(members)} (sizes and SHA-256 of each)", style="dim"
                    )
                yield Static(body)
            with TabPane("Custody", id="tab-custody"), VerticalScroll():
                yield Static(custody_text(self.snap.custody))
            with TabPane(f"Skips ({len(self.snap.skips)})", id="tab-skips"), VerticalScroll():
                t = Text()
                for s in self.snap.skips:
                    t.append_text(safe(s.get("subject", "?"), "bold")).append("  ")
                    t.append_text(
                        safe(f"{s.get('collector', '?')}: {s.get('reason', '?')}")
                    ).append("\n")
                yield Static(t or Text("(nothing skipped)", style="dim"))
        yield Footer()
