"""The Textual reader app: ``TutorApp`` drives a ``TutorSession``.

Why it is built this way:
- One worker runs one engine turn at a time (``group="turn"``, exclusive). Esc cancels
  that worker; the engine sees the cancellation inside its generator and stores the
  partial reply with ``complete=False``. Typing stays live because the engine and the
  app share one event loop and streaming appends are batched by ``MarkdownStream``.
- Only the last ``WINDOW`` messages are mounted; earlier ones are mounted in pages when
  the reader scrolls to the top, so a 1,000-message session opens as fast as a new one.
- Untrusted text is always cleaned (``sanitize.clean``) and shown through ``Content``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events as tevents
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Markdown, OptionList, Static, TextArea
from textual.worker import Worker, WorkerState

from tutor.app import actions, dialogs
from tutor.app.history import History
from tutor.app.send_queue import SendQueue
from tutor.app.turn_view import RETRY_HINT, TurnView
from tutor.app.widgets import (
    ChatInput,
    DialoguePane,
    HeaderBar,
    NoteMessage,
    Outline,
    ReaderMessage,
    Sidebar,
    safe_parser,
)
from tutor.engine.events import (
    ErrorEvent,
)
from tutor.engine.notices import NoticeKind, StartNotice
from tutor.errors import ErrorCode, TutorError
from tutor.explainer import Concept
from tutor.text import control_pictures, one_line

if TYPE_CHECKING:
    from tutor.engine.session import TutorSession

WINDOW = 20  # messages mounted at open (more than a tall screen shows); more are mounted on scroll-up, PAGE at a time
THEMES = ["textual-dark", "textual-light", "nord", "gruvbox", "tokyo-night", "solarized-light"]

# Toast titles in plain words: the codes ("no_stop_reason") are for logs and tests.
ERROR_TITLES = {
    ErrorCode.AUTH: "API key rejected",
    ErrorCode.OVERLOADED: "Claude is overloaded",
    ErrorCode.RATE_LIMIT: "Rate limit reached",
    ErrorCode.TIMEOUT: "No answer in time",
    ErrorCode.CONNECTION: "No connection",
    ErrorCode.STREAM_ERROR: "Reply cut off",
    ErrorCode.NO_STOP_REASON: "Reply ended early",
    ErrorCode.CONTEXT: "Conversation too long",
    ErrorCode.DEADLINE: "Reply too slow",
    ErrorCode.TOO_LONG: "Reply too long",
}


def outline_depths(explainer: Any) -> dict[str, int]:
    """Nesting of each concept for the outline, from its heading level: a plain Markdown
    file (the CommonMark spec, a README) keeps its structure visible. At most two steps
    of indentation, so titles keep their room in a narrow (24-column) sidebar."""
    levels = {c.id: c.section.level for c in explainer.concepts}
    if not levels or len(set(levels.values())) < 2:
        return {}
    top = min(levels.values())
    return {cid: min(level - top, 2) for cid, level in levels.items()}


class SectionView(VerticalScroll):
    """The current concept's section from the explainer, beside the dialogue."""

    DEFAULT_CSS = """
    SectionView {
        display: none;
        width: 1fr;
        max-width: 90;
        border-left: vkey $panel-lighten-2;
        background: $surface;
        padding: 0 1;
    }
    SectionView.-visible { display: block; }
    SectionView:focus { border-left: vkey $accent; background-tint: $foreground 4%; }
    SectionView > #section-title { text-style: bold; color: $text-accent; margin: 1 0 0 0; }
    SectionView > #section-lines { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="section-title", markup=False)
        yield Static("", id="section-lines", markup=False)
        yield Markdown(None, id="section-body", parser_factory=safe_parser, open_links=False)

    def show(self, concept: Concept, file_name: str) -> None:
        """Show ``concept``'s section (its text is untrusted: never read as markup)."""
        self.query_one("#section-title", Static).update(Content(one_line(concept.section.heading or concept.title, 100)))
        self.query_one("#section-lines", Static).update(
            Content(f"{file_name}, lines {concept.section.start_line}–{concept.section.end_line}")
        )
        self.query_one("#section-body", Markdown).update(control_pictures(concept.section.text))
        self.add_class("-visible")
        self.scroll_home(animate=False)


