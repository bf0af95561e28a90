"""Message queries: the dialogue, a streaming reply saved part by part, pending lines."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tutor.errors import StoreError
from tutor.store.connection import ROLES, Connection, _utf8, now_iso
from tutor.store.rows import MessageRow, PendingRow

if TYPE_CHECKING:  # the engine's type; the store only reads its fields
    from tutor.engine.events import TokenUsage

_MESSAGE_COLS = (
    "id, session_id, seq, role, text, raw, created, complete, input_tokens, output_tokens, "
    "cache_creation_input_tokens, cache_read_input_tokens, cost_usd"
)
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
)

def _usage_values(usage: TokenUsage | None) -> dict[str, Any]:
    """The message columns of one call's usage (``TokenUsage``, the one usage type)."""
    if usage is None:
        return {}
    return {name: float(getattr(usage, name)) if name == "cost_usd" else int(getattr(usage, name)) for name in _USAGE_FIELDS}



class MessageQueries(Connection):
    def _opened(self) -> None:
        super()._opened()
        if self.conn.execute("SELECT 1 FROM message_parts LIMIT 1").fetchone():
            self.fold_unfinished()  # a reply cut by a kill: make its words searchable

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: str,
        text: str,
        raw: str | None = None,
        complete: bool = True,
        usage: TokenUsage | None = None,
        pending_id: int | None = None,
    ) -> int:
        """Append a message (next seq) and commit; returns its row id. ``pending_id``: the
        pending row (``add_pending``) this message is the sending of, removed in the same
        commit, so the reader's words are never in neither table nor in both."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        u = _usage_values(usage)
        now = now_iso()
        with self._write() as c:
            if not c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise StoreError(f"no session {session_id!r} (was it removed?)")
            seq = c.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
            cur = c.execute(
                "INSERT INTO messages (session_id, seq, role, text, raw, created, complete, input_tokens,"
                " output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cost_usd)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    seq,
                    role,
                    _utf8(text),
                    _utf8(raw),
                    now,
                    int(bool(complete)),
                    u.get("input_tokens", 0),
                    u.get("output_tokens", 0),
                    u.get("cache_creation_input_tokens", 0),
                    u.get("cache_read_input_tokens", 0),
                    u.get("cost_usd", 0.0),
                ),
            )
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
            if pending_id is not None:
                c.execute("DELETE FROM pending_messages WHERE id = ?", (pending_id,))
            return int(cur.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        raw: str | None = None,
        complete: bool | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        """Change a message in place (marked complete/incomplete, usage, or a new whole text).

        A ``text``/``raw`` given replaces the whole text, appended parts included; without
        them the parts appended so far are folded into the row (``append_message``)."""
        with self._write() as c:
            self._fold_parts(c, message_id, keep_parts=text is None and raw is None)
            self._set_message(c, message_id, text=text, raw=raw, complete=complete, usage=usage)

    def append_message(
        self,
        message_id: int,
        text: str,
        raw: str = "",
        *,
        complete: bool | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        """Append the new tail of a streaming reply: costs O(len(text)) however long the
        reply already is (issue 15.2). The tail goes to ``message_parts``, which every read
        joins back; the final call (``complete`` given) folds the parts into the row once, in
        the same commit, so the reply is indexed for search once, when it is whole."""
        with self._write() as c:
            if text or raw:
                if not c.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone():
                    raise StoreError(f"no message {message_id} (was its session removed?)")
                c.execute(
                    "INSERT INTO message_parts (message_id, text, raw) VALUES (?, ?, ?)",
                    (message_id, _utf8(text) or "", _utf8(raw) or ""),
                )
            if complete is not None:
                self._fold_parts(c, message_id, keep_parts=True)
            self._set_message(c, message_id, complete=complete, usage=usage)

    def _set_message(
        self,
        c: sqlite3.Connection,
        message_id: int,
        *,
        text: str | None = None,
        raw: str | None = None,
        complete: bool | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        sets: list[str] = []
        params: list[Any] = []
        if text is not None:
            sets.append("text = ?")
            params.append(_utf8(text))
        if raw is not None:
            sets.append("raw = ?")
            params.append(_utf8(raw))
        if complete is not None:
            sets.append("complete = ?")
            params.append(int(bool(complete)))
        for name, value in _usage_values(usage).items():
            sets.append(f"{name} = ?")
            params.append(value)
        if sets:
            found = c.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*params, message_id)).rowcount
        else:  # not "SET id = id": updating the parent key makes SQLite check every part row of it (O(parts))
            found = len(c.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchall())
        if found == 0:
            raise StoreError(f"no message {message_id} (was its session removed?)")
        c.execute(
            "UPDATE sessions SET updated = ? WHERE id = (SELECT session_id FROM messages WHERE id = ?)",
            (now_iso(), message_id),
        )

    def _fold_parts(self, c: sqlite3.Connection, message_id: int, *, keep_parts: bool) -> None:
        """Move a message's appended parts into its row (one UPDATE, one re-index), or
        discard them when a whole new text replaces them."""
        parts = c.execute(
            "SELECT text, raw FROM message_parts WHERE message_id = ? ORDER BY id", (message_id,)
        ).fetchall()
        if not parts:
            return
        if keep_parts:
            c.execute(
                "UPDATE messages SET text = text || ?, raw = coalesce(raw, '') || ? WHERE id = ?",
                ("".join(p[0] for p in parts), "".join(p[1] for p in parts), message_id),
            )
        c.execute("DELETE FROM message_parts WHERE message_id = ?", (message_id,))

    def fold_unfinished(self, session_id: str | None = None) -> int:
        """Fold the parts of replies that never got their final save (the process was
        killed mid-reply) into their rows, so search finds their words too. Safe while
        another process streams into one of them: parts are appended in order, so folding
        early keeps the text the same. Returns how many messages were folded."""
        sql = "SELECT DISTINCT p.message_id FROM message_parts p"
        params: tuple = ()
        if session_id is not None:
            sql += " JOIN messages m ON m.id = p.message_id WHERE m.session_id = ?"
            params = (session_id,)
        with self._lock:
            ids = [r[0] for r in self.conn.execute(sql, params).fetchall()]
        for mid in ids:
            with self._write() as c:
                self._fold_parts(c, mid, keep_parts=True)
        return len(ids)

    def _with_parts(self, rows: list[dict[str, Any]]) -> list[MessageRow]:
        """Rows as MessageRow, the appended parts of a streaming (incomplete) reply joined
        on, so every reader (reader model, memory, exports, the app) sees one whole text."""
        open_ids = [r["id"] for r in rows if not r["complete"]]
        if open_ids:
            extra: dict[int, tuple[list[str], list[str]]] = {}
            with self._lock:
                for i in range(0, len(open_ids), 500):
                    batch = open_ids[i : i + 500]
                    q = ",".join("?" * len(batch))
                    for mid, text, raw in self.conn.execute(
                        f"SELECT message_id, text, raw FROM message_parts WHERE message_id IN ({q}) ORDER BY id", batch
                    ):
                        t, r = extra.setdefault(mid, ([], []))
                        t.append(text)
                        r.append(raw)
            for row in rows:
                if row["id"] in extra:
                    t, r = extra[row["id"]]
                    row["text"] = row["text"] + "".join(t)
                    row["raw"] = (row["raw"] or "") + "".join(r)
        return self._rows(MessageRow, rows, "messages")

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: a row and its parts are read from the same snapshot, even
        while another process folds them."""
        with self._lock:
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def get_message(self, message_id: int) -> MessageRow | None:
        with self._snapshot():
            row = self._one(f"SELECT {_MESSAGE_COLS} FROM messages WHERE id = ?", (message_id,))
            return self._with_parts([row])[0] if row else None

    def messages(self, session_id: str, after_seq: int = 0, limit: int | None = None) -> list[MessageRow]:
        sql = f"SELECT {_MESSAGE_COLS} FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq"
        params: list[Any] = [session_id, int(after_seq)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._snapshot():
            return self._with_parts(list(self._query(sql, params)))

    # -- pending reader messages (m007) ------------------------------------------------------

    def add_pending(self, session_id: str, text: str) -> int:
        """Store a reader message the moment it is shown, before it is sent; returns its id."""
        with self._write() as c:
            if not c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise StoreError(f"no session {session_id!r} (was it removed?)")
            cur = c.execute(
                "INSERT INTO pending_messages (session_id, text, created) VALUES (?, ?, ?)",
                (session_id, _utf8(text), now_iso()),
            )
            return int(cur.lastrowid or 0)

    def pending(self, session_id: str) -> list[PendingRow]:
        rows = self._query("SELECT * FROM pending_messages WHERE session_id = ? ORDER BY id", (session_id,))
        return [PendingRow(**r) for r in rows]

    def drop_pending(self, pending_id: int) -> None:
        with self._write() as c:
            c.execute("DELETE FROM pending_messages WHERE id = ?", (pending_id,))

    def message_count(self, session_id: str) -> int:
        row = self._one("SELECT count(*) AS n FROM messages WHERE session_id = ?", (session_id,))
        return int(row["n"]) if row else 0

