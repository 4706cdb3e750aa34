"""What the replay app's main screens look like (pytest-textual-snapshot).

Deterministic: a fixed bundle (tests/support/incident_bundle.py), fixed size,
fixed zone, no animations; each screen is taken once its workers are done.
Update after a deliberate change with ``pytest tests/tui --snapshot-update``
and review the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tui.conftest import ready, settled, wait_for
from tui.replay.app import make_app
from tui.replay.widgets.histogram import HistogramStrip

SIZE = (140, 40)


async def quiet(pilot: Any) -> None:
    """The status line, histogram and chips as the workers leave them: counted,
    ranked, drawn, and none of those workers still running (a fixed pause is
    not enough on a loaded machine: a filter's count or a move's rank can land
    after it)."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: app.total is not None and app.position is not None
        and app.query_one(HistogramStrip).hist is not None,
    )  # fmt: skip
    for group in ("count", "rank", "histogram", "chips"):
        await settled(pilot, group)
    await pilot.pause(0.2)


async def opened(pilot: Any) -> None:
    await ready(pilot)
    await quiet(pilot)


def shot(snap_compare: Any, bundle: Path, keys: list[str], after: Any = None) -> bool:
    async def run_before(pilot: Any) -> None:
        await opened(pilot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        if after is not None:
            await after(pilot)
        await quiet(pilot)

    return bool(snap_compare(make_app(bundle), terminal_size=SIZE, run_before=run_before))


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("timeline", []),
        ("help", ["question_mark"]),
        ("processes", ["P"]),
        ("manifest", ["M"]),
        ("filters", ["f"]),
        ("log_only_no_detail", ["3", "d"]),
    ],
)
def test_screens(snap_compare: Any, incident: Path, name: str, keys: list[str]) -> None:
    assert shot(snap_compare, incident, keys), name


def test_message_column_stays_at_160_columns_with_the_detail_pane(
    snap_compare: Any, incident: Path
) -> None:
    """The detail pane takes ~42 % of the width: the other columns narrow, the
    message stays (it used to be pushed off the screen)."""

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await opened(pilot)
        await pilot.press("end")
        # the position is ranked in the background, 0.15 s after the cursor stops
        await wait_for(pilot, lambda: app.position == 46)
        await quiet(pilot)

    assert snap_compare(make_app(incident), terminal_size=(160, 45), run_before=run_before)


def test_findings_view(snap_compare: Any, incident: Path) -> None:
    from tui.findings.screen import FindingsScreen  # noqa: PLC0415

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen))
        await wait_for(pilot, lambda: app.screen.report is not None)
        await pilot.pause(0.3)

    app = make_app(incident, findings_first=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failed_verification_screen(snap_compare: Any, incident: Path) -> None:
    data = bytearray(incident.read_bytes())
    data[len(data) // 2] ^= 0x55
    bad = incident.with_name("altered.exv")
    bad.write_bytes(bytes(data))

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: pilot.app.report is not None)
        await quiet(pilot)  # the timeline behind the banner, counted and ranked

    assert snap_compare(make_app(bad), terminal_size=SIZE, run_before=run_before)
