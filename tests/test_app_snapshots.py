"""SVG snapshots of the reader app (pytest-textual-snapshot). Update: pytest tests/test_app_snapshots.py --snapshot-update

Deterministic: fixed terminal size, the offline guide or scripted fake-API replies, no
clock on screen, the input's cursor does not blink.
"""

from __future__ import annotations

import pytest

from tutor.app.app import TutorApp

from app_helpers import claude_backend, idle, open_session, send, wait_until
from fake_api import http_error, text

SIZE = (120, 36)

# A fixed explainer, so the snapshots change only when the app (or the engine's words) do,
# not when the sample explainers are edited.
EXPLAINER = """---
tutor: 1
title: How a write-ahead log works
summary: Pages, the journal, the log and checkpoints.
audience: Developers.
author: Snapshot tests
concepts:
  - id: pages
    title: Pages and the database file
    summary: The file is cut into fixed-size pages.
    prerequisites: []
    checks:
      - question: "Why can one small insert change several pages?"
        answer: "The table leaf and each index leaf change, and splits change parents."
      - question: "Why is writing several pages risky?"
        answer: "A crash halfway leaves some pages new and some old."
  - id: journal
    title: The rollback journal
    summary: Save the old pages first.
    prerequisites: [pages]
  - id: wal
    title: The write-ahead log file
    summary: Append new pages to a second file.
    prerequisites: [journal]
    checks:
      - question: "Where does a commit in WAL mode write the changed pages?"
        answer: "At the end of the -wal file, never into the database file."
  - id: readers
    title: Readers and snapshots
    summary: Readers see the log up to a mark.
    prerequisites: [wal]
  - id: checkpoints
    title: Checkpoints
    summary: Copy pages back into the database file.
    prerequisites: [wal]
  - id: durability
    title: Durability and PRAGMA synchronous
    summary: What fsync buys you.
    prerequisites: [checkpoints]
---

# How a write-ahead log works

## Pages and the database file {#pages}

A database is one file divided into fixed-size **pages**, usually `4096` bytes.
SQLite reads and writes whole pages.

    $ sqlite3 app.db 'PRAGMA page_size;'
    4096

A single small INSERT can touch several pages: the table's leaf, each index's leaf,
and the parents of any page that splits.

## The rollback journal {#journal}

The classic mode copies the original pages into `app.db-journal` first, then writes the
new pages in place, and deletes the journal to commit.

## The write-ahead log file {#wal}

WAL mode leaves the database file alone and **appends the new versions of changed pages**
to `app.db-wal`. A commit is a frame marked as a commit.

## Readers and snapshots {#readers}

A reader remembers how far the log reached when it started and ignores later frames.

## Checkpoints {#checkpoints}

A checkpoint copies the newest version of each page from the log back into the database.

## Durability and PRAGMA synchronous {#durability}

`synchronous=FULL` syncs the log at every commit; `NORMAL` only at checkpoints.
"""


@pytest.fixture
def explainer(tmp_path):
    path = tmp_path / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    return path


async def _ready(pilot) -> None:
    app = pilot.app
    app.input.cursor_blink = False
    await idle(pilot, app)


def test_main_screen(snap_compare, tmp_path, explainer):
    app = TutorApp(open_session(explainer, tmp_path / "t.db"))

    async def run_before(pilot):
        await _ready(pilot)
        await send(pilot, pilot.app, "no")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_outline_with_mixed_states(snap_compare, tmp_path, explainer):
    app = TutorApp(open_session(explainer, tmp_path / "t.db"))

    async def run_before(pilot):
        await _ready(pilot)
        # pages: read, both checks right -> understood; rollback journal: known;
        # write-ahead log file: read, its check wrong -> shaky (current)
        # readers and snapshots: asked (current)
        # (the rollback journal's "yes" is verified with one check, answered right)
        for words in ("no", "a guess", "yes", "another guess", "yes", "yes", "Deleting the app.db-journal file.",
                      "no", "a guess", "no"):
            await send(pilot, pilot.app, words)
        # checkpoints: known, from the outline menu
        app.outline.focus()
        app.outline.highlighted = 4
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("down", "enter")
        await pilot.pause(0.05)
        await idle(pilot, app)
        app.input.focus()
        app.input.cursor_blink = False
        await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_error_notification(snap_compare, tmp_path, api, explainer):
    api.enqueue(text("I want to explain the write-ahead log to you. Do you already know what a **page** is?", chunk_size=12,
                     input_usage={"input_tokens": 1200}))  # fixed, so prompt edits don't move the header
    api.enqueue(http_error(429))
    app = TutorApp(open_session(explainer, tmp_path / "t.db", backend=claude_backend(api, model="claude-sonnet-4-6")))

    async def run_before(pilot):
        await _ready(pilot)
        await send(pilot, pilot.app, "Not really, what is a page?")
        await wait_until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        await pilot.pause(0.3)  # the toast's fade-in

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
