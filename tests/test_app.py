"""Pilot tests of the reader app on real sessions, real SQLite files and the fake Messages API."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tutor.app.app import ERROR_TITLES, TutorApp
from tutor.app.widgets import NoteMessage, ReaderMessage, TutorMessage
from tutor.engine.notices import NoticeKind, StartNotice
from tutor.export import default_filename
from tutor.store import Store

from app_helpers import (
    SAMPLE,
    claude_backend,
    dialogue,
    idle,
    notifications,
    open_session,
    screen_text,
    send,
    wait_until,
)
from fake_api import drop, hang, http_error, no_stop, stream_error, text

SIZE = (120, 40)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tutor.db"


def last_tutor(app) -> str:
    msgs = [t for k, t in dialogue(app) if k == "tutor"]
    return msgs[-1] if msgs else ""


def answer_for(prompt: str, first: bool) -> str:
    """What a reader types to the offline guide's last message."""
    p = prompt.lower()
    if "do you already know" in p:
        return "no" if first else "yes"
    if "(yes / no)" in p or "say yes or no" in p:
        return "yes"
    if "type your answer" in p:
        return "Several pages: the table leaf and each index leaf."
    return ""  # Enter on an empty input: read on


# ------------------------------------------------------------------ offline, end to end
async def test_offline_session_from_open_to_end_of_outline(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    concept_ids = [c.id for c in session.explainer.concepts]
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert "Do you already know about Pages and the database file?" in last_tutor(app)
        assert "How SQLite's write-ahead log works" in screen_text(app)  # header
        assert app.outline.current == "pages"
        finished = False
        first = True
        for _ in range(80):
            reply = answer_for(last_tutor(app), first)
            if "do you already know" in last_tutor(app).lower():
                first = False
            await send(pilot, app, reply)
            if any(k == "note" and "end of the outline" in t for k, t in dialogue(app)):
                finished = True
                break
        assert finished, dialogue(app)[-4:]
        await send(pilot, app, "what is a checkpoint?")  # questions still work after the end
        assert sum(1 for k, t in dialogue(app) if k == "note" and "end of the outline" in t) == 1
        states = session.states()
        # The first concept was read and checked, the others were already known.
        assert states["pages"] in ("understood", "explained")
        assert all(states[c] == "known" for c in concept_ids[1:])
        # The outline shows every state with its symbol.
        assert app.outline.states == states
        text = screen_text(app)
        assert "✓ The rollback journal" in text
        # Enter on an empty input was echoed as the engine stored it.
        assert ("reader", "(more)") in dialogue(app)
        shown_readers = sum(1 for k, _ in dialogue(app) if k == "reader")
        await pilot.press("ctrl+q")
    stored = session.store.messages(session.id)
    assert [m.role for m in stored].count("reader") == shown_readers
    assert session.store.get_session(session.id).status in ("finished", "active")


# ------------------------------------------------------------------ Claude on the fake API
OPENING = (
    "I want to explain the write-ahead log to you. "
    '<state concept="pages" value="asked">diagnosis</state>'
    "Do you already know what a **page** is?"
    '<feedback concept="pages">The pages section never says the default page size.</feedback>'
)


async def test_claude_session_streams_and_hides_feedback(db, api):
    api.enqueue(text(OPENING, chunk_size=7))
    api.enqueue(text('Good. <state concept="pages" value="known">reader said so</state>Let us go on to the journal.', chunk_size=5))
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        shown = last_tutor(app)
        assert "Do you already know what a page is?" in shown
        assert "default page size" not in screen_text(app)
        assert "<feedback" not in shown and "<state" not in shown
        assert app.outline.states.get("pages") == "asked"
        header = screen_text(app).splitlines()[0]
        assert "claude:" in header and "tokens" in header and "$" in header
        await send(pilot, app, "yes, fixed-size blocks")
        assert "Let us go on to the journal." in last_tutor(app)
        assert app.outline.states.get("pages") == "known"
        assert ("reader", "yes, fixed-size blocks") in dialogue(app)
        # The model's note reached the store, with its concept, not the pane.
        fb = session.store.feedback(explainer_hash=session.explainer.content_hash)
        assert [(f.concept_id, f.source) for f in fb] == [("pages", "model")]
        assert "default page size" in fb[0].text
        # tokens in the header came from Usage events
        assert app.header_bar.tokens > 0
        await pilot.press("ctrl+q")


async def test_reader_feedback_modal_stores_reader_note(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "FeedbackScreen")
        await pilot.press(*"The [bold]diagram[/] is missing")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ != "FeedbackScreen")
        fb = session.store.feedback(explainer_hash=session.explainer.content_hash)
        assert [(f.text, f.source, f.concept_id) for f in fb] == [("The [bold]diagram[/] is missing", "reader", "pages")]
        assert any("Saved" in str(n.message) for n in notifications(app))
        # Esc cancels without storing
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "FeedbackScreen")
        await pilot.press("x", "escape")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ != "FeedbackScreen")
        assert len(session.store.feedback(explainer_hash=session.explainer.content_hash)) == 1


