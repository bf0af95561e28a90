"""SVG snapshots of the reader app (pytest-textual-snapshot). Update: pytest tests/test_app_snapshots.py --snapshot-update

Deterministic: fixed terminal size, the offline guide or scripted fake-API replies, no
clock on screen, the input's cursor does not blink.
"""

from __future__ import annotations

import pytest

from app_helpers import SAMPLE, claude_backend, idle, open_session, wait_until
from fake_api import FakeAPI, http_error, text

from tutor.app.app import TutorApp

SIZE = (120, 36)


async def _ready(pilot) -> None:
    app = pilot.app
    app.input.cursor_blink = False
    await idle(pilot, app)


async def _say(pilot, words: str) -> None:
    app = pilot.app
    app.input.text = words
    await pilot.press("enter")
    await pilot.pause(0.05)
    await idle(pilot, app)


def test_main_screen(snap_compare, tmp_path):
    app = TutorApp(open_session(SAMPLE, tmp_path / "t.db"))

    async def run_before(pilot):
        await _ready(pilot)
        await _say(pilot, "no")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_outline_with_mixed_states(snap_compare, tmp_path):
    app = TutorApp(open_session(SAMPLE, tmp_path / "t.db"))

    async def run_before(pilot):
        await _ready(pilot)
        # pages: read, both checks right -> understood; rollback journal: known;
        # write-ahead log file: read, a check wrong -> shaky (current)
        for words in ("no", "", "a guess", "yes", "another guess", "yes", "yes", "no", "", "", "a guess", "no"):
            await _say(pilot, words)
        # checkpoints: known, from the outline menu
        app.outline.focus()
        app.outline.highlighted = 5
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("down", "enter")
        await pilot.pause(0.05)
        await idle(pilot, app)
        app.input.focus()
        app.input.cursor_blink = False
        await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.fixture
def api():
    with FakeAPI() as server:
        yield server


def test_error_notification(snap_compare, tmp_path, api):
    api.enqueue(text("I want to explain the write-ahead log to you. Do you already know what a **page** is?", chunk_size=12))
    api.enqueue(http_error(429))
    app = TutorApp(open_session(SAMPLE, tmp_path / "t.db", backend=claude_backend(api, model="claude-sonnet-4-5")))

    async def run_before(pilot):
        await _ready(pilot)
        await _say(pilot, "Not really, what is a page?")
        await wait_until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        await pilot.pause(0.3)  # the toast's fade-in

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
