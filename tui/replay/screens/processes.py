"""`P` (or `o` on a process event): the captured process tree and one process in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree

from forensics.snapshot import Snapshot
from forensics.timeutil import iso_ns
from tui.replay.render import safe, safe_block


def process_label(proc: dict[str, Any]) -> Text:
    t = Text(f"{proc.get('nspid', '?')}", style="bold")
    t.append(f" (host {proc.get('pid', '?')}) ", style="dim")
    t.append_text(safe(proc.get("name", "?")))
    cmd = proc.get("cmdline")
    if isinstance(cmd, list) and cmd:
        t.append("  ").append_text(safe(" ".join(map(str, cmd)), "dim"))
    if proc.get("exe_deleted"):
        t.append("  [deleted exe]", style="bold red")
    if proc.get("exe_memfd"):
        t.append("  [memfd exe]", style="bold red")
    return t


def process_text(snap: Snapshot, proc: dict[str, Any]) -> Text:
    t = process_label(proc)
    t.append("\n\n")
    pid = proc.get("pid")
    rows = [
        ("cmdline", " ".join(map(str, proc.get("cmdline") or []))),
        ("exe", proc.get("exe")),
        ("cwd", proc.get("cwd")),
        ("root", proc.get("root")),
        ("parent", f"{proc.get('ppid')} (ns {proc.get('nsppid')})"),
        ("started", iso_ns(proc["start_ns"]) if isinstance(proc.get("start_ns"), int) else "?"),
        ("uid/gid", f"{proc.get('uid')} / {proc.get('gid')}"),
        ("state", proc.get("state_name") or proc.get("state")),
        ("threads", proc.get("threads")),
        ("rss", proc.get("rss_bytes")),
        ("capabilities", ", ".join(proc.get("cap_eff_names") or []) or proc.get("cap_eff")),
        ("seccomp", proc.get("seccomp_mode")),
        ("redacted env", ", ".join(proc.get("environ_redacted") or [])),
    ]
    for name, value in rows:
        if value not in (None, ""):
            t.append(f"{name:<13}", style="bold").append_text(safe(value)).append("\n")
    kids = snap.children(int(pid)) if isinstance(pid, int) else []
    t.append(f"\nchildren ({len(kids)})\n", style="bold")
    for k in kids:
        t.append("  ").append_text(process_label(k)).append("\n")
    fds = proc.get("fds") or []
    t.append(f"\nopen files ({len(fds)})\n", style="bold")
    for fd in fds:
        t.append(f"  {fd.get('fd', '?'):>4} ").append_text(safe(fd.get("target", "?"))).append("\n")
    socks = snap.sockets_of(int(pid)) if isinstance(pid, int) else []
    if socks:
        t.append(f"\nsockets ({len(socks)})\n", style="bold")
        for s in socks:
            t.append("  ").append_text(safe(socket_line(s))).append("\n")
    maps = sorted({m.get("path", "") for m in proc.get("maps") or [] if m.get("path")})
    t.append(f"\nmapped files ({len(maps)})\n", style="bold")
    for m in maps:
        t.append("  ").append_text(safe(m)).append("\n")
    mem = snap.memory_of(int(pid)) if isinstance(pid, int) else None
    if mem is not None:
        t.append_text(memory_text(mem))
        t.append("  m: hex and strings of a region\n", style="dim")
    env = proc.get("environ")
    if isinstance(env, list) and env:
        t.append("\nenvironment\n", style="bold")
        t.append_text(safe_block("\n".join(map(str, env))))
    return t


MAX_REGIONS_SHOWN = 300


def memory_text(mem: dict[str, Any]) -> Text:
    """The process's core (capture --memory): member, size, hash, smear window, and
    each mapping: range, permissions, kind, bytes stored and their SHA-256."""
    regions = [r for r in mem.get("regions") or [] if isinstance(r, dict)]
    start, end = mem.get("read_start_ns"), mem.get("read_end_ns")
    window = (
        f"{(end - start) / 1e6:.1f} ms from {iso_ns(start)}"
        if type(start) is int and type(end) is int
        else "?"
    )
    t = Text(f"\nmemory ({len(regions)} mappings)\n", style="bold")
    for name, value in (
        ("core", mem.get("member")),
        ("size", mem.get("size")),
        ("sha256", mem.get("sha256")),
        ("read", f"{window} (live: not an atomic snapshot)"),
    ):
        t.append(f"  {name:<8}", style="bold").append_text(safe(value)).append("\n")
    for r in regions[:MAX_REGIONS_SHOWN]:
        lo, hi = r.get("start"), r.get("end")
        span = f"{lo:#014x}-{hi:#014x}" if type(lo) is int and type(hi) is int else "?"
        line = f"  {span} {r.get('perms', '?')} {r.get('kind', '?'):<7} stored {r.get('stored', 0)}"
        if r.get("sha256"):
            line += f" sha256 {str(r['sha256'])[:16]}…"
        if r.get("unreadable"):
            line += f" unreadable ranges {len(r['unreadable'])}"
        t.append_text(safe(line))
        if r.get("path"):
            t.append(" ").append_text(safe(r["path"], "dim"))
        if r.get("not_stored"):
            t.append(" ").append_text(safe(f"(not stored: {r['not_stored']})", "dim"))
        t.append("\n")
    if len(regions) > MAX_REGIONS_SHOWN:
        t.append(f"  … {len(regions) - MAX_REGIONS_SHOWN} more in the memory records\n")
    return t


def socket_line(s: dict[str, Any]) -> str:
    local = f"{s.get('local_addr', s.get('path', ''))}:{s.get('local_port', '')}".rstrip(":")
    remote = f"{s.get('remote_addr', '')}:{s.get('remote_port', '')}".strip(":")
    return f"{s.get('proto', s.get('family', '?'))} {s.get('state', '')} {local} -> {remote}"


class ProcessScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("m", "memory", "Memory"),
    ]

    def __init__(self, snap: Snapshot, pid: int | None = None) -> None:
        super().__init__()
        self.snap = snap
        self.pid = pid
        self.shown: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        tree: Tree[dict[str, Any]] = Tree(Text("processes"), id="proc-tree")
        tree.show_root = False
        nodes: dict[Any, Any] = {}
        chosen = None
        for depth, proc in self.snap.tree():
            parent = nodes.get(proc.get("ppid")) if depth else None
            node = (parent or tree.root).add(process_label(proc), data=proc, expand=True)
            nodes[proc.get("pid")] = node
            if proc.get("pid") == self.pid:
                chosen = node
        self._chosen = chosen
        with Horizontal():
            yield tree
            with VerticalScroll(id="proc-detail"):
                yield Static(Text("select a process", style="dim"), id="proc-body")
        yield Footer()

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.focus()
        if self._chosen is not None:
            tree.select_node(self._chosen)
            tree.move_cursor(self._chosen)
            self._show(self._chosen.data)

    def _show(self, proc: dict[str, Any] | None) -> None:
        if proc is not None:
            self.shown = proc
            self.query_one("#proc-body", Static).update(process_text(self.snap, proc))

    def action_memory(self) -> None:
        """The shown process's core, region by region (hex and strings)."""
        from tui.replay.screens.memory import MemoryScreen  # noqa: PLC0415 - on demand

        pid = self.shown.get("pid") if self.shown else None
        mem = self.snap.memory_of(pid) if isinstance(pid, int) else None
        bundle = getattr(self.app, "bundle", None)
        if mem is None or bundle is None:
            self.notify("no memory captured for this process (capture --memory)")
            return
        self.app.push_screen(MemoryScreen(bundle, mem))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[dict[str, Any]]) -> None:
        self._show(event.node.data)