# ------------------------------------------------------------------ resume
async def test_resume_after_quitting(db, tmp_path):
    path = tmp_path / "wal.md"
    shutil.copy(SAMPLE, path)
    session = open_session(path, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "no")
        await send(pilot, app, "")
        before = dialogue(app)
        await pilot.press("ctrl+q")
    assert not app.is_running
    sid = session.id

    again = open_session(path, db)
    assert again.resumed and again.id == sid
    app2 = TutorApp(again)
    async with app2.run_test(size=SIZE) as pilot:
        await idle(pilot, app2)
        after = dialogue(app2)
        # everything shown before is back, in order, then a welcome-back note
        stored = [(k, t) for k, t in before]
        assert after[: len(stored)] == stored
        titles = [n.title for n in notifications(app2)]
        assert "Welcome back" in titles
        assert "File changed" not in titles
        assert app2.outline.states == again.states()
        await pilot.press("ctrl+q")

    # The file changes: the app warns and goes on.
    path.write_text(path.read_text() + "\nOne more sentence at the end of the last section.\n")
    third = open_session(path, db)
    assert third.resumed and third.explainer_changed
    app3 = TutorApp(third)
    async with app3.run_test(size=SIZE) as pilot:
        await idle(pilot, app3)
        warn = [n for n in notifications(app3) if n.title == "File changed"]
        assert warn and warn[0].severity == "warning"
        await send(pilot, app3, "")
        assert last_tutor(app3)

    # --new starts afresh
    fresh = open_session(path, db, new=True)
    assert not fresh.resumed and fresh.id != sid


async def test_long_session_mounts_a_window_and_loads_earlier_on_scroll(db):
    session = open_session(SAMPLE, db)
    for i in range(150):
        session.store.add_message(session.id, "reader", f"question number {i}")
        session.store.add_message(session.id, "tutor", f"answer number {i}\n\nwith *markdown*")
    resumed = open_session(SAMPLE, db)
    assert resumed.resumed
    app = TutorApp(resumed)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        texts = [t for _, t in dialogue(app)]
        assert len(texts) <= 52  # the window (+ welcome back)
        assert any("answer number 149" in t for t in texts)
        assert not any("question number 0" == t for t in texts)
        assert app.pane.has_earlier
        for _ in range(20):  # the reader scrolls to the top, again and again
            app.pane.scroll_home(animate=False, immediate=True)
            await pilot.pause(0.1)
            if not app.pane.has_earlier:
                break
            app.pane.scroll_to(y=5, animate=False, immediate=True)  # scroll down a little first
            await pilot.pause(0.05)
        texts = [t for _, t in dialogue(app)]
        assert texts[0] == "question number 0"
        assert not app.pane.has_earlier
        # all stored messages are now mounted, in order, exactly once
        numbers = [t for t in texts if t.startswith("question number")]
        assert numbers == [f"question number {i}" for i in range(150)]


# ------------------------------------------------------------------ Esc stops a stream
def streaming_app(db, api, chunks: list[str], delay: float):
    """An app on a Claude session whose opening is short and whose next reply streams slowly."""
    api.enqueue(text("Hello. Do you know pages?", chunk_size=8))
    api.enqueue(text(chunks=chunks, delay=delay))
    session = open_session(SAMPLE, db, backend=claude_backend(api, timeout=30))
    return session, TutorApp(session)


