"""During playback: the process tree, with the processes alive at the cursor time."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from forensics.snapshot import Snapshot
from tui.replay.render import fmt_time, safe


def alive_text(snap: Snapshot | None, ts: int) -> Text:
    t = Text("alive at ", style="bold").append(fmt_time(ts)).append("\n")
    if snap is None:
        return t.append("(loading the snapshot …)", style="dim")
    alive = snap.alive_at(ts)
    for depth, proc in snap.tree():
        pid = proc.get("pid")
        on = pid in alive
        line = Text("  " * depth + ("● " if on else "○ "), style="green" if on else "dim")
        label = f"{proc.get('nspid', '?')} {proc.get('name', '?')}"
        line.append_text(safe(label, "" if on else "dim"))
        if on and (proc.get("exe_deleted") or proc.get("exe_memfd")):
            line.append(
                "  deleted exe" if proc.get("exe_deleted") else "  memfd exe", style="bold red"
            )
        t.append_text(line).append("\n")
    return t


class AlivePanel(Static):
    def show(self, snap: Snapshot | None, ts: int) -> None:
        self.update(alive_text(snap, ts))
