"""Live tail of the target's stdout/stderr log: follow or pause, and search."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static

from collectors.live.logs import LogLine, LogTail
from tui.triage.session import TriageSession
from tui.triage.text import lit, notice, utc

KEEP = 5000


class LogView(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_follow", "Follow/pause"),
        Binding("slash", "search", "Search"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    following: reactive[bool] = reactive(True)
    term: reactive[str] = reactive("")

    def __init__(
        self, paths: list[str], fmt: str | None, session: TriageSession, **kw: object
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tails = [LogTail(p, fmt) for p in paths]
        self.session = session
        self.lines: list[LogLine] = []
        self.held = 0  # lines that arrived while paused

    def compose(self) -> ComposeResult:
        yield Static(id="log-status")
        box = Input(placeholder="search (literal text), Enter to apply", id="log-search")
        box.cursor_blink = False  # steady: nothing on screen changes by itself
        yield box
        yield RichLog(id="log-body", wrap=False, markup=False, highlight=False, max_lines=KEEP)

    def on_mount(self) -> None:
        self.query_one("#log-search", Input).display = False
        self._status()
        if not self.tails:
            self.query_one("#log-body", RichLog).write(
                Text("the runtime keeps no stdout/stderr log file for this target", "dim")
            )
            return
        self.poll()
        self.set_interval(1.0, self.poll)

    def watch_following(self, value: bool) -> None:
        self.set_class(not value, "-paused")
        if value and self.is_mounted:
            self.redraw()
        self._status()

    def watch_term(self, _value: str) -> None:
        self.set_class(bool(self.term), "-searching")
        if self.is_mounted:
            self.redraw()
            self._status()

    def _status(self) -> None:
        if not self.is_mounted:
            return
        state = "following" if self.following else f"paused ({self.held} new lines held)"
        s = Text(f"{state} · {len(self.lines)} lines")
        if self.term:
            s.append(" · search: ")
            s.append_text(lit(self.term, "bold"))
        s.append("   space: follow/pause  /: search  esc: clear", style="dim")
        self.query_one("#log-status", Static).update(s)

    @work(thread=True, exclusive=True, group="log-poll")
    def poll(self) -> None:
        new: list[LogLine] = []
        errors: list[str] = []
        for t in self.tails:
            try:
                new.extend(t.poll())
            except OSError as err:
                errors.append(f"{t.path}: {err.strerror}")
        if new or errors:
            self.app.call_from_thread(self._add, new, errors)

    def _add(self, new: list[LogLine], errors: list[str]) -> None:
        for e in errors:
            notice(self, f"log: {e}", "warning")
        self.lines.extend(new)
        del self.lines[:-KEEP]
        if not self.following:
            self.held += len(new)
            self._status()
            return
        body = self.query_one("#log-body", RichLog)
        for ln in new:
            if self._matches(ln):
                body.write(self._render_line(ln))
        self._status()

    def _matches(self, ln: LogLine) -> bool:
        return not self.term or self.term.lower() in ln.text.lower()

    def _render_line(self, ln: LogLine) -> Text:
        out = Text()
        if ln.ts_ns is not None:
            out.append(utc(ln.ts_ns)[11:23] + " ", style="dim")
        if ln.stream:
            out.append(f"{ln.stream[:3]} ", style="red" if ln.stream == "stderr" else "dim")
        body = lit(ln.text)
        if self.term:
            body.highlight_words([self.term], style="reverse", case_sensitive=False)
        out.append_text(body)
        return out

    def redraw(self) -> None:
        body = self.query_one("#log-body", RichLog)
        body.clear()
        self.held = 0
        for ln in self.lines:
            if self._matches(ln):
                body.write(self._render_line(ln))

    def action_toggle_follow(self) -> None:
        self.following = not self.following

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.display = True
        box.focus()

    def action_clear_search(self) -> None:
        self.term = ""
        box = self.query_one("#log-search", Input)
        box.value = ""
        box.display = False

    @on(Input.Submitted, "#log-search")
    def _search(self, event: Input.Submitted) -> None:
        self.term = event.value
        event.input.display = False
        self.query_one("#log-body", RichLog).focus()
        self.session.record("logs.searched", term=event.value)

    def on_unmount(self) -> None:
        for t in self.tails:
            t.close()
