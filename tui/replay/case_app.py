"""`exuvia replay CASE`: every pod's timeline in one list, read as one.

The merged timeline (forensics/timeline/case.py) with a pod column, a per-pod
filter (``p``), a density strip per pod, search (``/``), cross-pod pivots from
the event under the cursor (``x``: the same file by SHA-256, the same
executable, the same remote address in the other pods) and the sibling
comparison as a view (``D``). Opening and counting run in thread workers; the
list holds pages of events fetched with keyset paging, never the whole case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, get_current_worker

from forensics.errors import ExuviaError
from forensics.timeline import Query
from forensics.timeline.case import CaseEvent, CaseTimeline, open_case_timeline
from forensics.timeline.case_pivots import CasePivots
from forensics.timeline.query import Histogram
from tui.replay.render import fmt_time, safe
from tui.replay.widgets.detail import DetailPane, describe
from tui.replay.widgets.histogram import HistogramStrip

W = TypeVar("W", bound=Widget)
#: what `x` finds from an event, by source (the detail pane's hint)
CASE_PIVOTS = {
    "proc": "x: its executable, binary hash and remote addresses in the other pods",
    "fs": "x: this file's content (sha256) in the other pods",
}
PAGE = 500
#: the list fetches the next page when the cursor comes this close to its end
PREFETCH = 20


class PodHistogram(Horizontal):
    """One pod's label and its density strip."""

    DEFAULT_CSS = """
    PodHistogram { height: 1; }
    PodHistogram > .pod-label { width: 28; }
    PodHistogram > HistogramStrip { width: 1fr; }
    """

    def __init__(self, label: str, index: int) -> None:
        super().__init__(id=f"pod-hist-{index}")
        self.label = label

    def compose(self) -> ComposeResult:
        yield Static(safe(self.label), classes="pod-label")
        yield HistogramStrip()