async def send_until_streaming(pilot, app, message: str, marker: str) -> None:
    await idle(pilot, app)
    app.input.text = message
    await pilot.press("enter")
    await wait_until(pilot, lambda: marker in last_tutor(app), 10, f"streamed text up to {marker!r}")


async def test_escape_stops_a_streaming_reply_and_keeps_the_partial(db, api):
    session, app = streaming_app(db, api, [f"word{i} " for i in range(400)], 0.02)
    async with app.run_test(size=SIZE) as pilot:
        await send_until_streaming(pilot, app, "tell me everything", "word10")
        assert app.busy
        # Enter while the reply streams queues one message; a second one is refused
        # politely and stays in the input
        app.input.text = "wait"
        await pilot.press("enter")
        assert app.input.text == "" and app.queued is not None and app.queued.text == "wait"
        assert "queued" in dialogue(app)[-1][1]
        app.input.text = "and another"
        await pilot.press("enter")
        assert app.input.text == "and another"
        assert any("already queued" in str(n.message) for n in notifications(app))
        await pilot.press("escape")
        await idle(pilot, app)
        # Esc also cancels the queued message: it is back in the input, above what was there
        await wait_until(pilot, lambda: app.queued is None and app.input.text == "wait\nand another", 5, "queued text back")
        assert any("back in the input" in str(n.message) for n in notifications(app))
        assert not any(isinstance(w, ReaderMessage) and w.text == "wait" for w in app.pane.children)
        app.input.text = ""
        shown = last_tutor(app)
        assert "word10" in shown and "word399" not in shown
        notes = [w for w in app.pane.children if isinstance(w, NoteMessage)]
        assert notes and "stopped" in str(notes[-1].render())
        tutor_widgets = [w for w in app.pane.children if isinstance(w, TutorMessage)]
        assert tutor_widgets[-1].has_class("incomplete")
        # typing works again right away
        await pilot.press("o", "k")
        assert app.input.text == "ok"
    rows = [m for m in session.store.messages(session.id) if m.role == "tutor"]
    assert rows[-1].complete is False
    assert "word10" in rows[-1].text and "word399" not in rows[-1].text


async def test_message_typed_during_a_reply_is_queued_and_sent_after_it(db, api):
    session, app = streaming_app(db, api, [f"part{i} " for i in range(100)], 0.04)
    api.enqueue(text("Right: a page is a fixed-size block."))
    async with app.run_test(size=SIZE) as pilot:
        await send_until_streaming(pilot, app, "no, explain pages", "part5")
        app.input.text = "is a page 4096 bytes?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.queued is not None, 2, "queued")
        assert app.busy and "part99" not in last_tutor(app)
        await wait_until(pilot, lambda: "fixed-size block" in last_tutor(app), 10, "the queued message's reply")
        await idle(pilot, app)
        kinds = dialogue(app)
        # the queued message sits between the reply it waited for and its own answer
        reader = [i for i, (k, t) in enumerate(kinds) if "is a page 4096 bytes?" in t]
        assert len(reader) == 1 and "queued" not in kinds[reader[0]][1]
        assert "part99" in kinds[reader[0] - 1][1] and "fixed-size block" in kinds[reader[0] + 1][1]
    assert len(api.bodies) == 3
    last = api.bodies[-1]["messages"][-1]["content"]
    assert "is a page 4096 bytes?" in json.dumps(last)
    rows = [(m.role, m.text) for m in session.store.messages(session.id)]
    assert ("reader", "is a page 4096 bytes?") in rows
    assert [r for r, _ in rows][-4:] == ["reader", "tutor", "reader", "tutor"]


async def test_quitting_with_a_queued_message_hands_it_back_unsent(db, api):
    session, app = streaming_app(db, api, [f"part{i} " for i in range(200)], 0.03)
    async with app.run_test(size=SIZE) as pilot:
        await send_until_streaming(pilot, app, "no", "part3")
        app.input.text = "queued, then quit"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.queued is not None, 2, "queued")
        await pilot.press("ctrl+q")
    assert app.return_value == "queued, then quit"  # `tutor open` prints it: never lost silently
    assert "queued, then quit" not in [m.text for m in session.store.messages(session.id)]
    assert len(api.bodies) == 2


