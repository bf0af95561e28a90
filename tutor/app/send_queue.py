"""The message a reader sends while a reply streams: one waits, as in a chat.

Every message is stored as pending before it is shown (issue 15.3), so a kill cannot lose a
line the reader saw; it becomes a message when sent, goes back to the input after Esc or an
error, and is handed to the shell on quit. More than one can wait only after a crash
(``show_unsent``): they are sent in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tutor.app.widgets import NoteMessage, ReaderMessage
from tutor.errors import TutorError
from tutor.text import one_line

if TYPE_CHECKING:
    from tutor.app.app import TutorApp


class SendQueue:
    def __init__(self, app: TutorApp):
        self.app = app
        self.queued: ReaderMessage | None = None  # sent when the streaming reply ends well
        self.backlog: list[ReaderMessage] = []  # more unsent messages found on resume, queued in turn

    def keep(self, text: str) -> int | None:
        """Store the message before it is shown; None if the store refused."""
        try:
            return self.app.session.keep_pending(text)
        except TutorError as exc:
            self.app.notify(one_line(f"Not sent: {exc}", 300), title="Not saved", severity="error", timeout=15, markup=False)
            return None

    def drop(self, widget: ReaderMessage) -> None:
        """The message goes back to the reader (input or terminal): no longer pending."""
        if widget.pending_id is not None:
            try:
                self.app.session.drop_pending(widget.pending_id)
            except TutorError as exc:
                self.app.notify(one_line(str(exc), 300), severity="error", markup=False)
            widget.pending_id = None

    async def add(self, text: str) -> None:
        """Queue one message behind the streaming reply (the caller checked none waits)."""
        pid = self.keep(text)  # stored before it is shown: a kill cannot lose it
        if pid is None:
            return
        self.app.input.clear()
        self.queued = ReaderMessage(text, queued=True, pending_id=pid)
        await self.app.pane.mount(self.queued)

    async def show_unsent(self) -> None:
        """Messages the reader saw on screen last time but that were never sent (the app was
        killed while they were queued): shown again as queued, sent when the opening ends."""
        app = self.app
        try:
            rows = app.session.pending_messages()
        except TutorError as exc:
            app.notify(one_line(str(exc), 300), severity="error", markup=False)
            return
        if not rows:
            return
        widgets = [ReaderMessage(r.text, queued=True, pending_id=r.id) for r in rows]
        what = "message" if len(rows) == 1 else f"{len(rows)} messages"
        await app.pane.mount(NoteMessage(
            f"Not sent before tutor closed: your {what} below. Sending it now; Esc stops the reply "
            "and gives it back to the input.", classes="warning"))
        await app.pane.mount_all(widgets)
        self.queued, self.backlog = widgets[0], widgets[1:]

    async def release(self, outcome: str) -> None:
        """After a turn: send the queued message if it ended well; else hand it back."""
        app = self.app
        widget = self.queued
        if widget is None or app.busy:  # a turn the reader started first: it waits for that one
            return
        self.queued = self.backlog.pop(0) if self.backlog and outcome == "ok" else None
        if outcome == "ok":
            widget.set_queued(False)
            app.pane.anchor()
            text, pid = widget.text, widget.pending_id
            app.run_turn(lambda: app.session.reply(text, pending_id=pid), reader_text=text, echo=False)
            return
        taken = [widget, *self.backlog]
        self.backlog = []
        for w in taken:
            await w.remove()
            self.drop(w)  # back in the input: a draft again, no longer pending
        current = app.input.text
        app.input.text = "\n".join(w.text for w in taken) + ("\n" + current if current.strip() else "")
        app.input.move_cursor(app.input.document.end)
        why = "the reply was stopped" if outcome == "stopped" else "the reply failed"
        app.notify(f"Your queued message was not sent ({why}); it is back in the input.", markup=False)

    def take_all(self) -> str | None:
        """On quit: the waiting messages' text, for `tutor open` to print; no longer pending."""
        waiting = [w for w in (self.queued, *self.backlog) if w is not None]
        self.queued, self.backlog = None, []
        for w in waiting:
            self.drop(w)
        return "\n".join(w.text for w in waiting) or None
