"""`exuvia replay BUNDLE`: the offline timeline of a bundle, keyboard first.

Heavy work (building or opening the store, verifying the bundle, counting,
the histogram, loading the snapshot) runs in thread workers, each with its own
read-only connection to the store; the screen itself only ever asks for the
rows it shows (:mod:`tui.replay.paging`).

A bundle never opened before is shown while its store is built
(:mod:`forensics.timeline.growing`): the earliest events so far, refreshed as
each chunk is committed, under a "building" status line; when the build ends the
window moves to the finished store in place and counts, position and histogram
follow as for a cached one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static
from textual.worker import Worker, get_current_worker

from forensics.errors import ExuviaError
from forensics.notes import NotesFile
from forensics.timeline import Event, Query, Timeline, open_timeline
from forensics.timeline.events import SOURCE_NAMES
from forensics.timeline.growing import GrowingTimeline, open_growing
from forensics.timeline.query import Histogram
from tui.replay import notes_actions, playback
from tui.replay.filters import Filters
from tui.replay.paging import Window, key
from tui.replay.render import fmt_time, local_zone, safe
from tui.replay.widgets.alive import AlivePanel
from tui.replay.widgets.chips import FilterChips
from tui.replay.widgets.detail import DetailPane, describe
from tui.replay.widgets.event_list import EventList
from tui.replay.widgets.histogram import HistogramStrip

if TYPE_CHECKING:
    from forensics.bundle.verify import VerifyReport
    from forensics.snapshot import Snapshot

# Imported when first used, not at start-up (a cold first screen waits for the
# imports): verification and the snapshot (tui.replay.background), the findings
# (tui.replay.findings_actions, forensics.findings: about a fifth of the imports).

SOURCES = tuple(SOURCE_NAMES)  # the order of the 1..8 toggles
#: how often a growing store is asked whether another chunk was committed
GROW_POLL_S = 0.1


class _Abandoned(Exception):
    """The app is closing: the build in its worker stops (its work files go)."""


class _Growing:
    """The build's hooks (forensics.timeline.store.GrowingHooks), from its worker thread."""

    def __init__(self, app: ReplayApp) -> None:
        self.app = app

    def started(self, store: Path) -> None:
        if self.app._closing:
            raise _Abandoned
        try:
            self.app.call_from_thread(self.app._growing_started, store)
        except RuntimeError as err:  # the app is no longer running
            raise _Abandoned from err

    def sealing(self) -> None:
        if self.app._closing:
            return  # the app's connection was closed as it shut down
        # returns once the screen's thread has closed its connection to the store
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self.app._growing_sealed)


