"""`F` (or `o` on a file event): the captured file tree and one entry in full.

The tree is read from the timeline store (one row per captured entry), not the
bundle; a copied file's content is read from the bundle only when asked.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree

from forensics.errors import ExuviaError
from forensics.timeline import Flag, Timeline
from forensics.timeline.bundleio import read_record
from forensics.timeutil import iso_ns
from tui.replay.render import safe, safe_block

PREVIEW_BYTES = 16 << 10


class FileIndex:
    """Children of each directory, from the store's filesystem records."""

    def __init__(self, rows: list[tuple[int, str, int]]) -> None:
        self.children: dict[str, list[tuple[str, int, int]]] = {}
        self.flags: dict[str, int] = {}
        for rid, path, flags in rows:
            self.flags[path] = flags
            if path == "/":
                continue
            parent = posixpath.dirname(path) or "/"
            self.children.setdefault(parent, []).append((path, rid, flags))
        for kids in self.children.values():
            kids.sort()
        self.changed: set[str] = set()
        for path, flags in self.flags.items():
            if flags & (Flag.CHANGED | Flag.DELETED):
                p = path
                while p not in self.changed:
                    self.changed.add(p)
                    if p == "/":
                        break
                    p = posixpath.dirname(p) or "/"

    @classmethod
    def load(cls, tl: Timeline) -> FileIndex:
        rows = tl.con.execute("SELECT id, entity, flags FROM records WHERE source = 1").fetchall()
        return cls(rows)


def file_record(tl: Timeline, rid: int) -> dict[str, Any]:
    row = tl.con.execute("SELECT raw FROM records WHERE id = ?", (rid,)).fetchone()
    try:
        rec = json.loads(row[0]) if row and row[0] else {}
    except ValueError:
        rec = {}
    return rec if isinstance(rec, dict) else {}


def entry_text(rec: dict[str, Any], flags: int = 0) -> Text:
    t = safe(rec.get("path", "?"), "bold")
    if flags & Flag.DELETED or rec.get("type") == "whiteout":
        t.append("  DELETED SINCE START", style="bold white on red")
    elif flags & Flag.CHANGED or rec.get("changed"):
        t.append("  CHANGED SINCE START", style="bold black on yellow")
    t.append("\n\n")
    for name in ("type", "size", "mode", "uid", "gid", "inode", "nlink", "link_target", "sha256",
                 "member", "copy_skipped", "reason"):  # fmt: skip
        if rec.get(name) not in (None, ""):
            t.append(f"{name:<12}", style="bold").append_text(safe(rec[name])).append("\n")
    for name in ("mtime_ns", "atime_ns", "ctime_ns", "btime_ns"):
        if isinstance(rec.get(name), int):
            t.append(f"{name[0]}time{'':<7}", style="bold").append(iso_ns(rec[name]) + "\n")
    return t


def preview_text(data: bytes, truncated: bool) -> Text:
    """Text when the bytes are text, else a hex dump; literal either way."""
    try:
        text = data.decode("utf-8")
        printable = sum(c.isprintable() or c in "\n\t" for c in text) >= 0.95 * max(1, len(text))
    except UnicodeDecodeError:
        printable = False
    if printable:
        out = safe_block(text)
    else:
        out = Text()
        for off in range(0, len(data), 16):
            chunk = data[off : off + 16]
            hexes = " ".join(f"{b:02x}" for b in chunk)
            shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            out.append(f"{off:08x}  {hexes:<47}  {shown}\n")
    if truncated:
        out.append(f"\n… (first {PREVIEW_BYTES // 1024} KiB shown)", style="dim")
    return out


class FileScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("c", "toggle_changed", "Changed only"),
        Binding("v", "preview", "Content"),
    ]

    def __init__(self, tl: Timeline, bundle: str, path: str | None = None) -> None:
        super().__init__()
        self.tl = tl  # the app's read-only connection, for one record at a time
        self.tl_path = tl.path
        self.bundle = bundle
        self.start_path = path
        self.index: FileIndex | None = None
        self.changed_only = False
        self.selected: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        tree: Tree[tuple[str, int, int]] = Tree(Text("/"), id="file-tree")
        with Horizontal():
            yield tree
            with VerticalScroll(id="file-detail"):
                yield Static(Text("loading the file tree …", style="dim"), id="file-body")
                yield Static(id="file-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.load_index()

    @work(thread=True)
    def load_index(self) -> None:
        with Timeline(self.tl_path) as tl:
            index = FileIndex.load(tl)
            rec = None
            if self.start_path is not None:
                hit = tl.con.execute(
                    "SELECT id, flags FROM records WHERE source = 1 AND entity = ? LIMIT 1",
                    (self.start_path,),
                ).fetchone()
                rec = (file_record(tl, hit[0]), hit[1]) if hit else None
        self.app.call_from_thread(self._ready, index, rec)

    def _ready(self, index: FileIndex, rec: tuple[dict[str, Any], int] | None) -> None:
        self.index = index
        self._rebuild()
        if rec is not None:
            self._show(*rec)
        else:
            self.query_one("#file-body", Static).update(Text("select an entry", style="dim"))
        self.query_one(Tree).focus()

    def _rebuild(self) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.data = ("/", 0, self.index.flags.get("/", 0) if self.index else 0)
        self._fill_node(tree.root, "/")
        tree.root.expand()

    def _fill_node(self, node: Any, path: str) -> None:
        if self.index is None:
            return
        for child, rid, flags in self.index.children.get(path, []):
            if self.changed_only and child not in self.index.changed:
                continue
            label = safe(posixpath.basename(child))
            if flags & Flag.DELETED:
                label.stylize("strike red")
            elif flags & Flag.CHANGED:
                label.stylize("yellow")
            has_kids = bool(self.index.children.get(child))
            node.add(label, data=(child, rid, flags), allow_expand=has_kids)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[tuple[str, int, int]]) -> None:
        node = event.node
        if node.data is not None and not node.children and node is not self.query_one(Tree).root:
            self._fill_node(node, node.data[0])

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[tuple[str, int, int]]) -> None:
        if event.node.data is None or not event.node.data[1]:
            return
        _path, rid, flags = event.node.data
        self._show(file_record(self.tl, rid), flags)

    def _show(self, rec: dict[str, Any], flags: int) -> None:
        self.selected = rec
        body = entry_text(rec, flags)
        if rec.get("member"):
            body.append("\nv: show the copied content", style="dim")
        self.query_one("#file-body", Static).update(body)
        self.query_one("#file-preview", Static).update("")

    def action_toggle_changed(self) -> None:
        self.changed_only = not self.changed_only
        self.notify("changed since start only" if self.changed_only else "all entries")
        self._rebuild()

    def action_preview(self) -> None:
        member = self.selected.get("member")
        if not member:
            self.notify(
                "this entry's content was not copied (see its copy policy)", severity="warning"
            )
            return
        self.query_one("#file-preview", Static).update(Text("reading the bundle …", style="dim"))
        self.load_preview(str(member))

    @work(thread=True, exclusive=True)
    def load_preview(self, member: str) -> None:
        try:
            data = read_record(self.bundle, member, 0, PREVIEW_BYTES + 1)
            text = preview_text(data[:PREVIEW_BYTES], len(data) > PREVIEW_BYTES)
        except ExuviaError as err:
            text = safe(str(err), "red")
        self.app.call_from_thread(self.query_one("#file-preview", Static).update, text)
