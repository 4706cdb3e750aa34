"""Fixtures for the Textual tests: a fixed bundle, a fixed zone, a private cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.incident_bundle import build


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")  # local time differs from UTC, on purpose
    time.tzset()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def incident(tmp_path: Path) -> Path:
    d = tmp_path / "case"
    d.mkdir()
    return build(d / "incident.exv")


async def wait_for(pilot: Any, cond: Callable[[], object], timeout: float = 60.0) -> None:
    """Let the app run until ``cond()`` holds (workers finish at their own pace; the
    bound is generous: CI shares the machine, and a passing test never waits it out)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.02)
        await asyncio.sleep(0)


async def settled(pilot: Any, group: str) -> None:
    """Let the app run until no worker of ``group`` is pending or running (e.g. the
    filter chips, which are removed and mounted again by an async worker)."""
    from textual.worker import WorkerState  # noqa: PLC0415

    busy = (WorkerState.PENDING, WorkerState.RUNNING)
    await wait_for(
        pilot, lambda: not any(w.group == group and w.state in busy for w in pilot.app.workers)
    )


async def ready(pilot: Any) -> None:
    app = pilot.app
    await wait_for(
        pilot,
        lambda: app.window is not None and app.window.rows and app.report is not None
        and app.snapshot is not None and app.total is not None,
    )  # fmt: skip
    await pilot.pause()


async def answer(pilot: Any, key: str, text: str) -> None:
    """Press ``key`` (g, /, t, a ...), type ``text`` in the prompt it opens, Enter."""
    await pilot.press(key)
    pilot.app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")


def line_text(widget: Any, y: int) -> str:
    return "".join(seg.text for seg in widget.render_line(y))


def static_text(widget: Any) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)
