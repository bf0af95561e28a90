"""Plain helpers behind the app's commands: history windows, export, clipboard.

Kept apart from the widgets so each is small and testable; nothing here draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tutor.engine.session import TutorSession


def session_usage(session: TutorSession) -> tuple[int, float]:
    """Tokens and cost so far, for the header (0 for a new or offline session)."""
    try:
        row = session.store.get_session(session.id)
    except Exception:  # noqa: BLE001 - the header is decoration; never fail opening over it
        return 0, 0.0
    return int(row.total_tokens), float(row.cost_usd)


THEME_KEY = "theme"


def saved_theme(session: TutorSession) -> str | None:
    """The theme the reader last chose (in any session), if the store has one."""
    try:
        return session.store.get_setting(THEME_KEY)
    except Exception:  # noqa: BLE001 - a preference; never fail opening over it
        return None


def save_theme(session: TutorSession, name: str) -> None:
    try:
        session.store.set_setting(THEME_KEY, name)
    except Exception:  # noqa: BLE001 - e.g. a read-only database: the theme still changes now
        pass


def recent_messages(session: TutorSession, window: int) -> list[Any]:
    """The newest ``window`` stored messages, oldest first (seq is 1.. per session)."""
    count = session.store.message_count(session.id)
    return session.store.messages(session.id, after_seq=max(0, count - window))


def first_seq(session: TutorSession) -> int:
    rows = session.store.messages(session.id, after_seq=0, limit=1)
    return rows[0].seq if rows else 1


def messages_before(session: TutorSession, seq: int, page: int) -> list[Any]:
    """Up to ``page`` messages just before ``seq``, oldest first."""
    start = max(0, seq - 1 - page)
    return session.store.messages(session.id, after_seq=start, limit=max(0, seq - 1 - start))


def row_widget(row: Any) -> Any:
    """The widget for a stored message (imported lazily: this module has no textual import)."""
    from tutor.app.widgets import NoteMessage, ReaderMessage, TutorMessage

    if row.role == "reader":
        return ReaderMessage(row.text, seq=row.seq)
    if row.role == "tutor":
        if not row.text:
            return None
        widget = TutorMessage(row.text, seq=row.seq)
        if not row.complete:
            widget.add_class("incomplete")
        return widget
    return NoteMessage(row.text, seq=row.seq)


def export_transcript(session: TutorSession, fmt: str) -> Path:
    """Ctrl+S: the same rule as ``tutor export`` without ``-o`` (``export.write_export``):
    ``tutor-<title>-<id8>.<ext>`` in the current folder. Returns the path, for the notice."""
    from tutor.export import write_export

    done = write_export(session.store, session.id, fmt=fmt)
    assert done.path is not None
    return done.path.resolve()


def copy_text(app: Any, text: str) -> str | None:
    """Copy via OSC 52 (works over SSH) and, when available, pyperclip too.

    Returns how it was copied ("terminal", "system clipboard", or both), or None when
    nothing could take it.
    """
    ways: list[str] = []
    try:
        app.copy_to_clipboard(text)
        if getattr(app, "_driver", None) is not None:
            ways.append("terminal")
    except Exception:  # noqa: BLE001
        pass
    try:
        import pyperclip  # optional

        pyperclip.copy(text)
        ways.append("system clipboard")
    except Exception:  # noqa: BLE001 - missing module or no clipboard mechanism
        pass
    return " and ".join(ways) or None

