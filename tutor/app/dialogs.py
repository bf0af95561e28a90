"""The dialogs a reader opens from the app (a note to the author, export, a concept's menu),
each with what happens to its answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tutor.app import actions
from tutor.app.screens import ChoiceScreen, FeedbackScreen
from tutor.app.widgets import STATE_LOOK
from tutor.engine.reader_model import State
from tutor.errors import TutorError
from tutor.text import one_line

if TYPE_CHECKING:
    from tutor.app.app import TutorApp


def note_to_author(app: TutorApp) -> None:
    """Ask for a note about the current concept; a closed dialog keeps its draft."""
    cid = app.session.current_concept
    title = app.explainer.concept(cid).title if cid else None
    screen = FeedbackScreen(title, draft=app.note_draft)

    def saved(text: str | None) -> None:
        if not text:
            app.note_draft = screen.draft
            if app.note_draft.strip():
                app.notify("Your note is kept as a draft: Ctrl+F to finish it.", markup=False, timeout=4)
            return
        try:
            app.session.add_reader_feedback(text, cid)
        except TutorError as exc:
            app.note_draft = text  # keep it for another try
            app.notify(one_line(str(exc), 300), title="Note not saved", severity="error", markup=False)
            return
        app.note_draft = ""
        app.notify("Saved. The author will see your note in `tutor feedback`.", title="Thank you", markup=False)

    app.push_screen(screen, saved)


def export(app: TutorApp) -> None:
    def chosen(fmt: str | None) -> None:
        if not fmt:
            return
        try:
            path = actions.export_transcript(app.session, fmt)
        except Exception as exc:  # a TutorError or an OS error: say it, keep going
            app.notify(one_line(str(exc), 300), title="Export failed", severity="error", markup=False)
            return
        app.notify(str(path), title=f"Transcript saved ({fmt})", timeout=12, markup=False)

    app.push_screen(
        ChoiceScreen("Export the transcript as", [("md", "Markdown (.md)"), ("html", "HTML page (.html)"), ("json", "JSON (.json)")]),
        chosen,
    )


def concept_menu(app: TutorApp, cid: str) -> None:
    """What the reader can do with a concept picked in the outline."""
    concept = app.explainer.concept(cid)
    label = STATE_LOOK.get(app.outline.state_of(cid), STATE_LOOK[State.UNKNOWN])[2]

    def chosen(choice: str | None) -> None:
        if choice == "explain":
            app.run_turn(lambda: app.session.explain(cid))
            app.input.focus()
        elif choice == "known":
            app.run_turn(lambda: app.session.mark_known(cid))
            app.input.focus()
        elif choice == "section":
            app.action_toggle_section(cid)

    app.push_screen(
        ChoiceScreen(
            f"{concept.title}  ({label})",
            [("explain", "Explain this"), ("known", "I know this"), ("section", "Show the section")],
        ),
        chosen,
    )
