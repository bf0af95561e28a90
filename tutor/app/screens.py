"""Modal screens: concept actions, author feedback, export format."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, TextArea
from textual.widgets.option_list import Option

from tutor.text import one_line

_MODAL_CSS = """
%s { align: center middle; background: $background 60%%; }
%s > Vertical {
    width: 64; height: auto; max-height: 80%%;
    border: round $accent; background: $surface; padding: 1 2;
}
%s Label.title { text-style: bold; margin-bottom: 1; }
%s Label.hint { color: $text-muted; margin-top: 1; }
"""


def _css(name: str) -> str:
    return _MODAL_CSS % (name, name, name, name)


class ChoiceScreen(ModalScreen[str | None]):
    """A short menu of choices; dismisses with the chosen id, or None on Esc."""

    DEFAULT_CSS = _css("ChoiceScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = one_line(title, 120)
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(self.title_text), classes="title", markup=False)
            yield OptionList(*[Option(Content(label), id=cid) for cid, label in self.choices], id="choices")
            yield Label("Enter choose · Esc cancel", classes="hint", markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FeedbackScreen(ModalScreen[str | None]):
    """A note for the author, written in a TextArea (Enter adds a line); Ctrl+S saves, Esc cancels."""

    DEFAULT_CSS = _css("FeedbackScreen") + """
    FeedbackScreen TextArea { height: 8; border: round $panel-lighten-2; }
    FeedbackScreen TextArea:focus { border: round $accent; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save note"),  # not priority: it must come after the typed characters
    ]

    def __init__(self, concept_title: str | None, draft: str = "") -> None:
        super().__init__()
        self.concept_title = concept_title
        self.draft = draft  # Esc keeps what was typed here, so a half-written note is not lost

    def compose(self) -> ComposeResult:
        about = f" about “{one_line(self.concept_title, 60)}”" if self.concept_title else ""
        with Vertical():
            yield Label(Content(f"A note for the author{about}"), classes="title", markup=False)
            yield TextArea(id="note", soft_wrap=True, tab_behavior="focus")
            yield Label("Ctrl+S save · Esc close (the draft is kept) — the author sees notes in `tutor feedback`", classes="hint", markup=False)

    def on_mount(self) -> None:
        note = self.query_one("#note", TextArea)
        if self.draft:
            note.text = self.draft
            note.move_cursor(note.document.end)
        note.focus()

    def action_save(self) -> None:
        text = self.query_one("#note", TextArea).text.strip()
        self.draft = "" if text else self.draft
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.draft = self.query_one("#note", TextArea).text
        self.dismiss(None)
