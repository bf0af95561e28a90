"""The stored dialogue on screen: the last ``window`` messages at open, earlier ones a page
at a time as the reader scrolls up, so a session of thousands of messages opens at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tutor.app import actions
from tutor.app.widgets import ReaderMessage

if TYPE_CHECKING:
    from tutor.app.app import TutorApp

PAGE = 30  # messages mounted per scroll-up


class History:
    def __init__(self, app: TutorApp, window: int):
        self.app = app
        self.window = window
        self.oldest_seq: int | None = None  # seq of the oldest mounted stored message

    async def show_recent(self) -> str | None:
        """Mount the newest messages; returns the last complete reply (for copy)."""
        app, pane = self.app, self.app.pane
        rows = actions.recent_messages(app.session, self.window)
        widgets = [w for w in (actions.row_widget(r) for r in rows) if w is not None]
        if rows:
            self.oldest_seq = rows[0].seq
            pane.has_earlier = rows[0].seq > actions.first_seq(app.session)
        last = next((r.text for r in reversed(rows) if r.role == "tutor" and r.complete), None)
        if widgets:
            await pane.mount_all(widgets)
        if app.session.can_retry:
            # The last reader message never got a complete reply: same red bar as when it failed live.
            for widget in reversed(widgets):
                if isinstance(widget, ReaderMessage):
                    widget.add_class("unanswered")
                    break
        pane.scroll_end(animate=False, immediate=True)
        return last

    async def show_earlier(self) -> None:
        """Mount the page before the oldest shown message, keeping the reader's place."""
        app, pane = self.app, self.app.pane
        if not pane.has_earlier or self.oldest_seq is None:
            return
        rows = actions.messages_before(app.session, self.oldest_seq, PAGE)
        if not rows:
            pane.has_earlier = False
            return
        self.oldest_seq = rows[0].seq
        pane.has_earlier = rows[0].seq > actions.first_seq(app.session)
        widgets = [w for w in (actions.row_widget(r) for r in rows) if w is not None]
        first = pane.children[0] if pane.children else None
        before_height = pane.virtual_size.height
        await pane.mount_all(widgets, before=first) if first is not None else await pane.mount_all(widgets)

        def keep_place() -> None:
            pane.scroll_to(y=pane.virtual_size.height - before_height, animate=False, immediate=True)

        app.call_after_refresh(keep_place)
