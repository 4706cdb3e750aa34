"""The triage app: a picker without a target, the dashboard with one.

``make_app`` builds it (tests and `exuvia triage` both use it). The app's
result is None, or ("replay", bundle path) when the examiner asked to open a
finished capture in the replay viewer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message

from collectors.fs.browse import TargetRoot
from collectors.targets.base import TargetInfo
from tui.triage.screens.dashboard import DashboardScreen
from tui.triage.screens.picker import PickerScreen
from tui.triage.session import SessionOptions, TriageSession

AppResult = tuple[str, Path] | None


class TriageApp(App[AppResult]):
    CSS_PATH = "triage.tcss"
    TITLE = "exuvia triage"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]

    class FirstTree(Message):
        """The first process tree is on screen (the speed benchmark waits for it)."""

    def __init__(
        self,
        session: TriageSession,
        target: TargetInfo | None = None,
        root: TargetRoot | None = None,
        pod: tuple[Any, str, Any] | None = None,
        fleet: tuple[Any, Any, Any] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.pod = pod  # (PodRow, container, KubeClient) for `exuvia triage k8s://…`
        self.fleet = fleet  # (FleetRequest, Resolution, KubeClient) for `… -l SELECTOR`
        self.target = target
        self.root = root
        self.roots: list[TargetRoot] = [root] if root is not None else []
        self.launched_at = time.monotonic()
        self.first_tree_s: float | None = None

    def on_mount(self) -> None:
        if self.fleet is not None:
            from tui.triage.screens.fleet import FleetScreen  # noqa: PLC0415

            request, resolution, client = self.fleet
            self.session.record("target.picked", target=request.target)
            self.push_screen(FleetScreen(request, resolution, client, self.session))
        elif self.pod is not None:
            from tui.triage.screens.pod import PodScreen  # noqa: PLC0415

            row, container, client = self.pod
            self.session.record("target.picked", target=row.uri(container))
            self.push_screen(PodScreen(row, container, client, self.session))
        elif self.target is not None and self.root is not None:
            self.push_screen(DashboardScreen(self.target, self.root, self.session))
        else:
            self.push_screen(PickerScreen(self.session))

    def open_target(self, target: TargetInfo, root: TargetRoot) -> None:
        self.roots.append(root)
        self.push_screen(DashboardScreen(target, root, self.session))

    def on_triage_app_first_tree(self, _msg: FirstTree) -> None:
        if self.first_tree_s is None:
            self.first_tree_s = time.monotonic() - self.launched_at

    def on_unmount(self) -> None:
        self.session.record("triage.ended")
        for r in self.roots:
            r.close()


def make_app(
    target: TargetInfo | None = None,
    *,
    root: TargetRoot | None = None,
    options: SessionOptions | None = None,
    pod: tuple[Any, str, Any] | None = None,
    fleet: tuple[Any, Any, Any] | None = None,
    **kw: Any,
) -> TriageApp:
    """The app for ``target`` (its root opened here unless given), for ``pod``
    ((PodRow, container, KubeClient): the pod dashboard), or the picker."""
    opts = options or SessionOptions(**kw)
    session = TriageSession(opts)
    if target is not None and root is None:
        root = TargetRoot(target.pid, opts.procfs, target.upperdir)
    return TriageApp(session, target, root, pod, fleet)
