"""`m` in the process view: a process's captured memory, region by region, and a
hex + strings view of a chosen region read from the bundle's core member.

The core is streamed (forensics.memory.view.CoreCursor): one page of a region is
read at a time in a worker thread, so a region of 1 GiB is paged through, never
loaded. Every byte of the target is shown as hex or printable ASCII, and every
string from the bundle goes through :func:`safe`: nothing is rendered as markup.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from forensics.errors import ExuviaError
from forensics.memory.view import CoreCursor, hexdump, stored_regions, strings
from tui.replay.render import safe

#: bytes of a region shown per page
PAGE = 2048


def region_label(r: dict[str, Any]) -> Text:
    lo, hi = r.get("start"), r.get("end")
    span = f"{lo:#014x}-{hi:#014x}" if type(lo) is int and type(hi) is int else "?"
    t = safe(f"{span} {r.get('perms', '?')} {r.get('kind', '?'):<7} {r.get('stored', 0)} B")
    if r.get("path"):
        t.append(" ").append_text(safe(r["path"], "dim"))
    if r.get("sha256"):
        t.append("\n  sha256 ").append_text(safe(r["sha256"], "dim"))
    if r.get("unreadable"):
        t.append("\n  ").append_text(safe(f"{len(r['unreadable'])} ranges stored as zeros", "red"))
    return t


def page_text(r: dict[str, Any], page: int, data: bytes) -> Text:
    """The heading, hex dump and strings of one page of region ``r``."""
    stored = int(r["stored"])
    pages = max(1, -(-stored // PAGE))
    base = int(r["start"]) + page * PAGE
    t = Text()
    t.append_text(safe(f"{base:#x} page {page + 1}/{pages} of the region ", "bold"))
    t.append_text(safe(f"({stored} bytes stored, core offset {r['core_offset']})", "dim"))
    t.append("\n\n")
    t.append_text(safe("\n".join(hexdump(data, base)) or "(no bytes)"))
    found = strings(data, base)
    t.append(f"\n\nstrings ({len(found)})\n", style="bold")
    for addr, s in found:
        t.append(f"  {addr:016x} ", style="dim").append_text(safe(s)).append("\n")
    return t


class MemoryScreen(Screen[None]):
    """Regions of one ``memory`` record; Enter shows one, n/p (PgDn/PgUp) page it."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("n,pagedown", "page(1)", "Next page"),
        Binding("p,pageup", "page(-1)", "Previous page"),
    ]

    def __init__(self, bundle: Path, mem: dict[str, Any]) -> None:
        super().__init__()
        self.bundle = bundle
        self.mem = mem
        self.regions = stored_regions(mem)
        self.cursor = CoreCursor(bundle, str(mem.get("member")))
        self._lock = threading.Lock()  # one page read at a time (workers overlap)
        self.chosen: dict[str, Any] | None = None
        self.page = 0

    def compose(self) -> ComposeResult:
        with Horizontal():
            if self.regions:
                yield OptionList(
                    *(Option(region_label(r), id=str(i)) for i, r in enumerate(self.regions)),
                    id="mem-regions",
                )
            else:
                yield Static(Text("no region of this core holds bytes", style="dim"))
            with VerticalScroll(id="mem-detail"):
                head = safe(f"{self.mem.get('member')}: choose a region (Enter)", "dim")
                yield Static(head, id="mem-page")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        i = int(event.option.id or 0)
        if 0 <= i < len(self.regions):
            self.chosen, self.page = self.regions[i], 0
            self._load()

    def action_page(self, step: int) -> None:
        if self.chosen is None:
            return
        pages = max(1, -(-int(self.chosen["stored"]) // PAGE))
        page = min(max(0, self.page + step), pages - 1)
        if page != self.page:
            self.page = page
            self._load()

    def _load(self) -> None:
        assert self.chosen is not None
        self.query_one("#mem-page", Static).update(Text("reading…", style="dim"))
        self._read(self.chosen, self.page)

    @work(thread=True, exclusive=True, group="memory-page")
    def _read(self, r: dict[str, Any], page: int) -> None:
        stored = int(r["stored"])
        n = min(PAGE, stored - page * PAGE)
        try:
            with self._lock:
                data = self.cursor.read(int(r["core_offset"]) + page * PAGE, n)
        except (ExuviaError, OSError) as err:
            text = safe(f"cannot read {self.mem.get('member')}: {err}", "red")
        else:
            text = page_text(r, page, data)
        self.app.call_from_thread(self._shown, r, page, text)

    def _shown(self, r: dict[str, Any], page: int, text: Text) -> None:
        if r is self.chosen and page == self.page:  # not a page the user has left
            self.query_one("#mem-page", Static).update(text)

    def on_unmount(self) -> None:
        with self._lock:
            self.cursor.close()