async def test_start_notes_go_into_the_dialogue_and_warnings_stay_toasts(db):
    notes = ["No ANTHROPIC_API_KEY set: using the offline guided mode.", "x.md:7: concept 'a' has no check question"]
    changed = StartNotice(NoticeKind.CHANGED, "x.md changed since this session started; your progress is kept.")
    app = TutorApp(open_session(SAMPLE, db), notices=[StartNotice(NoticeKind.SETUP, n) for n in notes] + [changed])
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        shown = [t for k, t in dialogue(app)]
        # above the tutor's first question, not over it
        assert shown[:2] == notes and "Do you already know" in shown[2]
        toasts = [str(n.message) for n in notifications(app)]
        assert not any("ANTHROPIC_API_KEY" in t for t in toasts)
        assert any("changed since" in t for t in toasts)


# ------------------------------------------------------------------ every error notification
ERRORS = [
    ("auth", lambda: [http_error(401)], False),
    ("rate_limit", lambda: [http_error(429)], True),
    ("overloaded", lambda: [http_error(529)], True),
    ("stream_error", lambda: [stream_error("Partial answer about ")], True),
    ("connection", lambda: [drop("Half a sentence ")], True),
    ("no_stop_reason", lambda: [no_stop("It ends without a stop")], True),
    ("timeout", lambda: [hang(3.0)], True),
]


@pytest.mark.parametrize("code,replies,retryable", ERRORS, ids=[e[0] for e in ERRORS])
async def test_error_notifications_keep_text_and_retry(db, api, code, replies, retryable):
    api.enqueue(text("Hello. Do you already know about pages?", chunk_size=10))
    api.enqueue(*replies())
    session = open_session(SAMPLE, db, backend=claude_backend(api, timeout=1.0))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "What is a [bold]page[/]?", timeout=15)
        errs = [n for n in notifications(app) if n.severity == "error"]
        assert errs, f"no error notification for {code}"
        note = errs[-1]
        # The title is plain words (issue 9.14), never the code ("Tutor error (no_stop_reason)").
        assert note.title == ERROR_TITLES[code] and "_" not in note.title
        assert "\n" not in note.message.split("\n")[0]
        if retryable:
            assert "Ctrl+R" in note.message
        # the reader's text is back in the input, and marked unanswered in the pane
        assert app.input.text == "What is a [bold]page[/]?"
        readers = [w for w in app.pane.children if isinstance(w, ReaderMessage)]
        assert readers[-1].has_class("unanswered")
        # Issue 9.1: a note in the dialogue says what happened and outlives the toast.
        app.clear_notifications()
        await pilot.pause(0.05)
        notes = [w.text for w in app.pane.children if isinstance(w, NoteMessage)]
        assert notes and ("No reply:" in notes[-1] or "cut off by" in notes[-1]), notes
        assert ("Ctrl+R" in notes[-1]) == retryable, notes[-1]
        assert "No reply:" in screen_text(app) or "cut off by" in screen_text(app)
        if not retryable:
            assert "ANTHROPIC_API_KEY" in notes[-1]  # what to do
            # No Retry where it cannot help: not in the footer, and Ctrl+R sends nothing.
            assert not app.check_action("retry", ())
            sent = len(api.requests)
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            assert len(api.requests) == sent and not app.busy
            return
        api.enqueue(text("A page is a fixed-size block.", chunk_size=6))
        await pilot.press("ctrl+r")
        await pilot.pause(0.05)
        await idle(pilot, app, 15)
        assert "A page is a fixed-size block." in last_tutor(app)
        assert app.input.text == ""
        assert not readers[-1].has_class("unanswered")
        # the message was stored once, not once per attempt
        stored = [m.text for m in session.store.messages(session.id) if m.role == "reader"]
        assert stored.count("What is a [bold]page[/]?") == 1


@pytest.mark.parametrize("status", [401, 529])
async def test_a_failed_first_reply_leaves_a_note_not_a_blank_chat(db, api, status):
    api.enqueue(*[http_error(status)] * 3)
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.clear_notifications()
        await pilot.pause(0.05)
        notes = [w.text for w in app.pane.children if isinstance(w, NoteMessage)]
        assert any(n.startswith("No reply:") and f"({status})" in n for n in notes), notes
        assert app.can_retry() == (status == 529)


