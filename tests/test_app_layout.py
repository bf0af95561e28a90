"""Issue 9.14: the app at 80 and 120 columns: the dialogue keeps its place when panels open,
long code lines show that they go on, the outline grows with the terminal, the state
symbols are explained, and the palette leads with tutor's own commands.

Real TutorSessions on real SQLite files, driven through Pilot.
"""

from __future__ import annotations

import pytest

from tutor.app.app import TutorApp

from app_helpers import SAMPLE, idle, open_session, screen_text, send, wait_until


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tutor.db"


def top_child(pane):
    """The message at the top of the dialogue's view, and how far into it the view starts."""
    y = pane.scroll_y
    for w in pane.children:
        region = w.virtual_region_with_margin
        if region.bottom > y:
            return w, y - region.y
    return None, 0


async def _long_dialogue(pilot, app):
    await idle(pilot, app)
    for answer in ("no", "", "x", "", "", ""):
        await send(pilot, app, answer)
    await pilot.pause(0.1)
    assert app.pane.max_scroll_y > 20


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("panel", ["section", "keys"])
async def test_opening_a_panel_keeps_the_dialogue_where_it_was(db, size, panel):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=size) as pilot:
        await _long_dialogue(pilot, app)
        pane = app.pane

        async def toggle():
            if panel == "section":
                await pilot.press("ctrl+o")
            elif app.screen.query("HelpPanel"):
                app.action_hide_help_panel()
            else:
                app.action_show_help_panel()
            await pilot.pause(0.2)

        # At the end: it stays at the end (the newest message in view).
        assert pane.scroll_y == pane.max_scroll_y
        await toggle()
        assert pane.scroll_y == pane.max_scroll_y, (pane.scroll_y, pane.max_scroll_y)
        await toggle()
        assert pane.scroll_y == pane.max_scroll_y
        # Scrolled back by the reader: the message at the top stays at the top.
        pane.scroll_to(y=pane.max_scroll_y // 2, animate=False, immediate=True)
        await pilot.pause(0.1)
        widget, _ = top_child(pane)
        await toggle()
        assert top_child(pane)[0] is widget
        await toggle()
        assert top_child(pane)[0] is widget


async def test_the_sidebar_grows_with_the_terminal_within_bounds(db):
    widths = {}
    for size in ((80, 24), (120, 40), (200, 50), (300, 50)):
        app = TutorApp(open_session(SAMPLE, db))
        async with app.run_test(size=size) as pilot:
            await idle(pilot, app)
            widths[size[0]] = app.query_one("#sidebar").region.width
    assert widths[80] == 24 and widths[120] == 36 and widths[200] == 56 and widths[300] == 56, widths
    assert widths[200] > widths[120] > widths[80]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_sidebar_explains_its_state_symbols(db, size):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=size) as pilot:
        await idle(pilot, app)
        screen = screen_text(app)
        for needle in ("○ not yet", "? asked", "◐ explained", "! shaky", "● understood", "✓ knew"):
            assert needle in screen, (needle, screen)


async def test_the_palette_leads_with_tutors_commands_and_drops_textuals_generic_ones(db):
    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        app.pane.focus()  # a focused widget is what makes Textual offer "Maximize"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles[0] == "Export transcript"
        assert not {"Maximize", "Minimize", "Screenshot"} & set(titles)
        ours = titles.index("Next theme")
        assert all(titles.index(t) > ours for t in ("Theme", "Keys", "Quit")), titles


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_code_line_too_long_for_the_pane_shows_a_scrollbar(db, size):
    from textual.widgets._markdown import MarkdownFence

    app = TutorApp(open_session(SAMPLE, db))
    async with app.run_test(size=size) as pilot:
        await idle(pilot, app)
        await pilot.press("ctrl+o")
        section = app.query_one("#section")
        fences = await wait_until(pilot, lambda: list(section.query(MarkdownFence)), 5, "the section's code blocks")
        await pilot.pause(0.2)
        cut = [f for f in fences if f.max_scroll_x > 0]
        assert cut, "the sample section has a code line wider than the view"
        assert all(f.show_horizontal_scrollbar and f.scrollbar_size_horizontal == 1 for f in cut)
        assert all(not f.show_horizontal_scrollbar for f in fences if f.max_scroll_x == 0)  # no bar when it fits
