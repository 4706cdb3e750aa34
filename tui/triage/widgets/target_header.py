"""One line about the target: runtime, name, image and digest, node, uptime."""

from __future__ import annotations

import socket
import time

from rich.text import Text
from textual.widgets import Static

from collectors.targets.base import TargetInfo
from tui.triage.text import age, lit


class TargetHeader(Static):
    def __init__(self, target: TargetInfo, view_note: str = "", **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.target = target
        self.view_note = view_note

    def on_mount(self) -> None:
        self.refresh_text()
        self.set_interval(10.0, self.refresh_text)

    def refresh_text(self) -> None:
        t = self.target
        started = t.started_ns or t.created_ns
        line = Text()
        line.append_text(lit(t.runtime, "bold"))
        line.append(" ")
        line.append_text(lit(t.name or t.container_id or f"pid {t.pid}", "bold"))
        line.append("  image ")
        line.append_text(lit(t.image or "?"))
        if t.image_digest:
            line.append(" ")
            line.append_text(lit(t.image_digest[:19], "dim"))
        line.append("  node ")
        line.append_text(lit(socket.gethostname()))
        line.append(f"  up {age(started, time.time())}  pid {t.pid}")
        if self.view_note:
            line.append("\n")
            line.append_text(lit(f"files: {self.view_note}", "dim"))
        self.update(line)
