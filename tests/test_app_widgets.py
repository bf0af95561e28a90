"""Pilot tests for what a reader ran into using the app in a real terminal (QA pass):
focus, the footer on 80 columns, the section view, long outlines, replies cut by errors.

Real TutorSessions on real SQLite files; Claude is the real back end on tests/fake_api.py.
"""

from __future__ import annotations

import pytest

from tutor.app.app import TutorApp
from tutor.app.widgets import NoteMessage, ReaderMessage, TutorMessage

from app_helpers import SAMPLE, claude_backend, idle, notifications, open_session, screen_text, send, wait_until
from fake_api import drop, text


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tutor.db"


def footer_line(app) -> str:
    return screen_text(app).rstrip("\n").splitlines()[-1]


async def test_typing_while_another_pane_has_focus_goes_to_the_input(db):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        app.outline.focus()
        await pilot.press("n", "o")
        assert app.input.text == "no" and app.focused is app.input
        app.pane.focus()
        await pilot.press("space", "!")
        assert app.input.text == "no !"
        # Section shown, focused with Tab, then hidden: focus must not stay on a hidden pane
        # (it used to land on the outline or dialogue, and typed text went nowhere).
        await pilot.press("ctrl+o")
        app.query_one("#section").focus()
        await pilot.pause(0.05)
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        assert app.focused is app.input
        # Arrow keys still belong to the focused pane, not the input.
        app.outline.focus()
        before = app.outline.highlighted
        await pilot.press("down")
        assert app.outline.highlighted == (before or 0) + 1
        assert app.input.text == "no !"


async def test_footer_shows_every_key_on_80_columns_and_retry_only_when_useful(db, api):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        # Under load the footer can paint a frame after the dialogue: wait for it, not a sleep.
        await wait_until(pilot, lambda: "^p palette" in footer_line(app), 5, "the footer")
        footer = footer_line(app)
        for key in ("^q Quit", "^n Skip", "^g Again", "^o Section", "^f Note", "^s Export", "^p palette"):
            assert key in footer, f"{key!r} missing from the footer: {footer!r}"
        assert "Retry" not in footer  # nothing failed
        await pilot.press("ctrl+r")  # disabled: no "Tutor error (other)" any more
        await pilot.pause(0.05)
        assert not [n for n in notifications(app) if n.severity == "error"] and not app.busy
        app.action_retry()  # what the palette's Retry command runs
        note = await wait_until(pilot, lambda: [n for n in notifications(app) if "nothing to retry" in n.message], 5, "the notification")
        assert note[0].severity == "information"

    api.enqueue(text("Hello. Do you know pages?", chunk_size=8), drop("Half a sen"))
    app = TutorApp(open_session(SAMPLE, db.with_name("c.db"), backend=claude_backend(api)))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "what is a page?")
        await wait_until(pilot, lambda: "^r Retry" in footer_line(app), 5, "Retry in the footer")
        assert "^s Export" in footer_line(app)


async def test_section_view_shows_its_line_range_and_replaces_the_outline_when_narrow(db):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        await pilot.press("ctrl+o")
        await pilot.pause(0.1)
        concept = app.explainer.concept(app.session.current_concept)
        lines = f"sqlite-wal.md, lines {concept.section.start_line}–{concept.section.end_line}"
        await wait_until(pilot, lambda: lines in screen_text(app), 5, "the line range")
        assert app.outline.display and app.outline.region.width > 0  # wide: three panes
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.outline.region.width == 0, 5, "the outline to give way")  # narrow
        assert app.pane.region.width >= 30
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.outline.region.width > 0, 5, "the outline to come back")


