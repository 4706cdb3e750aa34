"""The live dashboard, driven by Pilot, against a real shell-less runc container."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.targets import resolve
from tests.tui.triage_support import *  # noqa: F403 - fixtures
from tests.tui.triage_support import SIZE, deterministic_env, wait_for
from tui.triage.app import make_app
from tui.triage.session import SessionOptions
from tui.triage.widgets.process_tree import ProcessTree

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest.fixture
def app_for(runc_target, tmp_path: Path):  # type: ignore[no-untyped-def]
    deterministic_env()
    target = resolve(runc_target.uri)
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", refresh_s=0.5)
    return lambda: make_app(target, options=opts)


async def test_process_tree_shows_target_and_implant(app_for) -> None:  # type: ignore[no-untyped-def]
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.screen.query_one(ProcessTree)
        await wait_for(pilot, lambda: tree.row_count >= 3, what="process rows")
        rows = tree.rows_shown
        assert rows[0].nspid == 1
        names = [" ".join(r.cmdline) for r in rows]
        assert any("/app/target" in n for n in names), names
        assert any(r.exe_deleted or r.exe_memfd for r in rows), names
        assert app.first_tree_s is not None
