"""Saving a streaming reply as it arrives.

The reply's row exists before its first words are on screen, and each flush appends only
what arrived since the last one (``store.append_message``), so a long reply costs the same
per chunk however long it is (issue 15.2, bench/bench_stream.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tutor.engine.events import TokenUsage

if TYPE_CHECKING:
    from tutor.store import Store

FLUSH_SECONDS = 0.2  # a streaming reply is written to the store at least this often ...
FLUSH_CHARS = 400  # ... or after this many new characters, and always at the end


class ReplyWriter:
    def __init__(self, store: Store, session_id: str):
        self.store = store
        self.session_id = session_id
        self.message_id: int | None = None
        self._raw: list[str] = []
        self._visible: list[str] = []
        self._raw_i = 0  # where the last flush got to in _raw / _visible
        self._text_i = 0
        self._len = 0
        self._flushed_len = 0
        self._flushed_at = time.monotonic()

    def add_raw(self, piece: str) -> None:
        self._raw.append(piece)
        self._len += len(piece)

    def add_visible(self, text: str) -> None:
        self._visible.append(text)

    def due(self) -> bool:
        """Time to save: the first piece, or enough time or text since the last save."""
        return (
            self.message_id is None
            or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
            or self._len - self._flushed_len >= FLUSH_CHARS
        )

    def flush(self, *, complete: bool = False, usage: TokenUsage | None = None, force: bool = False, final: bool = False) -> None:
        """Save the tail since the last flush. ``force`` makes the row even for an empty reply;
        ``final`` also records whether the reply is complete."""
        raw = "".join(self._raw[self._raw_i :])
        text = "".join(self._visible[self._text_i :])
        if self.message_id is None:
            if not raw and not force:
                return
            self.message_id = self.store.add_message(self.session_id, "tutor", text, raw=raw, complete=complete, usage=usage)
        else:
            self.store.append_message(self.message_id, text, raw, complete=complete if final else None, usage=usage)
        self._raw_i = len(self._raw)
        self._text_i = len(self._visible)
        self._flushed_at = time.monotonic()
        self._flushed_len = self._len