async def test_outline_keeps_the_current_concept_in_view(db, tmp_path):
    path = tmp_path / "long.md"
    path.write_text("\n\n".join(f"## Topic {i:02d}\n\nText about topic {i}." for i in range(1, 61)) + "\n", encoding="utf-8")
    session = open_session(path, db)
    app = TutorApp(session)
    async with app.run_test(size=(100, 24)) as pilot:
        await idle(pilot, app)
        for _ in range(40):
            await pilot.press("ctrl+n")
            await pilot.pause(0.02)
            await idle(pilot, app)
        current = session.current_concept
        title = session.explainer.concept(current).title
        assert title == "Topic 41"
        await wait_until(pilot, lambda: f"▸ ? {title}" in screen_text(app), 5, "the current concept in view")
        # Tab to the outline: the cursor is already on the current concept.
        app.outline.focus()
        await pilot.pause(0.05)
        assert app.outline.highlighted_option.id == current


@pytest.mark.parametrize(
    "second_reply, why",
    [
        (lambda: drop("A page is a fixed-size bl", chunk_size=5), "cut off"),
        (lambda: text("A page is a long story and", stop_reason="max_tokens"), "length limit"),
    ],
    ids=["error", "max_tokens"],
)
async def test_a_cut_reply_is_marked_incomplete_and_says_why(db, api, second_reply, why):
    api.enqueue(text("Hello. Do you know pages?", chunk_size=8), second_reply())
    app = TutorApp(open_session(SAMPLE, db, backend=claude_backend(api)))
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "what is a page?")
        cut = [w for w in app.pane.children if isinstance(w, TutorMessage)][-1]
        assert cut.has_class("incomplete")
        note = app.pane.children[-1]
        assert isinstance(note, NoteMessage) and why in str(note.render())


async def test_resume_after_a_failed_reply_marks_it_and_offers_retry(db, api):
    api.enqueue(text("Hello. Do you know pages?", chunk_size=8), drop(""))
    app = TutorApp(open_session(SAMPLE, db, backend=claude_backend(api)))
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        await send(pilot, app, "never answered")
    api.enqueue(text("Welcome back.", chunk_size=8))
    app = TutorApp(open_session(SAMPLE, db, backend=claude_backend(api)))
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        readers = [w for w in app.pane.children if isinstance(w, ReaderMessage)]
        assert readers[-1].text == "never answered" and readers[-1].has_class("unanswered")
        await wait_until(pilot, lambda: "^r Retry" in footer_line(app), 5, "Retry in the footer")


async def test_messages_keep_a_readable_width_on_a_wide_terminal(db):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(200, 50)) as pilot:
        await idle(pilot, app)
        reply = [w for w in app.pane.children if isinstance(w, TutorMessage)][-1]
        assert reply.region.width <= 104
        assert app.pane.region.width > 120


async def test_header_keeps_mode_and_cost_on_80_columns(db, api):
    api.enqueue(text("Hello. Do you know pages?", chunk_size=8))
    app = TutorApp(open_session(SAMPLE, db, backend=claude_backend(api)))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        await wait_until(pilot, lambda: app.header_bar.tokens > 0, 5, "usage in the header")
        await pilot.pause(0.05)
        header = screen_text(app).splitlines()[0]
        assert header.lstrip().startswith("How SQLite")  # the title is shortened, not dropped
        assert "claude:" in header and f"{app.header_bar.tokens:,} tokens" in header and "$" in header, header


async def test_a_note_to_the_author_closed_with_esc_is_kept_as_a_draft(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await idle(pilot, app)
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "FeedbackScreen")
        await pilot.press(*"The diagram is")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ != "FeedbackScreen")
        assert session.store.feedback(explainer_hash=session.explainer.content_hash) == []
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "FeedbackScreen")
        await pilot.press(*" missing")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ != "FeedbackScreen")
        fb = session.store.feedback(explainer_hash=session.explainer.content_hash)
        assert [f.text for f in fb] == ["The diagram is missing"]
        await pilot.press("ctrl+f")  # saved: the next note starts empty
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "FeedbackScreen")
        assert app.screen.query_one("#note").text == ""


