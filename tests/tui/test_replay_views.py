"""The replay app's other views, pivots, and how it opens a bad bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Tree

from tests.support.incident_bundle import NAME_MARKUP
from tests.tui.conftest import answer, ready, static_text, wait_for
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)


async def test_process_pivot_and_tree(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "g", "2026-11-22T22:13:21Z")  # the server starts
        assert app.current().entity == "pid:4100"
        await pilot.press("o")
        body = static_text(app.screen.query_one("#proc-body"))
        assert "/app/server --port=8080" in body
        assert "children (2)" in body and ".x" in body and "worker" in body
        assert "socket:[9001]" in body  # open files
        assert "tcp LISTEN 0.0.0.0:8080" in body  # its sockets
        assert "API_TOKEN" in body  # environment, as captured (redacted at capture)
        tree = app.screen.query_one(Tree)
        labels = [n.label.plain for n in tree.root.children[0].children]
        assert any(".x" in lbl and "[deleted exe]" in lbl for lbl in labels)
        await pilot.press("escape")
        await pilot.press("P")
        assert app.screen.query_one(Tree).root.children


async def test_file_pivot_preview_text_and_hex_and_changed_filter(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "g", "2026-11-22T22:18:20Z")  # /etc/app.conf changes
        assert app.current().entity == "/etc/app.conf"
        await pilot.press("o")
        await wait_for(pilot, lambda: "sha256" in static_text(app.screen.query_one("#file-body")))
        body = static_text(app.screen.query_one("#file-body"))
        assert "CHANGED SINCE START" in body and "cd" * 32 in body
        await pilot.press("v")
        preview = app.screen.query_one("#file-preview")
        await wait_for(pilot, lambda: "backdoor = 4444" in static_text(preview))
        await pilot.press("escape")
        # the file tree, changed-only, and a binary file shown as hex
        await pilot.press("F")
        tree = app.screen.query_one(Tree)
        await wait_for(pilot, lambda: bool(tree.root.children))
        top = [n.label.plain for n in tree.root.children]
        assert top == ["app", "etc", "tmp"]
        await pilot.press("c")
        await pilot.pause()
        assert [n.label.plain for n in tree.root.children] == ["etc", "tmp"]
        tmp = tree.root.children[1]
        tmp.expand()
        await pilot.pause()
        names = [n.label.plain for n in tmp.children]
        assert NAME_MARKUP in names  # literal, not styled
        assert any("\\x1b]0;owned" in n and "\\n" in n for n in names)
        assert not any("\x1b" in n for n in names)
        blob = next(n for n in tmp.children if n.label.plain == "blob.bin")
        tree.move_cursor(blob)
        await pilot.pause()
        await pilot.press("v")
        preview = app.screen.query_one("#file-preview")
        await wait_for(pilot, lambda: "00000000  00 01 02 03" in static_text(preview))


async def test_log_pivot_shows_the_surrounding_lines(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "g", "2026-11-22T22:13:31Z")
        await pilot.press("o")
        text = static_text(app.screen.query_one("#context Static"))
        assert "logs/runtime/01-stdio.log" in text
        assert "request 0 ok" in text and "request 29 ok" in text
        assert "(implant staged)" in text
        assert "\x1b" not in text and "\\x1b]0;owned" in text


async def test_sockets_manifest_custody_and_inventory(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("S")
        table = app.screen.query_one(DataTable)
        rows = [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert ["tcp", "LISTEN", "0.0.0.0:4444", "0.0.0.0:0", "4107/.x fd 4", "9002"] in rows
        await pilot.press("escape", "M")
        verify = static_text(app.screen.query_one("#tab-verify Static"))
        assert "verification: OK" in verify and "complete: True" in verify
        custody = static_text(app.screen.query_one("#tab-custody Static"))
        assert "capture.started" in custody and "alice@lab" in custody and "IR-7" in custody
        skips = static_text(app.screen.query_one("#tab-skips Static"))
        assert "/proc" in skips and "pseudo filesystem" in skips
        await pilot.press("escape", "I")
        body = app.screen.query_one("#inventory-body")
        await wait_for(pilot, lambda: "executables" in static_text(body))
        assert "packages" in static_text(body)


async def test_an_altered_bundle_opens_behind_a_loud_banner(incident: Path) -> None:
    data = bytearray(incident.read_bytes())
    # flip a byte in the compressed stream's middle: some member no longer matches
    data[len(data) // 2] ^= 0x55
    bad = incident.with_name("altered.exv")
    bad.write_bytes(bytes(data))
    app = make_app(bad)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.report is not None)
        await pilot.pause()
        assert not app.report.ok
        assert type(app.screen).__name__ == "VerifyFailedScreen"
        shown = static_text(app.screen.query_one("Static"))
        assert "THIS BUNDLE FAILED VERIFICATION" in shown
        await pilot.press("enter")
        banner = app.query_one("#banner")
        assert banner.has_class("failed")
        assert "VERIFICATION FAILED" in static_text(banner)
        assert "VERIFY FAILED" in static_text(app.query_one("#title"))


async def test_an_incomplete_bundle_says_so(incident: Path) -> None:
    data = incident.read_bytes()
    cut = incident.with_name("cut.exv")
    cut.write_bytes(data[: int(len(data) * 0.8)])
    app = make_app(cut)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.report is not None)
        await pilot.pause()
        if app.report.ok:  # pragma: no cover - a cut stream never verifies complete
            raise AssertionError("a cut bundle verified")
        assert app.query_one("#banner").has_class("failed") or app.query_one("#banner").has_class(
            "incomplete"
        )


async def test_from_container_start_opens_at_the_containers_creation(incident: Path) -> None:
    app = make_app(incident, from_container_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.pause()
        assert app.current().kind == "container.created"


@pytest.mark.parametrize(
    "content",
    [b"", b"not a bundle at all\n" * 100, bytes(range(256)) * 64],
    ids=["empty", "text", "binary"],
)
async def test_a_file_that_is_no_bundle_is_explained_not_a_crash(
    tmp_path: Path, content: bytes
) -> None:
    junk = tmp_path / "junk.exv"
    junk.write_bytes(content)
    app = make_app(junk)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.report is not None and app.snapshot is not None)
        await wait_for(pilot, lambda: "cannot open" in static_text(app.query_one("#loading")))
        assert type(app.screen).__name__ == "VerifyFailedScreen"
        await pilot.press("enter", "down", "end", "slash", "escape", "P", "escape", "M")
        await pilot.press("escape", "F", "escape", "b", "question_mark", "escape")
        assert app.query_one("#banner").has_class("failed")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "xdg-cache") in (
        ["junk.exv"],
        ["junk.exv", "junk.exv.exuvia-cache"],
    )