def background_priority() -> None:
    """Make the calling worker thread yield the CPU to the screen's thread (Linux
    applies nice values per thread); best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class ReplayApp(App[None]):
    CSS_PATH = "replay.tcss"
    TITLE = "exuvia replay"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("exclamation_mark", "findings", "Findings", show=False),
        Binding("slash", "search", "Search"),
        Binding("n", "hit(1)", "Next hit", show=False),
        Binding("N", "hit(-1)", "Prev hit", show=False),
        Binding("f", "filters", "Filter"),
        Binding("c", "clear_filters", "Clear", show=False),
        Binding("g", "goto", "Go to time"),
        Binding("z", "toggle_zone", "UTC/local", show=False),
        Binding("plus", "zoom(1)", "Zoom in", show=False),
        Binding("minus", "zoom(-1)", "Zoom out", show=False),
        Binding("o", "open", "Open"),
        Binding("b", "bookmark", "Bookmark"),
        Binding("t", "tag", "Tag", show=False),
        Binding("a", "annotate", "Note", show=False),
        Binding("e", "export", "Export"),
        Binding("p", "play", "Play"),
        Binding("left_square_bracket", "speed(-1)", "Slower", show=False),
        Binding("right_square_bracket", "speed(1)", "Faster", show=False),
        Binding("P", "view('processes')", "Processes", show=False),
        Binding("F", "view('files')", "Files", show=False),
        Binding("S", "view('sockets')", "Sockets", show=False),
        Binding("M", "view('manifest')", "Manifest", show=False),
        Binding("I", "view('inventory')", "Inventory", show=False),
        Binding("B", "view('notes')", "Notes", show=False),
        Binding("Y", "view('yara')", "YARA", show=False),
        Binding("d", "toggle_detail", "Detail", show=False),
        *(
            Binding(str(i + 1), f"toggle_source('{s}')", s, show=False)
            for i, s in enumerate(SOURCES)
        ),
    ]

    def __init__(
        self,
        bundle: str | Path,
        *,
        tz: str = "UTC",
        local_time: bool = False,
        from_container_start: bool = False,
        findings_first: bool = False,
    ) -> None:
        super().__init__()
        self.from_container_start = from_container_start
        self.findings_first = findings_first
        self.findings: Any = None  # a FindingsReport, from findings_actions.start
        self.findings_error: str | None = None
        self.findings_screen: Any = None
        self.bundle = Path(bundle)
        self.tz = tz
        self.zone = local_zone() if local_time else None
        self.tl: Timeline | None = None
        self.window: Window | None = None
        self.filters = Filters()
        self.search_text: str | None = None
        self.search_hits: int | None = None
        self.total: int | None = None
        self.position: int | None = None
        self.report: VerifyReport | None = None
        self.snapshot: Snapshot | None = None
        #: what to open once the snapshot is read (when_snapshot): the latest request only
        self._snapshot_waiter: Callable[[Snapshot], object] | None = None
        self.notes: NotesFile | None = None
        self.notes_error: str | None = None
        self.hist_range: tuple[int, int] | None = None
        self.playing = False
        self.speed = 5
        self.play_timer: Any = None
        self._rank_timer: Any = None
        #: the store while it is built (self.tl stays None until it is finished)
        self.growing: GrowingTimeline | None = None
        self.building: dict[str, int] | None = None  # committed so far
        self.build_note = ""  # the build's last progress line (records read)
        self._grow_timer: Any = None
        self._first_key: tuple[int, int] | None = None
        #: --from-container-start: done (or not asked), and the row the last try went to
        self._start_done = not from_container_start
        self._start_key: tuple[int, int] | None = None
        self._closing = False
        self._findings_started = False
        self._verify_child: Any = None  # the process verifying the bundle

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="banner", classes="hidden")
        yield HistogramStrip(id="histogram")
        yield FilterChips(id="chips", classes="empty")
        with Horizontal(id="main"):
            yield Static(Text("opening the timeline …", style="dim"), id="loading")
            with Vertical(id="side"):
                yield DetailPane(id="detail")
                yield AlivePanel(id="alive", classes="hidden")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._title()
        self.show_status()
        try:
            self.notes = NotesFile.for_bundle(self.bundle)
        except ExuviaError as err:
            self.notes_error = str(err)
        self.open_store()
        if self.findings_first:
            from tui.replay import findings_actions  # noqa: PLC0415

            self._start_findings()
            findings_actions.open_view(self)
        # else the findings start once the first rows are on screen (_show_list): their
        # analysis is Python in this process, competing with the build for the CPU

    def _start_findings(self) -> None:
        if not self._findings_started:
            from tui.replay import findings_actions  # noqa: PLC0415

            self._findings_started = True
            findings_actions.start(self)

    def on_unmount(self) -> None:
        self._closing = True
        child = self._verify_child
        if child is not None and child.poll() is None:
            child.kill()  # its reading thread then ends: quitting does not wait for it
        if self.growing is not None:
            self.growing.close()
            self.growing = None

    @property
    def reader(self) -> Timeline | None:
        """The store the window reads: the finished one, else the growing one."""
        return self.tl if self.tl is not None else self.growing

    # -- workers ----------------------------------------------------------------------
    @work(thread=True, group="store")
    def open_store(self) -> None:
        def progress(msg: str) -> None:
            if self._closing:
                raise _Abandoned
            try:
                self.call_from_thread(self._loading, msg)
            except RuntimeError as err:  # the app is no longer running
                raise _Abandoned from err

        try:
            tl = open_timeline(self.bundle, tz=self.tz, progress=progress, growing=_Growing(self))
        except _Abandoned:
            return
        except ExuviaError as err:
            if self._closing:
                return
            self.call_from_thread(self._loading, f"cannot open the timeline: {err}", True)
            self.call_from_thread(self.run_verify)  # it says what is wrong with the bundle
            self.call_from_thread(self._start_findings)
            return
        if self._closing:
            tl.close()
            return
        self.call_from_thread(self._store_ready, tl)

    def _loading(self, msg: str, failed: bool = False) -> None:
        loading = self.query("#loading")
        if loading:
            loading.first(Static).update(safe(msg, "bold red" if failed else "dim"))
        elif failed:  # the build failed after its first rows were shown
            self._growing_sealed()
            self.build_note = msg
            self.building = None
            self.show_status()
            self.notify(msg, severity="error", markup=False)
        else:
            self.build_note = msg
            if self.building is not None:
                self.show_status()

    # -- a store read while it is built --------------------------------------------
    def _growing_started(self, store: Path) -> None:
        self._grow_timer = self.set_interval(GROW_POLL_S, lambda: self._poll_growing(store))
        self._poll_growing(store)

    def _poll_growing(self, store: Path) -> None:
        if self.tl is not None or self._closing:
            return
        if self.growing is None:
            if self.window is not None:
                return  # sealed: the finished store comes next
            self.growing = open_growing(store)
            if self.growing is None:
                return  # its first chunk is not committed yet
            self._show_list(self.growing)
            self._count_so_far()
            self.call_after_refresh(self.run_verify)
            return
        before = self.building
        now = self.growing.refresh()
        if now is None or now == before:
            return  # finished writing (sealing comes), or nothing new
        self._refill()
        self._goto_container_start(self.events_list, final=False)
        self._count_so_far()
        self._screen_filled()

    def _count_so_far(self) -> None:
        """The count committed now, read after the rows: each statement sees the latest
        commit, so the count shown is never below what the rows were read from."""
        now = self.growing.refresh() if self.growing is not None else None
        if now is not None:
            self.building = dict(now)
        self.show_status()

    def _refill(self) -> None:
        """New events arrived: the earliest so far if the window was on them, else the
        same place (earlier events may have arrived above it)."""
        lst, window = self.events_list, self.window
        if lst is None or window is None:
            return
        at_top = window.cursor == 0 and (not window.rows or key(window.rows[0]) == self._first_key)
        if at_top:
            lst.action_home()
        else:
            lst.reload()
        reader = self.reader
        first = reader.events(window.query, limit=1) if reader is not None else []
        self._first_key = key(first[0]) if first else None

    def _growing_sealed(self) -> None:
        """The build is about to seal its store: close every connection to it."""
        if self._grow_timer is not None:
            self._grow_timer.stop()
            self._grow_timer = None
        if self.window is not None:
            self.window.frozen = True
        if self.growing is not None:
            self.growing.close()
            self.growing = None

    def _store_ready(self, tl: Timeline) -> None:
        self._growing_sealed()  # if the build did not seal (nothing was shown yet)
        self.tl = tl
        if self.window is not None:  # shown while it was built: the same place, now final
            self.building = None
            self.window.tl = tl
            self.window.frozen = False
            # always refilled, not only when a count was shown: the rows may be those of the
            # first chunk read at the list's first (one-row) height, when its real height
            # arrived while the window was frozen for the seal
            self._refill()
            self._goto_container_start(self.events_list, final=True)
            self._detail(self.current())  # the same event, read from the final store
            self._screen_filled()
            self._title()
            self.show_status()
            self.call_after_refresh(self._background, False)
            cur = self.current()
            if cur is not None:  # the position, now that there is a total
                self.call_after_refresh(self.refresh_rank, key(cur))
            return
        self._show_list(tl)
        # the rest competes for the CPU: let the first rows reach the screen first
        self.call_after_refresh(self._background)

    def _show_list(self, tl: Timeline) -> None:
        self.window = Window(tl, self._query())
        events = EventList(self.window, id="events")
        events.zone = self.zone
        if self.notes is not None:
            events.marked = {k for k, n in self.notes.notes.items() if n.bookmarked}
        self.query_one("#loading").remove()
        self.query_one("#main").mount(events, before=0)
        events.focus()
        first = tl.events(self.window.query, limit=1)
        self._first_key = key(first[0]) if first else None
        self._goto_container_start(events, final=self.tl is not None)
        self._title()
        self.show_status()
        self._screen_filled()

    def _goto_container_start(self, lst: EventList | None, final: bool) -> None:
        """``--from-container-start``: to the container's creation (or start). While the
        store is built its event may not have been read yet, or an earlier one may come:
        tried again at each refill and once more on the finished store (``final``), as
        long as the responder has not moved from where the last try put them."""
        window = self.window
        if self._start_done or lst is None or window is None or self.reader is None:
            return
        here = window.current
        if self._start_key is not None and (here is None or key(here) != self._start_key):
            self._start_done = True  # moved on meanwhile: left where they are
            return
        kinds = ("container.created", "container.started")
        starts = self.reader.events(Query(kinds=kinds), limit=1)
        if starts:
            lst.goto_time(starts[0].ts)
            here = window.current
            self._start_key = key(here) if here is not None else None
        self._start_done = final

    def _screen_filled(self) -> None:
        """Start the findings once a full screen of events is shown (or the build is
        done): a first chunk of a few records would otherwise start them early."""
        window = self.window
        if self.tl is not None or (window is not None and len(window.rows) >= window.height):
            self.call_after_refresh(self._start_findings)

    def _background(self, verify: bool = True) -> None:
        self.refresh_counts()
        self.refresh_histogram()
        if verify:
            self.run_verify()

    @work(thread=True, group="verify")
    def run_verify(self) -> None:
        """Verify, then load the snapshot, in a child process (see background.py)."""
        if self._closing:
            return
        from tui.replay.background import read_in_child  # noqa: PLC0415

        def started(proc: Any) -> None:
            self._verify_child = proc

        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            read_in_child(
                self.bundle,
                lambda report: self.call_from_thread(self._verified, report),
                lambda snap: self.call_from_thread(self._snap_ready, snap),
                started=started,
            )

    def _verified(self, report: VerifyReport) -> None:
        if self._closing:
            return
        self.report = report
        banner = self.query_one("#banner", Static)
        from forensics.bundle.verify import cut_off_banner  # noqa: PLC0415

        if report.cut_off:  # a killed capture: what its checkpoints vouch for, read
            banner.update(Text(cut_off_banner(report), style="bold"))
            banner.set_classes("incomplete")
        elif not report.ok:
            lines = report.failures() or ["the bundle has no manifest"]
            text = Text("VERIFICATION FAILED — this bundle does not match its manifest:\n",
                        style="bold")  # fmt: skip
            for line in lines[:6]:
                text.append("  ").append_text(safe(line)).append("\n")
            if len(lines) > 6:
                text.append(f"  … and {len(lines) - 6} more (exuvia verify lists them all)\n")
            banner.update(text)
            banner.set_classes("failed")
            from tui.replay.screens.verify_failed import VerifyFailedScreen  # noqa: PLC0415

            self.push_screen(VerifyFailedScreen(lines))
        elif not report.complete:
            reason = report.incomplete_reason or "the capture did not finish"
            banner.update(Text("INCOMPLETE bundle: ", style="bold").append_text(safe(reason)))
            banner.set_classes("incomplete")
        else:
            banner.set_classes("hidden")
        self._title()

    def _snap_ready(self, snap: Snapshot) -> None:
        if self._closing:
            return
        self.snapshot = snap
        self._title()
        waiter, self._snapshot_waiter = self._snapshot_waiter, None
        if waiter is not None:
            waiter(snap)

    def when_snapshot(self, then: Callable[[Snapshot], object]) -> None:
        """Call ``then`` with the snapshot: now, or as soon as the background reader has
        read it — a key pressed while the bundle is still being read is not dropped. Only
        the latest request waits (pressing again does not stack screens)."""
        if self.snapshot is not None:
            then(self.snapshot)
            return
        if self._snapshot_waiter is None:
            self.notify("still reading the bundle: this opens as soon as it is read")
        self._snapshot_waiter = then

    def _query(self, with_search: bool = False) -> Query:
        return self.filters.query(self.search_text if with_search else None)

    @work(thread=True, exclusive=True, group="count")
    def refresh_counts(self) -> None:
        background_priority()
        if self.tl is None:
            return
        me = get_current_worker()
        q, sq = self._query(), (self._query(True) if self.search_text else None)
        with Timeline(self.tl.path) as tl:
            total = tl.count(q)
            self.call_from_thread(self._counted, me, total, None)
            if sq is not None:
                self.call_from_thread(self._counted, me, total, tl.count(sq))

    def _counted(self, me: Worker[None], total: int, hits: int | None) -> None:
        # a newer count (the filter or search changed) cancelled this one: its numbers
        # are for a query no longer shown. Checked here, on the screen's thread, where
        # cancelling happens, so a stale count can never land after the current one.
        if me.is_cancelled:
            return
        self.total = total
        if self.search_text:
            self.search_hits = hits
            self._chips()  # the search chip shows the hit count
        self.show_status()

    @work(thread=True, exclusive=True, group="rank")
    def refresh_rank(self, k: tuple[int, int]) -> None:
        background_priority()
        if self.tl is None:
            return
        me = get_current_worker()
        with Timeline(self.tl.path) as tl:
            pos = tl.rank(self._query(), k)
        self.call_from_thread(self._ranked, me, pos)

    def _ranked(self, me: Worker[None], pos: int) -> None:
        if me.is_cancelled:  # the cursor moved on (or the filter changed) meanwhile
            return
        self.position = pos
        self.show_status()

    @work(thread=True, exclusive=True, group="histogram")
    def refresh_histogram(self) -> None:
        background_priority()
        if self.tl is None:
            return
        me = get_current_worker()
        lo, hi = self._hist_bounds()
        strips = self.query(HistogramStrip)
        if not strips:
            return  # the app is closing
        width = max(10, strips.first(HistogramStrip).size.width or 100)
        q = replace(self._query(), start=lo, end=hi)
        with Timeline(self.tl.path) as tl:
            hist = tl.histogram(q, buckets=width)
        self.call_from_thread(self._histogram, me, hist, lo, hi)

    def _hist_bounds(self) -> tuple[int, int]:
        if self.hist_range is not None:
            return self.hist_range
        meta = self.tl.meta if self.tl is not None else {}
        lo = self.filters.start if self.filters.start is not None else meta.get("time_min") or 0
        hi = self.filters.end if self.filters.end is not None else (meta.get("time_max") or 0) + 1
        return int(lo), int(max(hi, lo + 1))

    def _histogram(self, me: Worker[None], hist: Histogram, lo: int, hi: int) -> None:
        if me.is_cancelled:  # a newer filter or zoom asked for another one
            return
        strip = self.query_one(HistogramStrip)
        strip.show(hist, lo, hi)
        self._mark_view()

    # -- status lines ---------------------------------------------------------------------
    def _title(self) -> None:
        t = Text()
        t.append(" exuvia replay ", style="bold reverse")
        t.append(" ")
        t.append_text(safe(self.bundle.name))
        target = (self.snapshot.target if self.snapshot else {}) or {}
        if target:
            t.append("  ")
            name = target.get("name") or target.get("container_id") or "?"
            t.append_text(safe(target.get("uri") or f"{target.get('runtime', '?')}://{name}"))
            if target.get("image"):
                t.append("  image ")
                t.append_text(safe(target["image"]))
        t.append("  ")
        if self.report is None:
            t.append("verifying …", style="yellow")
        elif self.report.cut_off:
            t.append("CUT OFF, read up to its last checkpoint", style="bold black on yellow")
        elif not self.report.ok:
            t.append("VERIFY FAILED", style="bold white on red")
        elif not self.report.complete:
            t.append("verified, INCOMPLETE", style="bold black on yellow")
        else:
            t.append(f"verified ✓ manifest {self.report.manifest_sha256[:16]}…", style="green")
        self.query_one("#title", Static).update(t)

    def show_status(self) -> None:
        t = Text()
        if self.tl is None and self.building is not None:
            # no total and no position yet: the order and the count still change
            t.append(f"building: {self.building['events']:,} events so far", style="bold yellow")
            t.append(" — order may still change", style="yellow")
            if self.build_note:
                t.append(f" ({safe(self.build_note).plain})", style="dim")
            if self.filters.active or self.search_text:
                t.append("; filters and search apply to what is built so far", style="yellow")
        elif self.total is None:
            t.append("counting …", style="dim")
        else:
            pos = "?" if self.position is None else f"{self.position + 1:,}"
            t.append(f"event {pos} of {self.total:,}")
            if self.filters.active:
                t.append(" (filtered)", style="yellow")
        t.append("   time: " + ("local" if self.zone else "UTC"))
        if self.playing:
            t.append(f"   ▶ playing {self.speed}/s", style="bold green")
        if self.notes_error:
            t.append("   notes unavailable: ", style="red").append_text(safe(self.notes_error))
        self.query_one("#status", Static).update(t)

    def _chips(self) -> None:
        chips = self.query_one(FilterChips)
        self.run_worker(
            chips.show(self.filters, self.search_text, self.search_hits),
            group="chips",
            exclusive=True,
        )

    def _mark_view(self) -> None:
        if self.window is not None and self.window.rows:
            self.query_one(HistogramStrip).mark(self.window.rows[0].ts, self.window.rows[-1].ts)

    # -- reacting to the list -------------------------------------------------------------
    @on(EventList.Moved)
    def _moved(self, message: EventList.Moved) -> None:
        self._mark_view()
        self._detail(message.event)
        if message.event is not None:
            if self._rank_timer is not None:
                self._rank_timer.stop()
            k = key(message.event)
            self._rank_timer = self.set_timer(0.15, lambda: self.refresh_rank(k))
        self._hits_in_view()

    def _detail(self, ev: Event | None) -> None:
        pane = self.query_one(DetailPane)
        if ev is None:
            pane.show(Text("no events match", style="dim"))
            return
        context = None
        reader = self.reader
        if ev.source == "log" and reader is not None:
            context = reader.context(ev, 3)
        note = self.notes.get(ev) if self.notes is not None else None
        pane.show(describe(ev, note=note, zone=self.zone, context=context))
        if self.playing:
            self.query_one(AlivePanel).show(self.snapshot, ev.ts)

    def _hits_in_view(self) -> None:
        events = self.query(EventList)
        reader = self.reader
        if not events or self.window is None or reader is None:
            return
        lst = events.first(EventList)
        rows = self.window.rows
        if not self.search_text or not rows:
            lst.hits = set()
        else:
            q = replace(self._query(True), start=rows[0].ts, end=rows[-1].ts + 1)
            ids = {e.id for e in reader.iter_events(q, limit=len(rows) * 4)}
            lst.hits = ids
        lst.refresh()

    @property
    def events_list(self) -> EventList | None:
        found = self.query(EventList)
        return found.first(EventList) if found else None

    def current(self) -> Event | None:
        return self.window.current if self.window is not None else None

    # -- filters and search ---------------------------------------------------------------
    def set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self.hist_range = None
        self.position = None
        self.total = None
        if self.window is not None:
            self.window.query = self._query()
            lst = self.events_list
            if lst is not None:
                lst.reload()
        self._chips()
        self.show_status()
        # counting and the histogram after the filtered rows are on screen
        self.call_after_refresh(self.refresh_counts)
        self.call_after_refresh(self.refresh_histogram)

    def action_toggle_source(self, source: str) -> None:
        self.set_filters(self.filters.toggle_source(source))

    def action_clear_filters(self) -> None:
        self.search_text = None
        self.set_filters(Filters())

    @on(FilterChips.Removed)
    def _chip_removed(self, message: FilterChips.Removed) -> None:
        if message.chip == "search":
            self.search_text = None
            self.search_hits = None
            self._chips()
            self._hits_in_view()
            return
        self.set_filters(self.filters.without(message.chip))

    def action_filters(self) -> None:
        from tui.replay.screens.filter import FilterScreen  # noqa: PLC0415

        def done(result: Filters | None) -> None:
            if result is not None:
                self.set_filters(result)

        self.push_screen(FilterScreen(self.filters, self.tz), done)

    def action_search(self) -> None:
        from tui.replay.screens.prompt import PromptScreen  # noqa: PLC0415

        def done(text: str | None) -> None:
            if text is None:
                return
            self.search(text.strip() or None)

        self.push_screen(
            PromptScreen("search (all words; word* = prefix)", self.search_text or ""), done
        )

    def search(self, text: str | None) -> None:
        """Search ``text`` (None: stop searching) and go to the first hit from the cursor."""
        self.search_text = text
        self.search_hits = None
        self._chips()
        self.show_status()
        if text:
            self.refresh_counts()
            self.action_hit(0)
        else:
            self._hits_in_view()

    def action_hit(self, direction: int) -> None:
        """Next (1), previous (-1) or first at/after the cursor (0) search hit."""
        reader = self.reader
        if not self.search_text or reader is None or self.window is None or self.window.frozen:
            return
        cur = self.current()
        q = self._query(True)
        if cur is None:
            found = reader.events(q, limit=1)
        elif direction >= 0:
            after = (cur.ts, cur.id - 1) if direction == 0 else key(cur)
            found = reader.events(q, after=after, limit=1)
        else:
            found = reader.events_before(q, key(cur), 1)
        if not found:
            self.notify("no more hits" if direction else "no hits", severity="warning")
            return
        lst = self.events_list
        if lst is not None:
            lst.goto_event(found[0])

    # -- moving ---------------------------------------------------------------------------
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
            self.goto_time(ts)

        cur = self.current()
        self.push_screen(
            PromptScreen("go to time (e.g. 2026-11-23T17:58:49Z, 2026-11-23 17:58)",
                         fmt_time(cur.ts) if cur else ""), done)  # fmt: skip

    def goto_time(self, ts: int) -> None:
        lst = self.events_list
        if lst is not None:
            lst.goto_time(ts)

    @on(HistogramStrip.Jump)
    def _hist_jump(self, message: HistogramStrip.Jump) -> None:
        self.goto_time(message.ts)

    def action_zoom(self, direction: int) -> None:
        lo, hi = self._hist_bounds()
        cur = self.current()
        mid = cur.ts if cur is not None else (lo + hi) // 2
        span = hi - lo
        span = max(1000, span // 2) if direction > 0 else span * 2
        full = self.hist_range is not None and direction < 0
        self.hist_range = (mid - span // 2, mid + span // 2)
        if full:
            meta = self.tl.meta if self.tl is not None else {}
            tmin, tmax = meta.get("time_min") or 0, (meta.get("time_max") or 0) + 1
            if self.hist_range[0] <= tmin and self.hist_range[1] >= tmax:
                self.hist_range = None
        self.refresh_histogram()

    def action_toggle_zone(self) -> None:
        self.zone = None if self.zone is not None else local_zone()
        lst = self.events_list
        if lst is not None:
            lst.zone = self.zone
            lst.refresh()
        self._detail(self.current())
        self.show_status()

    def action_toggle_detail(self) -> None:
        self.query_one("#side").toggle_class("hidden")

    # -- notes (tui/replay/notes_actions.py) and playback (tui/replay/playback.py) --
    def action_bookmark(self) -> None:
        notes_actions.bookmark(self)

    def action_tag(self) -> None:
        notes_actions.tag(self)

    def action_annotate(self) -> None:
        notes_actions.annotate(self)

    def action_play(self) -> None:
        playback.toggle(self)

    def action_speed(self, direction: int) -> None:
        playback.change_speed(self, direction)

    # -- other views ----------------------------------------------------------------------
    def _wait_for_build(self, what: str) -> bool:
        """True (and a one-line notice) while the store is still being built."""
        if self.tl is None and self.window is not None:
            self.notify(f"{what} once the timeline is built", severity="warning", markup=False)
            return True
        return False

    def action_view(self, name: str) -> None:
        from tui.replay.screens import open_view  # noqa: PLC0415

        if name in ("files", "yara") and self.tl is None and self.window is not None:
            # they read the finished store: open when it is there (as a finding's jump)
            self.notify(f"the {name} view opens when the timeline is built", markup=False)
            self._when_built(lambda: open_view(self, name))
            return
        open_view(self, name)

    def _when_built(self, then: Any) -> None:
        if self._closing:
            return
        if self.tl is not None:
            then()
        else:
            self.set_timer(0.1, lambda: self._when_built(then))

    def action_open(self) -> None:
        from tui.replay.screens import open_pivot  # noqa: PLC0415

        ev = self.current()
        if ev is not None and ev.source in ("fs", "log") and self._wait_for_build("it opens"):
            return
        if ev is not None:
            open_pivot(self, ev)

    def action_findings(self) -> None:
        from tui.replay import findings_actions  # noqa: PLC0415

        self._start_findings()
        findings_actions.open_view(self)

    def action_help(self) -> None:
        from tui.replay.screens.help import HelpScreen  # noqa: PLC0415

        self.push_screen(HelpScreen())

    def action_export(self) -> None:
        from tui.replay.screens.export import ExportScreen  # noqa: PLC0415

        if self._wait_for_build("export is possible"):
            return
        if self.tl is not None:
            self.push_screen(ExportScreen(self))


def make_app(
    bundle: str | Path,
    *,
    tz: str = "UTC",
    local_time: bool = False,
    from_container_start: bool = False,
    findings_first: bool = False,
) -> ReplayApp:
    """The replay app for ``bundle`` (tests build it through here); ``findings_first``:
    open on the findings view (as `exuvia replay` does)."""
    return ReplayApp(
        bundle,
        tz=tz,
        local_time=local_time,
        from_container_start=from_container_start,
        findings_first=findings_first,
    )
