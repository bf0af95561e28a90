"""One turn on screen: the engine's events drawn into the dialogue as they arrive.

A turn's screen state (the reply being streamed, the thinking and retry notes, why it was
cut) lives here, one object per turn, so the app only starts turns and reacts to how they
ended (``outcome``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Markdown

from tutor.app.widgets import NoteMessage, RetryNote, ThinkingNote, TutorMessage
from tutor.engine.events import (
    ErrorEvent,
    Event,
    Notice,
    Retrying,
    StateChanged,
    TextDelta,
    Thinking,
    TurnFinished,
    Usage,
)
from tutor.errors import ErrorCode
from tutor.text import control_pictures, one_line

if TYPE_CHECKING:
    from textual.widgets._markdown import MarkdownStream

    from tutor.app.app import TutorApp

RETRY_HINT = "Press Ctrl+R to retry."
# ErrorEvent.code -> the words under a reply the error cut (they outlive the notification)
CUT_BY = {
    ErrorCode.CONNECTION: "a dropped connection",
    ErrorCode.STREAM_ERROR: "an error from Claude",
    ErrorCode.OVERLOADED: "an overloaded API",
    ErrorCode.RATE_LIMIT: "the rate limit",
    ErrorCode.TIMEOUT: "a timeout",
    ErrorCode.NO_STOP_REASON: "a stream that ended early",
    ErrorCode.DEADLINE: "the time limit for a reply",
    ErrorCode.TOO_LONG: "the size limit for a reply",
}


class TurnView:
    """Draws one turn. ``outcome`` after ``finish``: "ok", "error" or "stopped"."""

    def __init__(self, app: TutorApp, reader_text: str | None):
        self.app = app
        self.pane = app.pane
        self.reader_text = reader_text
        self.message: TutorMessage | None = None
        self.stream: MarkdownStream | None = None
        self.parts: list[str] = []
        self.errored = False
        self.crashed = False  # the turn ended in an exception, not an error event
        self.cut_note: str | None = None  # why the reply is incomplete, when it is
        self.error_note: str | None = None  # why there is no reply at all (outlives the toast)
        self.thinking_note: ThinkingNote | None = None
        self.retry_note: RetryNote | None = None  # "retrying in N s" while the engine waits

    async def show(self, event: Event) -> None:
        # FeedbackCaptured is stored by the engine and never shown, so it has no branch here.
        if self.retry_note is not None:  # the wait is over: the next try has answered
            await self.retry_note.remove()
            self.retry_note = None
        if isinstance(event, Retrying):
            self.retry_note = RetryNote(event.seconds, event.attempt, event.of, event.reason)
            await self.pane.mount(self.retry_note)
        elif isinstance(event, Thinking):
            await self._thinking(event)
        elif isinstance(event, Notice):
            await self.pane.mount(NoteMessage(event.text, classes="warning"))
        elif isinstance(event, TextDelta):
            await self._text(event.text)
        elif isinstance(event, StateChanged):
            self.app.refresh_outline()
        elif isinstance(event, Usage):
            self.app.header_bar.set_usage(event.session_tokens, event.session_cost_usd)
        elif isinstance(event, ErrorEvent):
            self._error(event)
        elif isinstance(event, TurnFinished):
            await self._finished(event)

    async def _thinking(self, event: Thinking) -> None:
        if not event.done and self.thinking_note is None:
            self.thinking_note = ThinkingNote()
            await self.pane.mount(self.thinking_note)
        elif event.done and self.thinking_note is not None:
            await self.thinking_note.remove()
            self.thinking_note = None

    async def _text(self, text: str) -> None:
        if not text:
            return
        if self.message is None:
            self.message = TutorMessage()
            await self.pane.mount(self.message)
            self.stream = Markdown.get_stream(self.message)
        assert self.stream is not None  # made together with the message
        self.parts.append(text)
        await self.stream.write(control_pictures(text))

    def _error(self, event: ErrorEvent) -> None:
        self.errored = True
        self.app.show_error(event, self.reader_text)
        if self.message is not None:
            why = CUT_BY.get(event.code, "an error")
            self.cut_note = f"(cut off by {why} — the partial reply is kept" + ("; Ctrl+R retries)" if event.retryable else ")")
        else:
            self.error_note = f"No reply: {one_line(event.message, 400)}" + (f" {RETRY_HINT}" if event.retryable else "")
        if event.code == ErrorCode.AUTH:
            self.app.auth_failed = True
            self.error_note = f"No reply: {one_line(event.message, 400)} Press Ctrl+B to carry on in the offline guided mode."

    async def _finished(self, event: TurnFinished) -> None:
        if self.message is not None and not event.complete and event.stop_reason == "max_tokens":
            self.cut_note = "(the reply reached its length limit — press Enter to hear the rest)"
        if event.finished and not self.app.said_finished:
            self.app.said_finished = True
            await self.pane.mount(NoteMessage("That is the end of the outline. Ask anything, or press Ctrl+S to export the transcript."))

    def crash(self, note: str) -> None:
        """The turn ended in an exception: ``note`` says so under the dialogue."""
        self.crashed = True
        self.error_note = note

    async def finish(self, *, stopped: bool) -> str:
        """Take down the turn's notes, say how it ended; returns the outcome."""
        if self.thinking_note is not None:
            await self.thinking_note.remove()
        if self.retry_note is not None:
            await self.retry_note.remove()
        if self.stream is not None:
            await self.stream.stop()
        if stopped:
            if self.message is not None:
                self.message.add_class("incomplete")
                await self.pane.mount(NoteMessage("(stopped — the partial reply is kept)", classes="warning"))
            else:
                again = "; Enter or Ctrl+R sends it again" if self.reader_text else ""
                await self.pane.mount(NoteMessage(f"(stopped before the tutor answered — your message is saved{again})", classes="warning"))
            return "stopped"
        if self.cut_note is not None and self.message is not None:
            # Without this the cut reply looks finished once the notification fades.
            self.message.add_class("incomplete")
            await self.pane.mount(NoteMessage(self.cut_note, classes="warning"))
        if self.error_note is not None:
            # A toast fades; without this the failed turn leaves a blank chat or an
            # unanswered message and no word of why.
            await self.pane.mount(NoteMessage(self.error_note, classes="warning"))
        return "error" if self.errored or self.crashed else "ok"