class CaseReplayApp(App[None]):
    CSS_PATH = "replay.tcss"
    TITLE = "exuvia replay"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "search", "Search"),
        Binding("p", "pods", "Pods"),
        Binding("a", "all_pods", "All pods", show=False),
        Binding("x", "pivot", "Other pods"),
        Binding("D", "siblings", "Siblings"),
        Binding("exclamation_mark", "findings", "Findings"),
        Binding("g", "goto", "Go to time"),
        Binding("d", "toggle_detail", "Detail", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self, case_dir: str | Path, *, tz: str = "UTC", from_container_start: bool = False
    ) -> None:
        super().__init__()
        self.from_container_start = from_container_start
        #: where the histograms begin (the first container start, with --from-start)
        self.hist_lo: int | None = None
        self.case_dir = Path(case_dir)
        self.tz = tz
        self.ct: CaseTimeline | None = None
        self.pivots: CasePivots | None = None
        self.pods: list[str] = []  # labels shown; empty = every pod
        self.search_text: str | None = None
        self.rows: list[CaseEvent] = []
        self.exhausted = False
        self.total: int | None = None
        self.diff: Any = None  # a CaseDiff, once the sibling comparison ran
        self.case_findings: Any = None  # CaseFindings, once the rules ran
        self.error: str | None = None

    def _w(self, selector: str, expect: type[W]) -> W:
        """A widget of the main screen (App.query_one would look in a modal on top)."""
        return self.screen_stack[0].query_one(selector, expect)

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Vertical(id="pod-histograms")
        yield Static(Text("opening the case's timelines …", style="dim"), id="loading")
        with Horizontal(id="main"):
            yield DataTable(id="case-events", cursor_type="row", zebra_stripes=True)
            with Vertical(id="side"):
                yield DetailPane(id="detail")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self._w("#case-events", DataTable)
        for col in ("time (UTC)", "pod", "kind", "source", "message"):
            table.add_column(Text(col), key=col)
        self._title()
        self.open_case()

    @work(thread=True, group="open")
    def open_case(self) -> None:
        def progress(msg: str) -> None:
            self.call_from_thread(self._loading, msg)

        try:
            ct = open_case_timeline(self.case_dir, tz=self.tz, progress=progress)
        except ExuviaError as err:
            self.call_from_thread(self._failed, str(err))
            return
        self.call_from_thread(self._case_ready, ct)

    def _loading(self, msg: str) -> None:
        if not self.screen_stack:  # the app is closing: nothing to show it on
            return
        self._w("#loading", Static).update(safe(msg, "dim"))

    def _failed(self, msg: str) -> None:
        if not self.screen_stack:  # the app is closing: nothing to show it on
            return
        self.error = msg
        self._w("#loading", Static).update(safe(f"cannot open the case: {msg}", "bold red"))

    def _case_ready(self, ct: CaseTimeline) -> None:
        if not self.screen_stack:  # the app is closing: nothing to show it on
            return
        self.ct = ct
        self.pivots = CasePivots(ct)
        self._w("#loading", Static).display = False
        box = self._w("#pod-histograms", Vertical)
        for w in ct.wheres:
            box.mount(PodHistogram(w.label, w.index))
        self._title()
        start = None
        if self.from_container_start:
            kinds = ("container.created", "container.started")
            first = ct.events(Query(kinds=kinds), limit=1)
            if first:
                start = (first[0].event.ts, -1, -1)
                self.hist_lo = first[0].event.ts
        self.reload(after=start)
        self._w("#case-events", DataTable).focus()

    # -- what is shown ----------------------------------------------------------------
    def query_now(self) -> Query:
        return Query(text=self.search_text)

    def reload(self, after: tuple[int, int, int] | None = None) -> None:
        """Refill the list from the start (or from just after ``after``)."""
        table = self._w("#case-events", DataTable)
        table.clear()
        self.rows = []
        self.exhausted = False
        self.total = None
        self._page(after)
        self.refresh_counts()
        self.refresh_histograms()

    def _page(self, after: tuple[int, int, int] | None = None) -> None:
        if self.ct is None or self.exhausted:
            return
        if after is None and self.rows:
            last = self.rows[-1]
            after = (last.event.ts, last.where.index, last.event.id)
        page = self.ct.events(self.query_now(), pods=self.pods, limit=PAGE, after=after)
        self.exhausted = len(page) < PAGE
        table = self._w("#case-events", DataTable)
        for ce in page:
            ev = ce.event
            table.add_row(
                Text(fmt_time(ev.ts)),
                safe(f"{ce.where.pod}/{ce.where.container}"),
                safe(ev.macb or ev.kind),
                safe(ev.source),
                safe(ev.message),
            )
        first = not self.rows
        self.rows += page
        self.show_status()
        if first:
            self._detail(self.current())

    @work(thread=True, exclusive=True, group="count")
    def refresh_counts(self) -> None:
        if self.ct is None:
            return
        me = get_current_worker()
        n = self.ct.count(self.query_now(), pods=self.pods)
        self.call_from_thread(self._counted, me, n)

    def _counted(self, me: Worker[None], n: int) -> None:
        if not self.screen_stack:  # the app is closing: nothing to show it on
            return
        if me.is_cancelled:  # counted for pods or a search no longer shown
            return
        self.total = n
        self.show_status()

    @work(thread=True, exclusive=True, group="histogram")
    def refresh_histograms(self) -> None:
        if self.ct is None:
            return
        span = self.ct.span() or (0, 1)
        if self.hist_lo is not None:
            span = (self.hist_lo, max(span[1], self.hist_lo))
        q = Query(start=self.hist_lo, end=span[1] + 1 if self.hist_lo is not None else None,
                  text=self.search_text)  # fmt: skip
        me = get_current_worker()
        _width, per = self.ct.histograms(q, buckets=120)
        self.call_from_thread(self._histograms, me, per, span)

    def _histograms(
        self, me: Worker[None], per: dict[str, Histogram], span: tuple[int, int]
    ) -> None:
        if not self.screen_stack:  # the app is closing: nothing to show it on
            return
        if me.is_cancelled:  # a newer pod filter or search asked for others
            return
        if self.ct is None:
            return
        for w in self.ct.wheres:
            row = self._w(f"#pod-hist-{w.index}", PodHistogram)
            shown = not self.pods or w.label in self.pods
            row.set_class(not shown, "filtered-out")
            strip = row.query_one(HistogramStrip)
            strip.show(per.get(w.label, Histogram(1, [])) if shown else Histogram(1, []),
                       span[0], span[1] + 1)  # fmt: skip

    def current(self) -> CaseEvent | None:
        table = self._w("#case-events", DataTable)
        i = table.cursor_row
        return self.rows[i] if 0 <= i < len(self.rows) else None

    @on(DataTable.RowHighlighted)
    def _moved(self, message: DataTable.RowHighlighted) -> None:
        if message.cursor_row >= len(self.rows) - PREFETCH and not self.exhausted:
            self._page()
        self.show_status()
        self._detail(self.current())

    def _detail(self, ce: CaseEvent | None) -> None:
        pane = self._w("#detail", DetailPane)
        if ce is None:
            pane.show(Text("no events match", style="dim"))
            return
        tl = self.ct.timeline_of(ce.where.label) if self.ct is not None else None
        context = tl.context(ce.event, 3) if tl is not None and ce.event.source == "log" else None
        text = Text("pod ", style="bold").append_text(safe(ce.where.label))
        if ce.where.node:
            text.append("  node ").append_text(safe(ce.where.node))
        text.append("\n")
        pane.show(text.append_text(describe(ce.event, context=context, pivots=CASE_PIVOTS)))

    def action_toggle_detail(self) -> None:
        self._w("#side", Vertical).toggle_class("hidden")

    def action_help(self) -> None:
        from tui.replay.screens.help import CASE_KEYS, HelpScreen  # noqa: PLC0415

        self.push_screen(HelpScreen(CASE_KEYS))

    # -- status -----------------------------------------------------------------------
    def _title(self) -> None:
        t = Text()
        t.append(" exuvia replay ", style="bold reverse")
        t.append(" case ")
        if self.ct is not None:
            t.append_text(safe(self.ct.case_id))
            t.append(f"  {len(self.ct.wheres)} pods")
            if self.ct.skipped:
                t.append(f", {len(self.ct.skipped)} not in the timeline", style="yellow")
        else:
            t.append_text(safe(self.case_dir.name))
        self._w("#title", Static).update(t)

    def show_status(self) -> None:
        t = Text()
        cur = self.current()
        pos = "?" if cur is None else f"{self._w('#case-events', DataTable).cursor_row + 1:,}"
        t.append(f"event {pos} of " + ("…" if self.total is None else f"{self.total:,}"))
        t.append("   pods: ")
        t.append_text(safe(", ".join(self.pods) if self.pods else "all"))
        if self.search_text:
            t.append("   search: ").append_text(safe(self.search_text))
        if cur is not None:
            t.append("   ").append_text(safe(cur.where.label, "bold"))
        self._w("#status", Static).update(t)

    # -- actions ----------------------------------------------------------------------
    def set_pods(self, pods: list[str]) -> None:
        self.pods = pods
        self.reload()

    def action_all_pods(self) -> None:
        self.set_pods([])

    def action_pods(self) -> None:
        from tui.replay.screens.case_pods import PodFilterScreen  # noqa: PLC0415

        if self.ct is None:
            return

        def done(result: list[str] | None) -> None:
            if result is not None and self.ct is not None:
                every = len(result) == len(self.ct.wheres)
                self.set_pods([] if every else result)

        labels = [w.label for w in self.ct.wheres]
        self.push_screen(PodFilterScreen(labels, self.pods or labels), done)

    def action_search(self) -> None:
        from tui.replay.screens.prompt import PromptScreen  # noqa: PLC0415

        def done(text: str | None) -> None:
            if text is not None:
                self.search_text = text.strip() or None
                self.reload()

        self.push_screen(PromptScreen("search every pod (all words; word* = prefix)",
                                      self.search_text or ""), done)  # fmt: skip

    def action_goto(self) -> None:
        from tui.replay.screens.prompt import PromptScreen  # noqa: PLC0415

        def done(text: str | None) -> None:
            if not text:
                return
            from forensics.timeline.logtime import parse_user_time, resolve_tz  # noqa: PLC0415

            try:
                ts = parse_user_time(text.strip(), resolve_tz(self.tz))
            except ValueError as err:
                self.notify(str(err), severity="error", markup=False)
                return
            self.reload(after=(ts, -1, -1))

        self.push_screen(PromptScreen("go to time (e.g. 2026-11-23T17:58:49Z)"), done)

    def jump_to(self, ce: CaseEvent) -> None:
        """Show the list from ``ce`` on (the pod filter widened to its pod if needed)."""
        if self.pods and ce.where.label not in self.pods:
            self.pods = [*self.pods, ce.where.label]
        self.search_text = None
        self.reload(after=(ce.event.ts, ce.where.index, ce.event.id - 1))

    def action_pivot(self) -> None:
        from tui.replay.screens.case_pivot import PivotScreen  # noqa: PLC0415

        ce = self.current()
        if ce is None or self.pivots is None:
            return
        self.push_screen(PivotScreen(self.pivots, ce), self._jump_result)

    def _jump_result(self, ce: CaseEvent | None) -> None:
        if ce is not None:
            self.jump_to(ce)

    def action_findings(self) -> None:
        from tui.replay.screens.case_findings import CaseFindingsScreen  # noqa: PLC0415

        if self.ct is not None:
            self.push_screen(CaseFindingsScreen(self), self._jump_result)

    def action_siblings(self) -> None:
        from tui.replay.screens.case_diff import SiblingScreen  # noqa: PLC0415

        if self.ct is not None:
            self.push_screen(SiblingScreen(self), self._jump_result)


def make_case_app(
    case_dir: str | Path, *, tz: str = "UTC", from_container_start: bool = False
) -> CaseReplayApp:
    """The replay app over a case directory (tests build it through here);
    ``from_container_start``: open at the first container's creation, the
    histograms from there on."""
    return CaseReplayApp(case_dir, tz=tz, from_container_start=from_container_start)
