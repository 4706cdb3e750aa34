"""Browse the target's root (read-only), view a file as text or hex, hash on demand."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, RichLog, Static

from collectors.fs.browse import DirEntry, TargetRoot
from collectors.live.remote import RemoteRoot
from forensics.errors import ExuviaError
from tui.triage.session import TriageSession
from tui.triage.text import lit, notice, size, utc

PREVIEW = 16 << 10


def hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{off:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


class FileBrowser(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("backspace", "up", "Up"),
        Binding("x", "toggle_hex", "Hex/text"),
        Binding("h", "hash", "Hash"),
        Binding("f", "toggle_changed", "Changed only"),
    ]

    path: reactive[bytes] = reactive(b"/")
    hex_mode: reactive[bool] = reactive(False)
    changed_only: reactive[bool] = reactive(False)

    def __init__(self, root: TargetRoot | RemoteRoot, session: TriageSession, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.root = root
        self.session = session
        self.entries: dict[str, DirEntry] = {}
        self.selected: bytes | None = None
        self.head: bytes = b""
        #: a path to put the cursor on once its directory is listed (a finding's file)
        self.select_after: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="fb-path")
        with Horizontal():
            yield DataTable(id="fb-list", cursor_type="row")
            yield RichLog(id="fb-view", wrap=False, markup=False, highlight=False)

    def on_mount(self) -> None:
        table = self.query_one("#fb-list", DataTable)
        for col in ("NAME", "TYPE", "SIZE", "MTIME (UTC)", "CHG"):
            table.add_column(col, key=col)
        self.load()

    # -- state -> CSS classes ----------------------------------------------------
    def watch_hex_mode(self, value: bool) -> None:
        self.set_class(value, "-hex")
        self.render_view()

    def watch_changed_only(self, value: bool) -> None:
        self.set_class(value, "-changed-only")
        if self.is_mounted:
            self.load()

    def watch_path(self, _value: bytes) -> None:
        if self.is_mounted:
            self.load()

    # -- listing -----------------------------------------------------------------
    def load(self) -> None:
        label = "changed since start (overlay upper layer)" if self.changed_only else None
        self.query_one("#fb-path", Static).update(
            lit(label or self.path.decode("utf-8", "replace"), "bold")
        )
        self._load(self.path, self.changed_only)

    @work(thread=True, exclusive=True, group="fb-list")
    def _load(self, path: bytes, changed_only: bool) -> None:
        try:
            if changed_only:
                rows = [
                    DirEntry(c.path, c.path, None, changed=True, error=c.kind)
                    for c in self.root.changed()
                ]
                note = self.root.upper_note
            else:
                rows = self.root.list_dir(path)
                note = ""
        except (OSError, ExuviaError) as err:
            msg = getattr(err, "strerror", None) or str(err)
            self.app.call_from_thread(notice, self, f"cannot list: {msg}", "error")
            return
        self.app.call_from_thread(self._show, rows, note)

    def _show(self, rows: list[DirEntry], note: str) -> None:
        table = self.query_one("#fb-list", DataTable)
        table.clear()
        self.entries = {}
        if note:
            notice(self, note)
        for e in rows:
            key = e.path.decode("utf-8", "surrogateescape")
            self.entries[key] = e
            name = e.name.decode("utf-8", "replace")
            if e.link_target is not None:
                name += " -> " + e.link_target.decode("utf-8", "replace")
            kind = e.kind if e.st is not None else (e.error or "?")
            style = "bold" if e.kind == "dir" else ("red" if kind == "deleted" else "")
            table.add_row(
                lit(name, style),
                lit(kind),
                lit(size(e.st.size) if e.st is not None else "-"),
                lit(utc(e.st.mtime_ns)[:19] if e.st is not None else "-"),
                lit({True: "*", False: "", None: "?"}[e.changed], "yellow"),
                key=key,
            )
        if self.select_after is not None and self.select_after in self.entries:
            table.move_cursor(row=table.get_row_index(self.select_after))
            self.select_after = None

    def _current(self) -> DirEntry | None:
        table = self.query_one("#fb-list", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.entries.get(str(key))

    @on(DataTable.RowSelected, "#fb-list")
    def _open(self, _event: DataTable.RowSelected) -> None:
        e = self._current()
        if e is None:
            return
        if e.kind == "dir" and not self.changed_only:
            self.path = e.path
            self.session.record("files.opened_dir", path=e.path.decode("utf-8", "replace"))
        elif e.kind == "file" or (self.changed_only and e.error == "file"):
            self.selected = e.path
            self.session.record("files.viewed", path=e.path.decode("utf-8", "replace"))
            self._read(e.path)

    @work(thread=True, exclusive=True, group="fb-read")
    def _read(self, path: bytes) -> None:
        try:
            data, total = self.root.read_head(path, PREVIEW)
        except (OSError, ExuviaError) as err:
            msg = getattr(err, "strerror", None) or str(err)
            self.app.call_from_thread(notice, self, f"cannot read: {msg}", "error")
            return
        self.app.call_from_thread(self._set_head, data, total)

    def _set_head(self, data: bytes, total: int) -> None:
        self.head = data
        self.head_total = total
        self.render_view()

    def render_view(self) -> None:
        if not self.is_mounted:
            return
        view = self.query_one("#fb-view", RichLog)
        view.clear()
        if self.selected is None:
            return
        view.write(lit(self.selected.decode("utf-8", "replace"), "bold"))
        body = hexdump(self.head) if self.hex_mode else self.head.decode("utf-8", "replace")
        for line in body.splitlines():
            view.write(lit(line))
        total = getattr(self, "head_total", len(self.head))
        if total > len(self.head):
            view.write(Text(f"… first {len(self.head)} of {total} bytes", style="dim"))

    # -- actions -----------------------------------------------------------------
    def action_up(self) -> None:
        if self.changed_only:
            self.changed_only = False
            return
        parent = self.path.rstrip(b"/").rsplit(b"/", 1)[0] or b"/"
        self.path = parent

    def action_toggle_hex(self) -> None:
        self.hex_mode = not self.hex_mode

    def action_toggle_changed(self) -> None:
        self.changed_only = not self.changed_only
        self.session.record("files.changed_filter", on=self.changed_only)

    def action_hash(self) -> None:
        e = self._current()
        path = e.path if e is not None and e.kind in ("file", "?") else self.selected
        if path is None:
            return
        self._hash(path)

    @work(thread=True, group="fb-hash")
    def _hash(self, path: bytes) -> None:
        shown = path.decode("utf-8", "replace")
        try:
            digest, n = self.root.sha256(path)
        except (OSError, ExuviaError) as err:
            msg = getattr(err, "strerror", None) or str(err)
            self.app.call_from_thread(notice, self, f"cannot hash: {msg}", "error")
            return
        self.session.record("files.hashed", path=shown, sha256=digest, bytes=n)
        self.app.call_from_thread(self._hashed, shown, digest, n)

    def _hashed(self, shown: str, digest: str, n: int) -> None:
        view = self.query_one("#fb-view", RichLog)
        line = Text("sha256 ")
        line.append_text(lit(digest, "bold green"))
        line.append("  ")
        line.append_text(lit(f"{shown} ({n} bytes)"))
        view.write(line)
        notice(self, f"sha256 {digest[:16]}… {shown}")