async def test_page_up_and_down_in_the_input_scroll_the_dialogue(db):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(100, 24)) as pilot:
        await idle(pilot, app)
        for answer in ("no", "", "x"):
            await send(pilot, app, answer)
        await pilot.pause(0.1)
        bottom = app.pane.scroll_y
        assert bottom > 0 and app.focused is app.input
        app.input.text = "half-typed"
        await pilot.press("pageup")
        await wait_until(pilot, lambda: app.pane.scroll_y < bottom, 3, "the dialogue to scroll up")
        await pilot.press("pagedown", "pagedown", "pagedown")
        await wait_until(pilot, lambda: app.pane.scroll_y == app.pane.max_scroll_y, 3, "back at the bottom")
        assert app.input.text == "half-typed" and app.focused is app.input
        assert not app.pane._anchor_released  # back at the bottom: new text is followed again


async def test_outline_shows_the_heading_structure_of_a_plain_markdown_file(db, tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### On Linux\n\napt.\n\n#### Deep\n\nx.\n\n## Use\n\nType.\n", encoding="utf-8")
    app = TutorApp(open_session(path, db))
    async with app.run_test(size=(120, 30)) as pilot:
        await idle(pilot, app)
        outline = [ln.split("▕")[0].rstrip() for ln in screen_text(app).splitlines()[1:]]
        # "# Guide", a lone top heading, is the title (issue 9.6), not an outline entry.
        assert not any(ln.endswith(" Guide") for ln in outline) and "Guide" in screen_text(app).splitlines()[0]
        col = {t: next(ln.index(t) for ln in outline if ln.endswith(" " + t)) for t in ("Install", "On Linux", "Deep", "Use")}
        assert col["Install"] == col["Use"]
        assert col["On Linux"] == col["Install"] + 2 == col["Deep"] - 2


async def test_open_section_follows_the_tutor_to_the_next_concept(db):
    session = open_session(SAMPLE, db)
    app = TutorApp(session)
    async with app.run_test(size=(140, 36)) as pilot:
        await idle(pilot, app)
        first = session.current_concept
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        assert app.section_concept == first
        await pilot.press("ctrl+n")  # skip: the tutor moves on
        await pilot.pause(0.05)
        await idle(pilot, app)
        nxt = session.current_concept
        assert nxt != first
        await wait_until(pilot, lambda: app.section_concept == nxt, 5, "the section to follow")
        title = session.explainer.concept(nxt).section.heading
        await wait_until(pilot, lambda: title in screen_text(app), 5, "the new section on screen")
        # A section picked in the outline (not the current one): Ctrl+O shows the current one, then hides.
        app.action_toggle_section(first)
        await pilot.pause(0.05)
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        assert app.section_concept == nxt and app.query_one("#section").has_class("-visible")
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        assert not app.query_one("#section").has_class("-visible")


async def test_the_placeholder_says_what_enter_does_now(db):
    """Issue 9.10: the input always said "press Enter to read on", though at a yes/no question
    or a check Enter alone is refused. It says what the tutor waits for; hedged answers such as
    "kind of, I've heard of it" count as "not sure" instead of the same question again."""
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        assert app.input.placeholder == "Answer yes, no or not sure, or ask a question"
        assert "Enter to read on" not in screen_text(app)
        assert "Ctrl+J new line" in screen_text(app)
        await send(pilot, app, "kind of, I've heard of it")
        # Taken as "not sure": one check question finds out, instead of the same question again.
        assert app.session.guide.phase == "verify"
        assert app.input.placeholder == "Type your answer to the check question"
        await send(pilot, app, "not sure")
        assert app.session.guide.phase == "explain"
        assert app.input.placeholder == "Ask a question, or press Enter to read on"


def test_hedged_answers_are_not_sure():
    from tutor.engine.offline import classify_yes_no

    for answer in ("kind of, I've heard of it", "sort of", "I think so", "I've heard of it", "vaguely, yes"):
        assert classify_yes_no(answer) == "unsure", answer
    for answer, want in (("yes", "yes"), ("yeah, I know it", "yes"), ("no", "no"), ("nope, never", "no")):
        assert classify_yes_no(answer) == want, answer
