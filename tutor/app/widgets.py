"""The reader app's widgets: header bar, outline, dialogue pane, messages, input.

Every piece of text that came from a file, the model or the store goes through
``sanitize.clean`` and into a ``Content`` object (or a Markdown widget, which builds
``Content`` itself), so it can never be read as markup or terminal escapes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from functools import lru_cache

from markdown_it import MarkdownIt
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from tutor.engine.reader_model import State
from tutor.text import control_pictures, one_line

# state -> (symbol, style, label). Symbols differ in shape, not only colour, so the
# outline reads on a monochrome terminal too.
STATE_LOOK: dict[str, tuple[str, str, str]] = {
    State.UNKNOWN: ("○", "$text-muted", "not yet"),
    State.ASKED: ("?", "$text-warning", "asked"),
    State.EXPLAINED: ("◐", "$text-accent", "explained"),
    State.SHAKY: ("!", "$text-error", "shaky"),
    State.KNOWN: ("✓", "$text-success", "already knew"),
    State.UNDERSTOOD: ("●", "bold $text-success", "understood"),
}


@lru_cache(maxsize=1)
def safe_parser() -> MarkdownIt:
    """Markdown without raw HTML (``<b>`` in a reply is shown as text, not dropped) and
    without linkify (a bare URL in untrusted text stays text, not a clickable link).

    Cached: ``Markdown.append`` asks for a parser on every streamed fragment, and building
    one costs about a millisecond. ``parse`` keeps its state per call, so sharing is safe."""
    return MarkdownIt("gfm-like", {"html": False, "linkify": False})


class HeaderBar(Horizontal):
    """The title on the left; the mode and the session's token/cost totals on the right.

    Two widgets, so that on a narrow terminal the title is shortened with an ellipsis
    and the cost (what a Claude reader watches) stays on screen."""

    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    HeaderBar > #header-title { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    HeaderBar > #header-usage { width: auto; color: $text-muted; padding-left: 2; }
    """

    def __init__(self, title: str, mode: str) -> None:
        super().__init__(id="header")
        self.title_text = one_line(title, 80)
        self.mode = mode
        self.tokens = 0
        self.cost = 0.0

    def compose(self):
        yield Static(Content.styled(self.title_text, "bold"), id="header-title", markup=False)
        yield Static("", id="header-usage", markup=False)

    def on_mount(self) -> None:
        self.refresh_bar()

    def set_usage(self, tokens: int, cost: float) -> None:
        self.tokens, self.cost = tokens, cost
        self.refresh_bar()

    def refresh_bar(self) -> None:
        if not self.is_mounted:
            return
        mode = "offline guided mode" if self.mode == "offline" else self.mode
        parts: list[tuple[str, str] | str] = [(mode, "$text-accent")]
        if self.mode != "offline":
            parts += ["  ·  ", f"{self.tokens:,} tokens  ${self.cost:.4f}"]
        self.query_one("#header-usage", Static).update(Content.assemble(*parts))


def state_legend() -> Content:
    """What the outline's symbols mean, from ``STATE_LOOK`` (one home for symbol and style):
    three rows of two, which fit the 21 columns the sidebar has at 80 columns."""
    short = {State.KNOWN: "knew"}  # "already knew" does not fit beside "understood"
    rows = ((State.UNKNOWN, State.ASKED), (State.EXPLAINED, State.SHAKY), (State.UNDERSTOOD, State.KNOWN))
    left = max(len(short.get(a, STATE_LOOK[a][2])) for a, _ in rows)
    parts: list[tuple[str, str] | str] = []
    for i, (a, b) in enumerate(rows):
        for j, state in enumerate((a, b)):
            symbol, style, label = STATE_LOOK[state]
            label = short.get(state, label)
            parts += [(symbol, style), " ", label.ljust(left + 1) if j == 0 else label]
        if i < len(rows) - 1:
            parts.append("\n")
    return Content.assemble(*parts)