async def test_after_a_rejected_key_ctrl_b_carries_on_in_the_offline_guide(db, api):
    """Issue 9.1: a 401 offers the offline guide in the same session, without quitting."""
    api.enqueue(text("I want to explain the WAL to you. Do you already know about pages?"), http_error(401))
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "yes, I know pages")
        notes = [w.text for w in app.pane.children if isinstance(w, NoteMessage)]
        assert any("Ctrl+B" in n and "offline" in n for n in notes), notes
        assert app.check_action("go_offline", ()) and not app.can_retry()
        n_requests = len(api.requests)
        await pilot.press("ctrl+b")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert "offline guided mode" in last_tutor(app)
        assert session.mode == "offline" and not app.check_action("go_offline", ())
        await send(pilot, app, "yes")
        assert len(api.requests) == n_requests  # no more calls to the server that refused the key
        assert last_tutor(app).strip()
    rows = session.store.messages(session.id)
    assert [m.role for m in rows][:2] == ["tutor", "reader"] and rows[-1].role == "tutor"


async def test_enter_on_failed_text_retries_instead_of_duplicating(db, api):
    api.enqueue(text("Hello.", chunk_size=10), http_error(429))
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "first try")
        assert app.input.text == "first try"
        api.enqueue(text("Answered.", chunk_size=4))
        await pilot.press("enter")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert "Answered." in last_tutor(app)
    stored = [m.text for m in session.store.messages(session.id) if m.role == "reader"]
    assert stored == ["first try"]


# ------------------------------------------------------------------ markup and escapes
EVIL_TEXT = (
    "Look: [bold]not bold[/bold] and [/ and [link=https://evil.example]click[/link] "
    "\x1b]52;c;cHduZWQ=\x07 \x1b]0;owned\x07 \x1b[2J <b>html</b>"
)


def _spans_only_markdown(widget) -> bool:
    from textual.widgets._markdown import MarkdownBlock

    for block in widget.query(MarkdownBlock):
        content = getattr(block, "_content", None)
        if content is None:
            continue
        for span in content.spans:
            if "link" in str(span.style) or "@click" in str(span.style):
                return False
    return True


async def test_model_text_with_markup_and_escapes_is_shown_literally(db, api):
    api.enqueue(text(EVIL_TEXT, chunk_size=3))
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        shown = last_tutor(app)
        assert "[bold]not bold[/bold]" in shown
        assert "[/ and [link=https://evil.example]click[/link]" in shown
        assert "<b>html</b>" in shown
        assert "␛]52;c;cHduZWQ=␇" in shown and "␛]0;owned␇" in shown and "␛[2J" in shown
        assert "\x1b" not in shown and "\x07" not in shown
        screen = screen_text(app)
        assert "\x1b" not in screen and "[bold]not bold[/bold]" in screen
        assert _spans_only_markdown(app.pane.query(TutorMessage).last())
        assert app.clipboard == ""  # nothing wrote the clipboard
        # copy gives the reader what they saw: escapes stay neutralised in the clipboard
        await pilot.press("ctrl+l")
        assert "[bold]not bold[/bold]" in app.clipboard and "␛]52;c;cHduZWQ=␇" in app.clipboard
        assert "\x1b" not in app.clipboard
        # the reader's own text is literal too
        await send(pilot, app, "[red]me[/red] \x1b[2J")
        assert ("reader", "[red]me[/red] ␛[2J") in dialogue(app)


