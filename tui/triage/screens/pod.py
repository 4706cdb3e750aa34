"""One container of a Kubernetes pod: its facts, its log, and a capture on `c`.

The live process, file and socket views need the agent inside the pod for as
long as the screen is open; they are not built yet (docs/triage.md says what is
missing). The capture is the one `exuvia capture k8s://…` runs.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from collectors.capture import CaptureResult
from collectors.k8s.pods import PodRow
from forensics.errors import ExuviaError
from forensics.timeutil import now_ns
from tui.triage.screens.capture import capture_options
from tui.triage.session import TriageSession
from tui.triage.text import age, lit, notice

LOG_BYTES = 64 << 10


class PodScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "capture", "Capture (agent)"),
        Binding("o", "open_replay", "Open in replay"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, pod: PodRow, container: str, client: Any, session: TriageSession) -> None:
        super().__init__()
        self.pod = pod
        self.container = container
        self.client = client
        self.session = session
        self.result: CaptureResult | None = None
        self.capturing = False

    def compose(self) -> ComposeResult:
        yield Static(id="pod-header")
        yield Static(id="pod-capture")
        yield RichLog(id="pod-log", wrap=False, markup=False, highlight=False, max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        c = next((c for c in self.pod.containers if c.name == self.container), None)
        t = Text()
        t.append_text(lit(f"k8s {self.pod.namespace}/{self.pod.name}/{self.container}", "bold"))
        if c is not None:
            t.append_text(lit(f"  image {c.image}  {c.state}  restarts {c.restarts}"))
            if c.image_id:
                t.append("\n")
                t.append_text(lit(f"digest {c.image_id}", "dim"))
        t.append("\n")
        t.append_text(lit(f"node {self.pod.node}  phase {self.pod.phase}  "
                          f"age {age(self.pod.created_ns, time.time())}"))  # fmt: skip
        t.append("\nprocesses/files/sockets of a pod: capture it (c) and replay the bundle", "dim")
        self.query_one("#pod-header", Static).update(t)
        self.session.record("target.opened", target=self.pod.uri(self.container))
        self.load_log()
        self.set_interval(5.0, self.load_log)

    @work(thread=True, exclusive=True, group="pod-log")
    def load_log(self) -> None:
        try:
            chunks = self.client.pod_log(
                self.pod.namespace, self.pod.name, self.container,
                previous=False, limit_bytes=LOG_BYTES,
            )  # fmt: skip
            data = b"".join(chunks)
        except ExuviaError as err:
            self.app.call_from_thread(notice, self, str(err), "warning")
            return
        self.app.call_from_thread(self._log, data)

    def _log(self, data: bytes) -> None:
        log = self.query_one("#pod-log", RichLog)
        log.clear()
        for line in data.decode("utf-8", "replace").splitlines()[-500:]:
            log.write(lit(line))

    def action_capture(self) -> None:
        if self.capturing:
            return
        self.capturing = True
        self.session.record("capture.requested", target=self.pod.uri(self.container))
        self.query_one("#pod-capture", Static).update(lit("capture: starting the agent…"))
        self._capture()

    @work(thread=True, exclusive=True, group="pod-capture")
    def _capture(self) -> None:
        from collectors.k8s.capture import K8sCapture, K8sOptions  # noqa: PLC0415
        from collectors.k8s.spec import DEFAULT_IMAGE  # noqa: PLC0415

        o = self.session.opts
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns() / 1e9))
        out = self.session.bundle_path(f"{self.pod.name}-{self.container}", stamp)
        k8s = K8sOptions(
            kubeconfig=o.kubeconfig,
            context=o.context,
            image=o.k8s_image or os.environ.get("EXUVIA_COLLECTOR_IMAGE", DEFAULT_IMAGE),
        )

        def progress(phase: str, _stats: object) -> None:
            self.app.call_from_thread(
                self.query_one("#pod-capture", Static).update, lit(f"capture: {phase}")
            )

        cap = K8sCapture(self.pod.uri(self.container), capture_options(self.session, out), k8s,
                         progress, client=self.client)  # fmt: skip
        cap.custody = self.session.custody_for_capture()
        try:
            res = cap.run()
        except ExuviaError as err:
            self.session.record("capture.failed", error=str(err))
            self.app.call_from_thread(
                self.query_one("#pod-capture", Static).update, lit(f"capture failed: {err}", "red")
            )
            self.capturing = False
            return
        self.session.record("capture.finished", path=str(res.path),
                            manifest_sha256=res.manifest_sha256, complete=res.complete)  # fmt: skip
        self.result = res
        self.capturing = False
        state = "complete" if res.complete else f"INCOMPLETE: {res.incomplete_reason}"
        shown = Text("\n").join(
            [
                lit(f"bundle: {res.path} ({state})"),
                lit(f"manifest sha256: {res.manifest_sha256}"),
                Text("o: open in replay", style="dim"),
            ]
        )
        self.app.call_from_thread(self.query_one("#pod-capture", Static).update, shown)

    def action_open_replay(self) -> None:
        if self.result is not None:
            self.app.exit(("replay", self.result.path))

    def action_back(self) -> None:
        self.app.pop_screen()