class Sidebar(Vertical):
    """The outline and, under it, the legend of its state symbols. Its width grows with the
    terminal (a fraction, within bounds): 24 columns at 80, 36 at 120, up to 56 (9.14)."""

    DEFAULT_CSS = """
    Sidebar {
        width: 30%;
        min-width: 24;
        max-width: 56;
        height: 1fr;
        border-right: vkey $panel-lighten-2;
        background: $surface;
    }
    Sidebar:focus-within { border-right: vkey $accent; }
    Sidebar > #legend { height: auto; color: $text-muted; padding: 0 1; border-top: hkey $panel-lighten-2; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, outline: Outline) -> None:
        super().__init__(id="sidebar")
        self.outline = outline

    def compose(self):
        yield self.outline
        yield Static(state_legend(), id="legend", markup=False)


class Outline(OptionList):
    """The concepts in teaching order, each with its reader-model state."""

    DEFAULT_CSS = """
    Outline {
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        height: 1fr;
        border: none;
        padding: 0 0;
        background: $surface;
    }
    Outline:focus { border: none; }
    /* Unfocused, the cursor row is not highlighted: only ▸ marks where the tutor is. */
    Outline:blur > .option-list--option-highlighted { background: transparent; }
    """

    def __init__(self, concepts: list[tuple[str, str]], depths: dict[str, int] | None = None) -> None:
        self.concepts = [(cid, one_line(title, 60)) for cid, title in concepts]
        self.depths = depths or {}  # concept id -> nesting (0 = top), shown as indentation
        self.states: dict[str, str] = {}
        self.current: str | None = None
        super().__init__(*[Option(self._prompt(cid, t), id=cid) for cid, t in self.concepts], id="outline")
        self.border_title = "Outline"

    def _prompt(self, cid: str, title: str) -> Content:
        state = self.states.get(cid, State.UNKNOWN)
        symbol, style, _ = STATE_LOOK.get(state, STATE_LOOK[State.UNKNOWN])
        marker = ("▸ ", "bold $text-accent") if cid == self.current else "  "
        title_style = "bold" if cid == self.current else ""
        indent = "  " * self.depths.get(cid, 0)
        return Content.assemble(indent, marker, (symbol, style), " ", (title, title_style))

    def update_states(self, states: Mapping[str, str], current: str | None) -> None:
        """Redraw only the rows whose symbol or marker changed."""
        old_states, old_current = self.states, self.current
        self.states, self.current = dict(states), current
        for cid, title in self.concepts:
            if old_states.get(cid) != self.states.get(cid) or cid in (old_current, current):
                self.replace_option_prompt(cid, self._prompt(cid, title))
        if current is not None and current != old_current and not self.has_focus:
            # The cursor follows the tutor (it is invisible while unfocused), which keeps the
            # current concept scrolled into view in a long outline and makes Tab, Enter act on it.
            self.highlighted = self.get_option_index(current)

    def state_of(self, cid: str) -> str:
        return self.states.get(cid, State.UNKNOWN)


class ReaderMessage(Static):
    """What the reader wrote, literally."""

    DEFAULT_CSS = """
    ReaderMessage {
        margin: 0 1 1 6;
        max-width: 100;
        padding: 0 1;
        background: $boost;
        border-left: wide $accent;
        color: $foreground;
    }
    ReaderMessage.unanswered { border-left: wide $error; }
    ReaderMessage.queued { border-left: wide $secondary; color: $text-muted; }
    """

    QUEUED_NOTE = "queued: sent when this reply ends (Esc cancels)"

    def __init__(self, text: str, *, seq: int | None = None, queued: bool = False, pending_id: int | None = None) -> None:
        self.text = text
        self.seq = seq
        self.pending_id = pending_id  # its pending_messages row while it is not sent (m007)
        super().__init__(self._content(queued), markup=False, classes="queued" if queued else "")

    def _content(self, queued: bool) -> Content:
        body = Content(control_pictures(self.text))
        return Content.assemble(body, "\n", (self.QUEUED_NOTE, "italic")) if queued else body

    def set_queued(self, queued: bool) -> None:
        self.set_class(queued, "queued")
        self.update(self._content(queued))


class TutorMessage(Markdown):
    """A tutor reply. Streams through ``Markdown.get_stream``; once finished it is left alone."""

    DEFAULT_CSS = """
    TutorMessage {
        margin: 1 6 0 1;
        max-width: 104;
        padding: 0 1 0 2;
        background: transparent;
    }
    TutorMessage > MarkdownParagraph { margin: 0 0 1 0; }
    TutorMessage.incomplete { border-left: wide $warning; padding-left: 1; }
    """

    def __init__(self, text: str = "", *, seq: int | None = None) -> None:
        super().__init__(control_pictures(text) or None, parser_factory=safe_parser, open_links=False)
        self.text = text
        self.seq = seq


class NoteMessage(Static):
    """A quiet line from the app itself: "(stopped)", "welcome back", "end of outline"."""

    DEFAULT_CSS = """
    NoteMessage {
        margin: 0 1 1 3;
        max-width: 104;
        color: $text-muted;
        text-style: italic;
    }
    NoteMessage.warning { color: $text-warning; }
    """

    def __init__(self, text: str, *, classes: str = "", seq: int | None = None) -> None:
        super().__init__(Content(control_pictures(text)), markup=False, classes=classes)
        self.text = text
        self.seq = seq


class ThinkingNote(Static):
    """"Thinking… 4 s" while the model thinks before its reply; removed when the reply starts.
    Without it a reader stares at nothing for the seconds a thinking model takes."""

    DEFAULT_CSS = """
    ThinkingNote {
        margin: 0 1 1 3;
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(self) -> None:
        super().__init__("Thinking…", markup=False)
        self._started = 0.0

    def on_mount(self) -> None:
        self._started = time.monotonic()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        self.update(f"Thinking… {time.monotonic() - self._started:.0f} s")


class RetryNote(Static):
    """"Retrying in 12 s (Esc to stop)" while the engine waits to try a failed call again
    (docs/reliability.md). The reason is the server's failure in our words, never markup."""

    DEFAULT_CSS = """
    RetryNote {
        margin: 0 1 1 3;
        color: $warning;
        text-style: italic;
    }
    """

    def __init__(self, seconds: float, attempt: int, of: int, reason: str) -> None:
        self._until = time.monotonic() + seconds
        self._head = one_line(reason, 160)
        self._tries = f"retry {attempt} of {of}"
        super().__init__(self._line(), markup=False)

    def _line(self) -> str:
        left = max(0.0, self._until - time.monotonic())
        return f"{self._head} Retrying in {math.ceil(left)} s ({self._tries}; Esc to stop)."

    def on_mount(self) -> None:
        self.set_interval(1.0, lambda: self.update(self._line()))


class DialoguePane(VerticalScroll):
    """The conversation. Anchored to the bottom (follows new text) until the reader
    scrolls up; asks for earlier messages when scrolled to the very top."""

    DEFAULT_CSS = """
    DialoguePane { height: 1fr; padding: 0 0 1 0; background: $background; }
    /* Focused (Tab), the pane scrolls with the arrow keys: say so with a tint and an accent scrollbar. */
    DialoguePane:focus { background-tint: $foreground 4%; scrollbar-color: $accent 60%; }
    """

    class NeedEarlier(Message):
        """Scrolled to the top while earlier messages are not mounted."""

    def __init__(self) -> None:
        super().__init__(id="dialogue")
        self.has_earlier = False
        # Where the reader is: None while following the end, else (message at the top of the
        # view, rows into it). Opening the section or the Keys panel narrows the pane and the
        # text reflows taller, so the same scroll_y would show older messages (9.14).
        self._place: tuple[Widget, float] | None = None
        self._place_width = 0

    def _remember_place(self) -> None:
        if self.size.width != self._place_width:
            return  # mid-resize: the place from before it is the one to restore
        if not self._anchor_released or self.scroll_y >= self.max_scroll_y:
            self._place = None
            return
        y = self.scroll_y
        for w in self.children:
            region = w.virtual_region_with_margin
            if region.bottom > y:
                self._place = (w, y - region.y)
                return

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width == self._place_width:
            return
        first = not self._place_width
        self._place_width = event.size.width
        if not first:
            self.call_after_refresh(self._restore_place, self._place)

    def _restore_place(self, place: tuple[Widget, float] | None) -> None:
        if place is None or not place[0].is_attached:
            self.scroll_end(animate=False, immediate=True)
        else:
            widget, offset = place
            self.scroll_to(y=widget.virtual_region_with_margin.y + offset, animate=False, immediate=True)
        self._remember_place()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._remember_place()
        # Only when the reader scrolled (anchor released), not when layout moves the view.
        if self.has_earlier and new_value <= 0 and old_value > 0 and getattr(self, "_anchor_released", True):
            self.post_message(self.NeedEarlier())

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        # Already at the top: a further wheel turn still asks for more.
        if self.has_earlier and self.scroll_y <= 0:
            self.post_message(self.NeedEarlier())


class ChatInput(TextArea):
    """Multi-line input: Enter sends; Shift+Enter or Ctrl+J inserts a newline."""

    DEFAULT_CSS = """
    ChatInput {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    ChatInput:focus { border: round $accent; }
    """

    # Shown in the footer; the keys themselves are handled in _on_key, not as priority
    # bindings: a priority binding runs at once in the App, ahead of the characters still
    # queued for this widget, so "text" + Enter typed fast (or pasted by tmux) would send
    # an empty message and leave the text behind.
    # Not in the footer: the input's own border says "Enter send · Ctrl+J new line",
    # and the footer needs the room for the app's keys on an 80-column terminal.
    BINDINGS = [
        Binding("enter", "submit", "Send", show=False),
        Binding("shift+enter,ctrl+j", "newline", "New line", show=False),
    ]

    class Submitted(Message):
        def __init__(self, input: ChatInput, text: str) -> None:
            super().__init__()
            self.input = input
            self.text = text

    def __init__(self) -> None:
        super().__init__(id="input", soft_wrap=True, show_line_numbers=False, tab_behavior="focus", placeholder=self.IDLE_PLACEHOLDER)
        self.border_subtitle = self.IDLE_HINT

    IDLE_HINT = "Enter send · Ctrl+J new line"  # Shift+Enter never reaches an app inside tmux
    BUSY_HINT = "Enter queues · Esc stops the reply"
    IDLE_PLACEHOLDER = "Answer, ask a question, or press Enter to read on"
    idle_placeholder = IDLE_PLACEHOLDER
    BUSY_PLACEHOLDER = "The tutor is replying… type your next message; Enter queues it"

    def set_busy(self, busy: bool, idle_placeholder: str | None = None) -> None:
        """``idle_placeholder``: what the tutor waits for now (the session's input hint)."""
        if idle_placeholder:
            self.idle_placeholder = idle_placeholder
        self.set_class(busy, "-busy")
        self.border_subtitle = self.BUSY_HINT if busy else self.IDLE_HINT
        self.placeholder = self.BUSY_PLACEHOLDER if busy else self.idle_placeholder

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        if event.key in ("pageup", "pagedown"):
            # The input is a few lines tall; Page Up/Down read back through the dialogue
            # instead, so the reader need not Tab away from what they are typing.
            pane = next(iter(self.screen.query(DialoguePane)), None) if self.is_attached else None
            if pane is not None:
                event.stop()
                event.prevent_default()
                if event.key == "pageup":
                    pane.scroll_page_up()
                elif pane.scroll_y + pane.scrollable_content_region.height >= pane.max_scroll_y:
                    pane.scroll_end()  # re-anchors: new text is followed again (scroll_to would release it)
                else:
                    pane.scroll_page_down()
                return
        await super()._on_key(event)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        start, end = self.selection
        self._replace_via_keyboard("\n", start, end)