class TutorApp(App[str | None]):
    """The reader app. ``session`` is a ``tutor.engine.session.TutorSession``."""

    TITLE = "tutor"
    CSS = """
    Screen { layout: vertical; }
    #main { height: 1fr; }
    #conversation { width: 1fr; }
    /* Below 110 columns three panes leave each too narrow to read: the section takes the outline's place. */
    Screen.-narrow.-section-open #sidebar { display: none; }
    /* Textual hides a code block's horizontal scrollbar, so a long line (a command, a hash)
       was cut with no sign; the bar shows only when a line does not fit (9.14). */
    MarkdownFence { overflow-x: auto; scrollbar-size-horizontal: 1; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("escape", "stop", "Stop reply", show=False),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+b", "go_offline", "Go offline"),
        Binding("ctrl+n", "skip", "Skip"),
        Binding("ctrl+g", "explain_again", "Again"),
        Binding("ctrl+o", "toggle_section", "Section"),
        Binding("ctrl+f", "feedback", "Note"),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+l", "copy_last", "Copy reply", show=False),
        Binding("ctrl+t", "next_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, session: TutorSession, notices: Iterable[StartNotice] = (), *, window: int = WINDOW) -> None:
        super().__init__()
        self.session = session
        self.notices = list(notices)
        self.window = window
        self.explainer = session.explainer
        self.turn_worker: Worker | None = None
        self.failed_text: str | None = None  # reader text whose reply failed (for Enter/Ctrl+R)
        self.send_queue = SendQueue(self)
        self.turn_outcome = "ok"  # how the last turn ended: ok, stopped or error
        self.last_reply: str = ""  # raw text of the newest tutor reply (for copy)
        self.history = History(self, window)
        self.shown_seq = 0  # newest stored seq already in the pane
        self.said_finished = False  # the end-of-outline note is shown once
        self.note_draft = ""  # a note to the author closed with Esc, offered again by Ctrl+F
        self.retry_blocked: str | None = None  # why retrying the last failure cannot help (401/403)
        self.auth_failed = False  # Claude refused the key: offer the offline guide (Ctrl+B)
        self.section_concept: str | None = None  # the concept the section view shows
        self._closed = False
        self.title = one_line(self.explainer.title, 80)
        self.sub_title = session.mode

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield HeaderBar(self.explainer.title, self.session.mode)
        with Horizontal(id="main"):
            yield Sidebar(Outline([(c.id, c.title) for c in self.explainer.concepts], outline_depths(self.explainer)))
            with Vertical(id="conversation"):
                yield DialoguePane()
                yield ChatInput()
            yield SectionView(id="section")
        yield Footer(compact=True)

    @property
    def pane(self) -> DialoguePane:
        return self.query_one(DialoguePane)

    @property
    def outline(self) -> Outline:
        return self.query_one(Outline)

    @property
    def input(self) -> ChatInput:
        return self.query_one(ChatInput)

    @property
    def header_bar(self) -> HeaderBar:
        return self.query_one(HeaderBar)

    @property
    def queued(self) -> ReaderMessage | None:
        """The message waiting for the streaming reply to end."""
        return self.send_queue.queued

    @property
    def busy(self) -> bool:
        return self.turn_worker is not None and self.turn_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    async def on_mount(self) -> None:
        self._restore_theme()
        self.pane.anchor()
        self.refresh_outline()
        tokens, cost = actions.session_usage(self.session)
        self.header_bar.set_usage(tokens, cost)
        kinds = {n.kind for n in self.notices}
        for note in self.notices:
            if note.kind is NoticeKind.CHANGED:
                self.notify(one_line(note.text, 300), title="File changed", severity="warning", markup=False, timeout=10)
            elif note.kind is NoticeKind.RESUMED:
                self.notify(one_line(note.text, 300), title="Welcome back", markup=False)
        # Setup notes go into the dialogue, where they stay readable; a toast would cover
        # the tutor's first question on an 80x24 terminal.
        inline = [n.text for n in self.notices if n.kind is NoticeKind.SETUP]
        if self.session.resumed:
            try:
                await self.load_history()
            except Exception as exc:  # noqa: BLE001 - show the session anyway; the store keeps the history
                self.notify(one_line(f"Earlier messages could not be shown: {exc}", 300), severity="error", markup=False)
            if NoticeKind.RESUMED not in kinds:
                self.notify("Resumed your last session on this file. Use --new to start afresh.", title="Welcome back", markup=False)
            if self.session.explainer_changed and NoticeKind.CHANGED not in kinds:
                self.notify(
                    "The explainer changed since this session began; the tutor goes on with the new text.",
                    title="File changed",
                    severity="warning",
                    markup=False,
                    timeout=10,
                )
        if inline:
            await self.pane.mount_all([NoteMessage(note) for note in inline])
        await self.send_queue.show_unsent()
        self.input.focus()
        self.shown_seq = self.session.store.message_count(self.session.id)
        self.run_turn(lambda: self.session.start())
        # Everything built so far (Textual, pydantic, the explainer, the widgets) lives as
        # long as the app. Left in the collector's care, each full collection walks it all:
        # 95-130 ms pauses that froze a streaming reply mid-word (bench_app, delta ~50).
        # Frozen, a full collection only walks what was made since. on_unmount thaws it.
        self.call_after_refresh(gc.freeze)

    # -------------------------------------------------------------- history
    async def load_history(self) -> None:
        last = await self.history.show_recent()
        if last is not None:
            self.last_reply = last

    @on(DialoguePane.NeedEarlier)
    async def load_earlier(self) -> None:
        await self.history.show_earlier()

    # ---------------------------------------------------------------- turns
    def run_turn(self, make_events: Callable[[], AsyncGenerator[Any, None]], *, reader_text: str | None = None, echo: bool = True) -> bool:
        """Run one engine turn in the ``turn`` worker. ``echo``: show the reader messages the
        engine stores for this turn (commands like skip store "Let's skip X for now.")."""
        if self.busy:
            self.notify("The tutor is still replying. Press Esc to stop it first.", severity="warning", markup=False)
            return False
        self.turn_worker = self.run_worker(
            self._consume(make_events, reader_text, echo), group="turn", exclusive=True, name="turn"
        )
        return True

    async def _echo_reader_rows(self) -> None:
        """Mount reader messages stored since the last turn (by commands, not typed here)."""
        rows = self.session.store.messages(self.session.id, after_seq=self.shown_seq)
        widgets = [ReaderMessage(r.text, seq=r.seq) for r in rows if r.role == "reader"]
        if widgets:
            await self.pane.mount_all(widgets)
        if rows:
            self.shown_seq = rows[-1].seq

    async def _consume(self, make_events: Callable[[], AsyncGenerator[Any, None]], reader_text: str | None, echo: bool) -> None:
        view = TurnView(self, reader_text)
        stopped = False
        self.retry_blocked = None
        events = make_events()
        self.input.set_busy(True)
        try:
            async for event in events:
                if echo:
                    echo = False
                    await self._echo_reader_rows()
                await view.show(event)
        except asyncio.CancelledError:
            stopped = True
            raise
        except TutorError as exc:  # a user-level problem (store gone, bad concept): say it
            view.crash(f"No reply: {one_line(str(exc), 400)}")
            self.notify(one_line(str(exc), 400), title="No reply", severity="error", timeout=15, markup=False)
        except Exception as exc:  # noqa: BLE001 - a bug must not cost the reader the session
            self.log.error(exc)
            saved = "Everything said so far is saved; press Ctrl+R or try again."
            view.crash(f"Something went wrong ({type(exc).__name__}). {saved}")
            self.notify(
                one_line(f"Something went wrong ({type(exc).__name__}: {exc}). {saved}", 400),
                title="Unexpected error",
                severity="error",
                timeout=20,
                markup=False,
            )
        finally:
            try:
                await events.aclose()
            except Exception:  # the generator already reported its own failure as an event
                pass
            self.turn_outcome = await view.finish(stopped=stopped)
            if view.parts:
                self.last_reply = "".join(view.parts)
            self.shown_seq = self.session.store.message_count(self.session.id)
            if self.turn_outcome != "stopped" and not view.errored:
                self.failed_text = None
            elif self.turn_outcome == "stopped" and view.message is None and reader_text and self.send_queue.queued is None:
                # Stopped before any word: the message was never answered, so it goes back to
                # the input as after a failed reply, and Enter sends it again (_retry).
                self.failed_text = reader_text
                if not self.input.text.strip():
                    self.input.text = reader_text
                    self.input.move_cursor(self.input.document.end)
            self.refresh_outline()
            self.input.set_busy(False, self.session.input_hint())
            self.refresh_bindings()  # Retry shows in the footer only when there is something to retry

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.turn_worker and event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            if self.send_queue.queued is not None:
                self.call_later(self.send_queue.release, self.turn_outcome)

    def show_error(self, event: ErrorEvent, reader_text: str | None) -> None:
        message = one_line(event.message, 400)
        if event.retryable:
            message = f"{message}\n{RETRY_HINT}"
        else:  # a rejected key or a refused request: sending it again cannot help
            self.retry_blocked = event.message
        self.notify(message, title=ERROR_TITLES.get(event.code, "No reply"), severity="error", timeout=15, markup=False)
        self.refresh_bindings()
        if reader_text is not None:
            self.failed_text = reader_text
            if not self.input.text.strip():
                self.input.text = reader_text
                self.input.move_cursor(self.input.document.end)
        for widget in reversed(self.pane.children):
            if isinstance(widget, ReaderMessage):
                widget.add_class("unanswered")
                break

    def refresh_outline(self) -> None:
        current = self.session.current_concept
        moved = current != self.outline.current
        self.outline.update_states(self.session.states(), current)
        # An open section follows the tutor to the next concept (it was left on the old one).
        if moved and current is not None and self.section_concept not in (None, current):
            view = self.query_one(SectionView)
            if view.has_class("-visible"):
                self.action_toggle_section(current)

    # --------------------------------------------------------------- input
    @on(ChatInput.Submitted)
    async def send(self, event: ChatInput.Submitted) -> None:
        text = event.text.strip()
        if self.busy:
            # One message may wait for the reply to end, as in a chat; more would pile up
            # answers to questions the tutor has not asked yet.
            if not text:
                self.notify("The tutor is still replying. Press Esc to stop it.", severity="warning", markup=False)
            elif self.send_queue.queued is not None:
                self.notify("A message is already queued; it is sent when this reply ends. Esc stops the reply.",
                            severity="warning", markup=False)
            else:
                await self.send_queue.add(text)
            return
        if self.failed_text is not None and text == self.failed_text.strip():
            self.input.clear()
            self._retry()  # sent again on purpose (even after a 401: the reader's call)
            return
        self.input.clear()
        self.failed_text = None
        self.pane.anchor()
        if not text:  # Enter on an empty input: "go on" (the engine stores "(more)")
            self.run_turn(lambda: self.session.reply(""))
            return
        pid = self.send_queue.keep(text)  # stored before it is shown; the turn makes it a message
        if pid is None:
            self.input.text = text
            return
        await self.pane.mount(ReaderMessage(text))
        self.run_turn(lambda: self.session.reply(text, pending_id=pid), reader_text=text, echo=False)

    def on_key(self, event: tevents.Key) -> None:
        """Typing while the outline, dialogue or section has focus goes to the input: the
        reader should never lose what they type because Tab moved the focus."""
        if not event.is_printable or not event.character or len(self.screen_stack) > 1:
            return
        if self.focused is self.input or isinstance(self.focused, TextArea):
            return
        event.stop()
        event.prevent_default()
        self.input.focus()
        self.input.insert(event.character)

    # -------------------------------------------------------------- actions
    def action_stop(self) -> None:
        if self.busy and self.turn_worker is not None:
            self.turn_worker.cancel()

    def can_retry(self) -> bool:
        if self.retry_blocked is not None:
            return False
        return self.failed_text is not None or bool(getattr(self.session, "can_retry", False))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.can_retry()  # hidden from the footer until a reply fails
        if action == "go_offline":
            return self.auth_failed and self.session.guide is None
        return True

    def action_go_offline(self) -> None:
        if self.busy or not self.auth_failed:
            return
        self.auth_failed = False
        self.retry_blocked = None
        self.failed_text = None
        self.header_bar.mode = "offline"
        self.header_bar.refresh_bar()
        self.run_turn(lambda: self.session.go_offline(), echo=False)

    def action_retry(self) -> None:
        if self.busy:
            return
        if self.retry_blocked is not None:
            self.notify(one_line(f"Retrying cannot help: {self.retry_blocked}", 400), markup=False, timeout=8)
            return
        if not self.can_retry():
            self.notify("There is nothing to retry: the last reply arrived in full.", markup=False, timeout=4)
            return
        self._retry()

    def _retry(self) -> None:
        """Resend the message whose reply failed (the engine does not store it again)."""
        text = self.failed_text
        if text is not None and self.input.text.strip() == text.strip():
            self.input.clear()
        for widget in reversed(self.pane.children):
            if isinstance(widget, ReaderMessage):
                widget.remove_class("unanswered")
                break
        self.run_turn(lambda: self.session.retry(), reader_text=text, echo=False)

    def action_skip(self) -> None:
        self.run_turn(lambda: self.session.skip())

    def action_explain_again(self) -> None:
        cid = self.session.current_concept
        if cid is None:
            self.notify("There is no current concept to explain again.", markup=False)
            return
        self.run_turn(lambda: self.session.explain(cid))

    def action_toggle_section(self, concept_id: str | None = None) -> None:
        view = self.query_one(SectionView)
        cid = concept_id or self.session.current_concept or (self.explainer.concepts[0].id if self.explainer.concepts else None)
        if view.has_class("-visible") and concept_id is None and self.section_concept in (cid, None):
            had_focus = view.has_focus_within
            view.remove_class("-visible")
            self.screen.remove_class("-section-open")
            if had_focus:  # else focus would land on whatever Textual picks, and typing would go nowhere
                self.input.focus()
            return
        if cid is None:
            return
        self.section_concept = cid
        view.show(self.explainer.concept(cid), Path(str(self.explainer.path)).name)
        self.screen.add_class("-section-open")
        if self.outline.has_focus and self.screen.has_class("-narrow"):
            self.input.focus()  # the outline is about to be hidden

    def action_feedback(self) -> None:
        dialogs.note_to_author(self)

    def action_export(self) -> None:
        dialogs.export(self)

    def action_copy_last(self) -> None:
        if not self.last_reply:
            self.notify("There is no reply to copy yet.", markup=False)
            return
        how = actions.copy_text(self, control_pictures(self.last_reply))  # what the reader saw, escapes neutralised
        if how is None:
            self.notify("Copy failed: the terminal and the system clipboard both refused.", severity="error", markup=False)
        else:
            self.notify(f"Copied the last reply ({how}).", markup=False)

    def action_next_theme(self) -> None:
        names = [t for t in THEMES if t in self.available_themes]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", markup=False, timeout=2)

    def _restore_theme(self) -> None:
        saved = actions.saved_theme(self.session)
        if saved and saved in self.available_themes and saved != self.theme:
            self.theme = saved
        # Subscribe after applying it: Ctrl+T and Textual's own theme picker both save.
        self.theme_changed_signal.subscribe(self, lambda theme: actions.save_theme(self.session, theme.name))

    async def action_quit(self) -> None:
        # A queued message was never sent: hand it to the shell (run_app returns it) so
        # quitting mid-reply cannot silently drop something the reader saw as sent.
        unsent = self.send_queue.take_all()
        if self.busy and self.turn_worker is not None:
            self.turn_worker.cancel()
            try:
                await self.turn_worker.wait()
            except Exception:
                pass
        await self.close_session()
        self.exit(unsent)

    async def close_session(self) -> None:
        if not self._closed:
            self._closed = True
            await self.session.aclose()

    async def on_unmount(self) -> None:
        gc.unfreeze()  # the app is done: let what it held be collected (tests run many apps)
        await self.close_session()

    # -------------------------------------------------------------- outline
    @on(OptionList.OptionSelected, "#outline")
    def concept_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            dialogs.concept_menu(self, event.option.id)

    @on(Markdown.LinkClicked)
    def link_clicked(self, event: Markdown.LinkClicked) -> None:
        """Links in replies and sections are never opened: show where they point instead."""
        event.stop()
        self.notify(one_line(event.href, 300), title="Link (not opened)", markup=False)

    # ------------------------------------------------------------- palette
    # Textual's generic entries that mean nothing to a reader (9.14); the rest (Theme, Keys,
    # Quit) follow tutor's own commands instead of leading the list.
    DROPPED_SYSTEM_COMMANDS = frozenset({"Maximize", "Minimize", "Screenshot"})

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from self._tutor_commands()
        for command in super().get_system_commands(screen):
            if command.title not in self.DROPPED_SYSTEM_COMMANDS:
                yield command

    def _tutor_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Export transcript", "Save the dialogue as Markdown, HTML or JSON (Ctrl+S)", self.action_export)
        yield SystemCommand("Copy last reply", "Copy the tutor's newest reply to the clipboard (Ctrl+L)", self.action_copy_last)
        yield SystemCommand("Show section", "Show the current concept's section of the explainer (Ctrl+O)", self.action_toggle_section)
        yield SystemCommand("Note to the author", "Tell the author what was unclear or wrong (Ctrl+F)", self.action_feedback)
        yield SystemCommand("Skip concept", "Move on to the next concept (Ctrl+N)", self.action_skip)
        yield SystemCommand("Explain again", "Explain the current concept again (Ctrl+G)", self.action_explain_again)
        yield SystemCommand("Retry", "Resend the message whose reply failed (Ctrl+R)", self.action_retry)
        yield SystemCommand("Next theme", "Cycle through colour themes (Ctrl+T)", self.action_next_theme)
