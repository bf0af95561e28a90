"""Helpers for the app tests: real sessions on throwaway SQLite files, waiting, reading the screen.

Nothing here fakes our own classes: sessions are real ``TutorSession`` objects on a real
``Store``; the Claude back end is the real ``ClaudeBackend`` talking HTTP to
``tests/fake_api.py``.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Let the app run until ``predicate()`` is truthy; fail with a clear message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await pilot.pause(0.02)


def open_session(explainer_path: Path | str, db_path: Path | str, *, backend: Any = None, new: bool = False, session_id: str | None = None) -> Any:
    """A real TutorSession on a real SQLite file."""
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.store import Store

    return TutorSession.open(load(explainer_path), Store.open(db_path), backend=backend, new=new, session_id=session_id)


def claude_backend(api: Any, **kw: Any) -> Any:
    from tutor.engine.claude import ClaudeBackend

    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5.0)
    return ClaudeBackend(model=kw.pop("model", None), api_key="test-key", base_url=api.url, **kw)


def screen_text(app: Any) -> str:
    """The visible screen as plain text (what a terminal would show, without styles)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def dialogue(app: Any) -> list[tuple[str, str]]:
    """(kind, plain text) for each mounted message in the dialogue pane, top to bottom."""
    from textual.widgets._markdown import MarkdownBlock

    from tutor.app.widgets import NoteMessage, ReaderMessage, TutorMessage

    out: list[tuple[str, str]] = []
    for w in app.pane.children:
        if isinstance(w, TutorMessage):
            blocks = [b._content.plain for b in w.query(MarkdownBlock) if getattr(b, "_content", None) is not None]
            out.append(("tutor", "\n".join(x for x in blocks if x)))
        elif isinstance(w, ReaderMessage):
            out.append(("reader", w.visual.plain if hasattr(w.visual, "plain") else str(w.render())))
        elif isinstance(w, NoteMessage):
            out.append(("note", str(w.render())))
    return out


def notifications(app: Any) -> list[Any]:
    """Every notification currently shown (title, message, severity)."""
    return list(app._notifications)


async def idle(pilot: Any, app: Any, timeout: float = 10.0) -> None:
    """Wait until no engine turn is running."""
    await wait_until(pilot, lambda: not app.busy, timeout, "the turn to finish")
    await pilot.pause(0.05)


async def send(pilot: Any, app: Any, text: str, timeout: float = 10.0) -> None:
    """Type ``text`` into the input, press Enter and wait for the turn to finish."""
    app.input.text = text
    await pilot.press("enter")
    await pilot.pause(0.05)
    await idle(pilot, app, timeout)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
