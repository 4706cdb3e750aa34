"""A full capture started from the dashboard: progress, cancel, result.

The capture is the one `exuvia capture` runs (collectors.capture.Capture with
the CLI's options) in a worker thread. Cancelling sets an event the progress
callback turns into CaptureInterrupted, so the result is the same sealed
``.incomplete`` bundle a SIGINT gives on the command line. The session's
custody log (what the examiner did before) is the start of the capture's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static

from collectors.capture import Capture, CaptureOptions, CaptureResult
from collectors.capture_progress import ProgressInfo, ProgressTracker
from collectors.fs.browse import TargetRoot
from collectors.fs.mounts import PSEUDO_DIRS
from collectors.targets.base import TargetInfo
from forensics.errors import ExuviaError
from forensics.timeutil import now_ns
from tui.triage.session import TriageSession
from tui.triage.text import lit, notice, size


def capture_options(session: TriageSession, output: Path) -> CaptureOptions:
    o = session.opts
    return CaptureOptions(
        output=output,
        examiner=o.examiner,
        case=o.case,
        files=o.files,
        procfs=o.procfs,
        argv=["exuvia", "triage", "(capture from the dashboard)"],
        threads=min(2, os.cpu_count() or 1),
    )


class CaptureScreen(ModalScreen[CaptureResult | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "cancel", "Cancel capture"),
        Binding("escape", "close", "Close"),
        Binding("o", "open_replay", "Open in replay"),
    ]

    state: reactive[str] = reactive("running")  # running, cancelling, done, failed

    def __init__(self, target: TargetInfo, root: TargetRoot | None, session: TriageSession) -> None:
        super().__init__()
        self.target = target
        self.root = root
        self.session = session
        self.cancel_event = threading.Event()
        self.result: CaptureResult | None = None
        self._last = 0.0

    def compose(self) -> ComposeResult:
        with Vertical(id="capture-box"):
            yield Static(Text("Capture", style="bold"), id="capture-title")
            yield Static(id="capture-phase")
            yield ProgressBar(total=100, show_eta=False, id="capture-bar")
            yield Static(id="capture-numbers")
            yield Static(id="capture-result")
            yield Static(Text("x: cancel  (sealed as .incomplete)", style="dim"), id="capture-keys")

    def on_mount(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns() / 1e9))
        self.output = self.session.bundle_path(self.target, stamp)
        self.query_one("#capture-title", Static).update(
            Text.assemble(("Capture ", "bold"), lit(self.target.uri), " -> ", lit(self.output))
        )
        self.run_capture()

    def watch_state(self, value: str) -> None:
        for s in ("running", "cancelling", "done", "failed"):
            self.set_class(s == value, f"-{s}")
        if value in ("done", "failed") and self.is_mounted:
            self.query_one("#capture-keys", Static).update(
                Text("o: open in replay   esc: back to the dashboard", style="dim")
            )

    @work(thread=True, exclusive=True, group="capture")
    def run_capture(self) -> None:
        estimate = None
        if self.root is not None:
            self.app.call_from_thread(self._phase, "sizing the filesystem for the ETA")
            try:
                estimate = self.root.estimate(frozenset(PSEUDO_DIRS))
            except OSError:
                estimate = None
        tracker = ProgressTracker(self._progress, cancel=self.cancel_event, estimate=estimate)
        self.session.record("capture.started", output=str(self.output))
        cap = Capture(
            self.target,
            capture_options(self.session, self.output),
            tracker,
            custody=self.session.custody_for_capture(),
        )
        try:
            res = cap.run()
        except ExuviaError as err:
            self.session.record("capture.failed", error=str(err))
            self.app.call_from_thread(self._failed, str(err))
            return
        self.session.record(
            "capture.finished",
            path=str(res.path),
            manifest_sha256=res.manifest_sha256,
            complete=res.complete,
        )
        self.app.call_from_thread(self._done, res)

    def _progress(self, info: ProgressInfo) -> None:
        now = time.monotonic()
        if info.phase == "filesystem" and now - self._last < 0.1:
            return
        self._last = now
        self.app.call_from_thread(self._show, info)

    def _phase(self, text: str) -> None:
        self.query_one("#capture-phase", Static).update(lit(text))

    def _show(self, info: ProgressInfo) -> None:
        self._phase(f"phase: {info.phase}  ({info.elapsed_s:.1f}s)")
        frac = info.fraction
        bar = self.query_one("#capture-bar", ProgressBar)
        if frac is not None:
            bar.update(total=100, progress=frac * 100)
        rate = f"{size(int(info.rate_bps))}/s" if info.rate_bps else "-"
        eta = f"{info.eta_s:.0f}s" if info.eta_s is not None else "-"
        total = f" of {info.total_entries}" if info.total_entries else ""
        self.query_one("#capture-numbers", Static).update(
            Text(
                f"entries {info.entries}{total}  files {info.files}  "
                f"hashed {size(info.bytes_done)}  copied {info.copied_files}  "
                f"rate {rate}  ETA {eta}"
            )
        )

    def _done(self, res: CaptureResult) -> None:
        self.result = res
        self.state = "done"
        bar = self.query_one("#capture-bar", ProgressBar)
        bar.update(total=100, progress=100)
        head = "complete" if res.complete else f"INCOMPLETE: {res.incomplete_reason}"
        out = Text("\n").join(
            [
                lit(f"bundle: {res.path}", "bold"),
                lit(head, "green" if res.complete else "yellow"),
                lit(f"manifest sha256: {res.manifest_sha256}"),
                lit(f"custody log: {res.custody_path}"),
            ]
        )
        self.query_one("#capture-result", Static).update(out)
        self._phase("finished" if res.complete else "cancelled: what was collected is sealed")

    def _failed(self, why: str) -> None:
        self.state = "failed"
        self._phase("failed")
        self.query_one("#capture-result", Static).update(lit(f"capture failed: {why}", "red"))

    def action_cancel(self) -> None:
        if self.state == "running":
            self.state = "cancelling"
            self.cancel_event.set()
            self.session.record("capture.cancel_requested")
            self._phase("cancelling: sealing what was collected…")

    def action_close(self) -> None:
        if self.state in ("done", "failed"):
            self.dismiss(self.result)
        else:
            notice(self, "capture running: x cancels it")

    def action_open_replay(self) -> None:
        if self.result is not None:
            self.session.record("replay.requested", path=str(self.result.path))
            self.app.exit(("replay", self.result.path))