async def test_explainer_with_markup_and_escapes_in_titles_and_sections(db, tmp_path):
    evil = tmp_path / "evil.md"
    evil.write_text(
        "# Evil [bold]title[/] \x1b]0;owned\x07\n\n"
        "Intro.\n\n"
        "## Step [red]one[/red] [/\n\nBody \x1b]52;c;cHduZWQ=\x07 and [b]bold?[/b] [link=https://x.example]x[/link].\n\n"
        "## Second\n\nMore text.\n",
        encoding="utf-8",
    )
    session = open_session(evil, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        screen = screen_text(app)
        assert "\x1b" not in screen
        assert "Step [red]one[/red] [/" in screen  # outline row, literal
        assert "Evil [bold]title[/]" in screen  # header, literal
        await pilot.press("ctrl+o")
        await pilot.pause(0.1)
        assert "[link=https://x.example]x[/" in screen_text(app)
        app.outline.focus()
        app.outline.highlighted = 0  # "Step": the title heading is no outline row (issue 9.6)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        assert "Step [red]one[/red] [/" in screen_text(app)  # the menu title, literal
        await pilot.press("down", "down", "enter")
        await pilot.pause(0.1)
        from textual.widgets._markdown import MarkdownBlock

        body = " ".join(b._content.plain for b in app.query_one("#section-body").query(MarkdownBlock) if getattr(b, "_content", None))
        assert "Body ␛]52;c;cHduZWQ=␇ and [b]bold?[/b]" in body
        assert "\x1b" not in screen_text(app)
        assert app.clipboard == ""


# ------------------------------------------------------------------ commands
async def test_outline_menu_explain_know_and_section(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.outline.focus()
        app.outline.highlighted = 2  # "The write-ahead log file"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        assert "The write-ahead log file" in screen_text(app)
        await pilot.press("down", "enter")  # "I know this"
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert session.states()["wal-file"] == "known"
        assert app.outline.states["wal-file"] == "known"
        assert ("reader", "I already know the write-ahead log file.") in dialogue(app)
        # show the section
        app.outline.focus()
        app.outline.highlighted = 0
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("down", "down", "enter")
        await pilot.pause(0.1)
        assert app.query_one("#section").has_class("-visible")
        assert "fixed-size" in screen_text(app)
        # explain this
        app.outline.focus()
        app.outline.highlighted = 1
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("enter")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert any(t.startswith("Please explain the rollback journal") for k, t in dialogue(app) if k == "reader")
        assert app.outline.current == "rollback-journal"


async def test_skip_explain_again_export_copy_theme(db, tmp_path, monkeypatch):
    here = tmp_path / "where-tutor-was-run"
    here.mkdir()
    monkeypatch.chdir(here)
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        first = session.current_concept
        await pilot.press("ctrl+n")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert session.current_concept != first
        assert app.outline.current == session.current_concept
        current = session.current_concept
        await pilot.press("ctrl+g")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert any("again" in t or "explain" in t.lower() for k, t in dialogue(app) if k == "reader")
        assert session.current_concept == current
        # copy the last reply
        await pilot.press("ctrl+l")
        assert app.clipboard and app.clipboard == app.last_reply.replace("\r\n", "\n")
        assert any("Copied" in str(n.message) for n in notifications(app))
        # export: choose json
        for fmt in ("md", "json", "html"):
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
            idx = ["md", "html", "json"].index(fmt)
            await pilot.press(*(["down"] * idx), "enter")
            await wait_until(pilot, lambda: any(f"({fmt})" in n.title for n in notifications(app)), 5, f"export notice {[(n.title, n.message) for n in notifications(app)]}")  # noqa: B023 (called at once)
            note = [n for n in notifications(app) if f"({fmt})" in n.title][-1]
            path = Path(note.message)
            assert path.exists() and path.suffix == f".{fmt}"
            # 9.12: the same rule as `tutor export` without -o: the current folder, the same name
            assert path == here / default_filename(session.store.get_session(session.id), fmt)
            body = path.read_text()
            assert str(SAMPLE.parent) not in body and SAMPLE.name in body  # the file's name, not the folders
            if fmt == "json":
                assert json.loads(body)
            assert "Do you already know" in body
        # theme
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before


async def test_chosen_theme_is_saved_and_used_by_the_next_session(db, tmp_path):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        default = app.theme
        await pilot.press("ctrl+t", "ctrl+t")
        chosen = app.theme
        assert chosen != default
        await wait_until(pilot, lambda: session.store.get_setting("theme") == chosen, 2, "theme saved")
        # Textual's own theme picker (the palette) is saved the same way
        app.theme = "nord"
        await wait_until(pilot, lambda: session.store.get_setting("theme") == "nord", 2, "palette theme saved")
    session.store.close()
    # a new session, even on another file, opens in that theme
    other = tmp_path / "other.md"
    other.write_text("# Other\n\nText.\n", encoding="utf-8")
    app2 = TutorApp(open_session(other, db, new=True))
    async with app2.run_test(size=SIZE) as pilot:
        await idle(pilot, app2)
        assert app2.theme == "nord"
    # a theme this Textual does not have is ignored, not an error
    store = app2.session.store
    store.set_setting("theme", "no-such-theme")
    app3 = TutorApp(open_session(other, db))
    async with app3.run_test(size=SIZE) as pilot:
        await idle(pilot, app3)
        assert app3.theme == default


async def test_command_palette_lists_the_commands(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Export transcript", "Copy last reply", "Show section", "Note to the author", "Skip concept", "Explain again", "Next theme", "Quit"):
            assert t in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"skip concept")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        await idle(pilot, app)
        assert any(t.startswith("Let's skip") for k, t in dialogue(app) if k == "reader")


async def test_shift_enter_and_ctrl_j_insert_newlines(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert app.input.text == "a\nb\nc"
        await pilot.press("enter")
        await pilot.pause(0.05)
        await idle(pilot, app)
        assert ("reader", "a\nb\nc") in dialogue(app)
        assert app.input.text == ""


def test_copy_says_when_it_failed(db):
    """No terminal to send OSC 52 to and no system clipboard: copy_text reports failure."""
    from tutor.app import actions

    app = TutorApp(open_session(SAMPLE, db))  # not running: no driver
    try:
        import pyperclip  # noqa: F401
    except ImportError:
        assert actions.copy_text(app, "hello") is None
    else:  # pragma: no cover - depends on the machine
        pytest.skip("pyperclip is installed here")


async def test_quit_while_streaming_keeps_the_partial_reply(db, api):
    session, app = streaming_app(db, api, [f"part{i} " for i in range(300)], 0.02)
    async with app.run_test(size=SIZE) as pilot:
        await send_until_streaming(pilot, app, "go on", "part5")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, 10, "the app to exit")
    rows = session.store.messages(session.id)
    assert [r.text for r in rows if r.role == "reader"] == ["go on"]
    assert rows[-1].role == "tutor" and rows[-1].complete is False and "part5" in rows[-1].text


async def test_links_in_replies_are_shown_not_opened(db, api, monkeypatch):
    api.enqueue(text("See [the docs](https://example.com/wal) for more.", chunk_size=9))
    opened: list[str] = []
    session = open_session(SAMPLE, db, backend=claude_backend(api))
    app = TutorApp(session)
    monkeypatch.setattr(app, "open_url", lambda url, **kw: opened.append(url))  # a browser must never start
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        from textual.widgets._markdown import MarkdownParagraph

        block = app.pane.query(TutorMessage).last().query(MarkdownParagraph).first()
        await block.run_action("link('https://example.com/wal')")  # what a click on the link does
        await pilot.pause(0.1)
        notes = [n for n in notifications(app) if n.title == "Link (not opened)"]
        assert notes and notes[-1].message == "https://example.com/wal"
        assert opened == []


async def test_startup_objects_are_frozen_for_the_collector_and_thawed_on_exit(db):
    """A full collection walking every Textual and pydantic object paused streaming by
    ~130 ms (bench_app); the app freezes what it built at start, and thaws it on exit so
    a process that runs many apps (this test suite) can still free them."""
    import gc

    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await wait_until(pilot, lambda: gc.get_freeze_count() > 10_000, 2, "objects frozen after start")
    assert gc.get_freeze_count() == 0


# ------------------------------------------------ what the reader sees is saved (15.3)
async def test_a_queued_message_is_in_the_database_while_it_waits_and_sent_on_resume(db, api):
    """A message shown on screen (queued behind a streaming reply) used to live only in the
    app: a kill lost it. It is stored as pending the moment it is shown, and a resumed
    session shows it again and sends it."""
    session, app = streaming_app(db, api, [f"part{i} " for i in range(300)], 0.03)
    async with app.run_test(size=SIZE) as pilot:
        await send_until_streaming(pilot, app, "no, explain pages", "part3")
        app.input.text = "is a page 4096 bytes?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.queued is not None, 2, "queued")
        # shown on screen, so already on disk (read by another connection, as after a kill)
        other = Store.open(db)
        try:
            assert [p.text for p in other.pending(session.id)] == ["is a page 4096 bytes?"]
            assert "no, explain pages" in [m.text for m in other.messages(session.id)]
        finally:
            other.close()
        # the process "dies" here: the app goes without handing the message back
        app.send_queue.queued = None
        app.turn_worker.cancel()
        await idle(pilot, app)
    session.store.close()
    api.enqueue(text("Yes: 4096 bytes by default."))
    again = open_session(SAMPLE, db, backend=claude_backend(api, timeout=30))
    app2 = TutorApp(again)
    async with app2.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "4096 bytes by default" in last_tutor(app2), 10, "the unsent message's reply")
        await idle(pilot, app2)
        kinds = dialogue(app2)
        assert any("Not sent before tutor closed" in t for _, t in kinds)
    rows = [(m.role, m.text) for m in again.store.messages(again.id)]
    assert rows[-2:] == [("reader", "is a page 4096 bytes?"), ("tutor", "Yes: 4096 bytes by default.")]
    assert again.store.pending(again.id) == []
    assert "is a page 4096 bytes?" in json.dumps(api.bodies[-1]["messages"][-1]["content"])


def on_disk_when_first_in_the_dom(app, db: Path):
    """A Textual message hook: the first time each reader line is in the DOM (before any
    paint, which is itself a message), read the SQLite file through a separate connection,
    as a kill -9 at that moment would leave it. Returns the hook and what it saw:
    (text, whether the file has it as a message or a pending one)."""
    seen: dict[int, tuple[str, bool]] = {}

    def hook(_message) -> None:
        if not app.screen_stack:  # before the first screen: nothing to see yet
            return
        new = [w for w in app.query(ReaderMessage) if id(w) not in seen]
        if not new:
            return
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            texts = [t for (t,) in conn.execute("SELECT text FROM messages WHERE role = 'reader'")]
            texts += [t for (t,) in conn.execute("SELECT text FROM pending_messages")]
        finally:
            conn.close()
        for w in new:
            seen[id(w)] = (w.text, w.text in texts)

    return hook, seen


async def test_a_message_is_on_disk_the_moment_it_is_on_screen_sent_at_once_or_queued(db, api):
    """Issue 15.3 through real boundaries: Pilot types, a message hook looks at the DOM, a
    second sqlite3 connection reads the file. Both paths: a message sent at once (stored as
    pending, then made a message by its turn) and one queued behind a streaming reply."""
    session, app = streaming_app(db, api, [f"part{i} " for i in range(100)], 0.03)
    api.enqueue(text("Yes: 4096 bytes by default."))
    hook, seen = on_disk_when_first_in_the_dom(app, db)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await send_until_streaming(pilot, app, "no, explain pages", "part3")
        app.input.text = "is a page 4096 bytes?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.queued is not None, 2, "queued")
        await wait_until(pilot, lambda: "4096 bytes by default" in last_tutor(app), 10, "the queued message's reply")
        await idle(pilot, app)
    assert sorted(seen.values()) == [("is a page 4096 bytes?", True), ("no, explain pages", True)], seen
    assert session.store.pending(session.id) == []
    readers = [m.text for m in session.store.messages(session.id) if m.role == "reader"]
    assert readers == ["no, explain pages", "is a page 4096 bytes?"]


async def test_escape_before_the_first_word_gives_the_message_back_and_enter_resends_it(db, api):
    """Esc while the tutor has said nothing yet: no "partial reply" to keep, so the note says
    the message is saved and it is back in the input; Enter asks again without storing it twice."""
    api.enqueue(text("Hello. Do you know pages?", chunk_size=8))
    api.enqueue(hang(30))
    session = open_session(SAMPLE, db, backend=claude_backend(api, timeout=60))
    app = TutorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.input.text = "what is a page?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.busy and len(api.requests) >= 2, 5, "the second request")
        await pilot.press("escape")
        await idle(pilot, app)
        notes = [str(w.render()) for w in app.pane.children if isinstance(w, NoteMessage)]
        assert "stopped before the tutor answered" in notes[-1] and "partial reply" not in notes[-1]
        assert app.input.text == "what is a page?"
        api.enqueue(text("A page is a fixed-size block."))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "fixed-size block" in last_tutor(app), 10, "the reply to the resent message")
    readers = [m.text for m in session.store.messages(session.id) if m.role == "reader"]
    assert readers.count("what is a page?") == 1
