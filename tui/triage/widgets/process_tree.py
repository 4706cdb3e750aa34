"""The target's processes as a tree; deleted and memfd executables stand out."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from collectors.live.processes import ProcRow, tree_order
from tui.triage.text import lit, size


class ProcessTree(DataTable[Text]):
    """Rows keyed by host pid; ``show(rows)`` keeps the cursor on the same process."""

    COLUMNS = ("PID", "HOST PID", "USER", "CPU%", "RSS", "S", "THR", "COMMAND")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        for col in self.COLUMNS:
            self.add_column(col, key=col)
        self.rows_shown: list[ProcRow] = []

    def show(self, rows: list[ProcRow]) -> None:
        keep = None
        if self.row_count and self.cursor_row < self.row_count:
            keep = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        self.clear()
        ordered = tree_order(rows)
        self.rows_shown = [r for _d, r in ordered]
        for depth, r in ordered:
            style = "bold red" if r.suspicious else ""
            cmd = " ".join(r.cmdline) if r.cmdline else f"[{r.name}]"
            branch = ("  " * (depth - 1) + "└─ ") if depth else ""
            label = Text(branch)
            label.append_text(lit(cmd, style))
            if r.exe_deleted:
                label.append_text(lit(f"  exe: {r.exe}", "red"))
            elif r.exe_memfd:
                label.append_text(lit(f"  exe: {r.exe} (fileless)", "red"))
            self.add_row(
                lit(r.nspid if r.nspid is not None else "?", style),
                lit(r.pid),
                lit(r.uid if r.uid is not None else "?"),
                lit("-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}"),
                lit(size(r.rss_bytes)),
                lit(r.state),
                lit(r.threads),
                label,
                key=str(r.pid),
            )
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep))
