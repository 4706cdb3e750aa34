"""Pick what to triage, k9s-style: local containers of every runtime, or
Kubernetes namespaces -> pods -> containers.

`:` switches resource (containers, ns, pods), `/` filters, Enter opens, Esc goes back.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from collectors.fs.browse import TargetRoot
from collectors.inventory import list_containers
from collectors.targets import resolve
from collectors.targets.base import LocalContainer
from forensics.errors import ExuviaError
from tui.triage.session import TriageSession
from tui.triage.text import age, lit, notice

RESOURCES = {
    "containers": "containers",
    "ctr": "containers",
    "co": "containers",
    "ns": "namespaces",
    "namespaces": "namespaces",
    "pods": "pods",
    "po": "pods",
}


class PickerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("colon", "command", "Resource"),
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    resource: reactive[str] = reactive("containers")
    filter_text: reactive[str] = reactive("")

    def __init__(self, session: TriageSession) -> None:
        super().__init__()
        self.session = session
        self.rows: dict[str, Any] = {}
        self.namespace: str | None = None
        self.pod: Any = None
        self._kc: Any = None

    def compose(self) -> ComposeResult:
        yield Static(id="picker-title")
        box = Input(id="picker-input")
        box.cursor_blink = False  # steady: nothing on screen changes by itself
        yield box
        yield DataTable(id="picker-table", cursor_type="row")
        yield Static(id="picker-notes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#picker-input", Input).display = False
        self.reload()

    # -- state -------------------------------------------------------------------
    def watch_resource(self, value: str) -> None:
        for r in ("containers", "namespaces", "pods", "pod-containers"):
            self.set_class(r == value, f"-{r}")

    def watch_filter_text(self, _value: str) -> None:
        self.set_class(bool(self.filter_text), "-filtered")
        if self.is_mounted:
            self._fill_table()

    def _title(self) -> None:
        where = {
            "containers": "local containers",
            "namespaces": "namespaces",
            "pods": f"pods in {self.namespace}",
            "pod-containers": f"containers of {self.namespace}/{getattr(self.pod, 'name', '')}",
        }[self.resource]
        t = Text("exuvia triage — ", style="bold")
        t.append_text(lit(where, "bold"))
        if self.filter_text:
            t.append("  filter: ")
            t.append_text(lit(self.filter_text, "reverse"))
        t.append("   :resource  /filter  enter open  esc back", style="dim")
        self.query_one("#picker-title", Static).update(t)

    # -- loading -----------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._title()
        self.query_one("#picker-notes", Static).update(Text("loading…", style="dim"))
        self._load(self.resource, self.namespace)

    @work(thread=True, exclusive=True, group="picker")
    def _load(self, resource: str, namespace: str | None) -> None:
        notes: list[str] = []
        items: list[Any] = []
        try:
            if resource == "containers":
                inv = list_containers(self.session.opts.procfs)
                items, notes = list(inv.containers), inv.notes
            elif resource == "namespaces":
                from collectors.k8s.pods import list_namespaces  # noqa: PLC0415 - only with k8s

                items = list_namespaces(self._client())
            elif resource == "pods" and namespace:
                from collectors.k8s.pods import list_pods  # noqa: PLC0415

                items = list_pods(self._client(), namespace)
            elif resource == "pod-containers" and self.pod is not None:
                items = list(self.pod.containers)
        except ExuviaError as err:
            notes.append(str(err))
        self.app.call_from_thread(self._loaded, resource, items, notes)

    def _client(self) -> Any:
        if self._kc is None:
            from collectors.k8s.client import KubeClient  # noqa: PLC0415

            o = self.session.opts
            self._kc = KubeClient(o.kubeconfig, o.context)
        return self._kc

    def _loaded(self, resource: str, items: list[Any], notes: list[str]) -> None:
        if resource != self.resource:
            return
        self.items = items
        self.query_one("#picker-notes", Static).update(
            Text("\n").join(lit(line, "dim") for line in [f"{len(items)} shown", *notes])
        )
        self._fill_table()

    def _fill_table(self) -> None:
        self._title()
        table = self.query_one("#picker-table", DataTable)
        table.clear(columns=True)
        self.rows = {}
        now = time.time()
        items = getattr(self, "items", [])
        needle = self.filter_text.lower()
        if self.resource == "containers":
            for col in ("RUNTIME", "NAME", "IMAGE", "AGE", "RESTARTS", "PID", "SHELL"):
                table.add_column(col, key=col)
            for c in items:
                assert isinstance(c, LocalContainer)
                if needle and needle not in f"{c.runtime} {c.name} {c.image}".lower():
                    continue
                badge = {True: lit("sh"), False: lit("no shell", "bold magenta"), None: lit("?")}
                self.rows[c.uri] = c
                table.add_row(
                    lit(c.runtime), lit(c.name, "bold"), lit(c.image or "?"),
                    lit(age(c.created_ns, now)),
                    lit("-" if c.restarts is None else c.restarts), lit(c.pid),
                    badge[c.shell], key=c.uri,
                )  # fmt: skip
        elif self.resource == "namespaces":
            table.add_column("NAMESPACE", key="ns")
            for ns in items:
                if needle and needle not in ns.lower():
                    continue
                self.rows[ns] = ns
                table.add_row(lit(ns, "bold"), key=ns)
        elif self.resource == "pods":
            for col in ("POD", "PHASE", "CONTAINERS", "RESTARTS", "AGE", "NODE"):
                table.add_column(col, key=col)
            for p in items:
                if needle and needle not in p.name.lower():
                    continue
                self.rows[p.name] = p
                table.add_row(
                    lit(p.name, "bold"), lit(p.phase), lit(len(p.containers)),
                    lit(p.restarts), lit(age(p.created_ns, now)), lit(p.node), key=p.name,
                )  # fmt: skip
        else:
            for col in ("CONTAINER", "IMAGE", "STATE", "RESTARTS", "READY", "SHELL"):
                table.add_column(col, key=col)
            for c in items:
                if needle and needle not in c.name.lower():
                    continue
                self.rows[c.name] = c
                table.add_row(
                    lit(c.name, "bold"), lit(c.image), lit(c.state), lit(c.restarts),
                    lit("yes" if c.ready else "no"), lit("? (needs the agent)", "dim"),
                    key=c.name,
                )  # fmt: skip
        table.focus()

    # -- input -------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#picker-input", Input)
        box.placeholder = "filter (literal text)"
        box.value = self.filter_text
        box.display = True
        box.focus()
        self._mode = "filter"

    def action_command(self) -> None:
        box = self.query_one("#picker-input", Input)
        box.placeholder = "resource: containers | ns | pods"
        box.value = ""
        box.display = True
        box.focus()
        self._mode = "command"

    @on(Input.Submitted, "#picker-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        value = event.value.strip()
        if getattr(self, "_mode", "filter") == "filter":
            self.filter_text = value
            return
        res = RESOURCES.get(value.lower())
        if res is None:
            notice(self, f"unknown resource {value!r}: containers, ns, pods")
            return
        if res == "pods" and not self.namespace:
            self.namespace = self._client_namespace()
        self.filter_text = ""
        self.resource = res
        self.reload()

    def _client_namespace(self) -> str:
        try:
            return str(self._client().namespace)
        except ExuviaError:
            return "default"

    def action_back(self) -> None:
        box = self.query_one("#picker-input", Input)
        if box.display:
            box.display = False
            return
        if self.filter_text:
            self.filter_text = ""
            return
        back = {"pod-containers": "pods", "pods": "namespaces", "namespaces": "containers"}
        if self.resource in back:
            self.resource = back[self.resource]
            self.reload()

    @on(DataTable.RowSelected, "#picker-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        item = self.rows.get(key)
        if item is None:
            return
        if self.resource == "containers":
            self.session.record("target.picked", target=key)
            notice(self, f"opening {key}…")
            self._open_local(key)
        elif self.resource == "namespaces":
            self.namespace = key
            self.resource = "pods"
            self.reload()
        elif self.resource == "pods":
            self.pod = item
            self.resource = "pod-containers"
            self.reload()
        else:
            from tui.triage.screens.pod import PodScreen  # noqa: PLC0415

            self.session.record("target.picked", target=self.pod.uri(key))
            self.app.push_screen(PodScreen(self.pod, key, self._client(), self.session))

    @work(thread=True, group="open")
    def _open_local(self, uri: str) -> None:
        try:
            target = resolve(uri, procfs=self.session.opts.procfs)
            root = TargetRoot(target.pid, self.session.opts.procfs, target.upperdir)
        except ExuviaError as err:
            self.app.call_from_thread(notice, self, str(err), "error")
            return
        self.app.call_from_thread(self.app.open_target, target, root)  # type: ignore[attr-defined]
