"""Session queries: explainers, sessions, reader states, feedback, summaries, search."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tutor.errors import StoreError
from tutor.store.connection import (
    FEEDBACK_SOURCES,
    STATUSES,
    TRANSCRIPT_FORMAT,
    TRANSCRIPT_VERSION,
    _damaged_row,
    _utf8,
    normalise_path,
    now_iso,
    section_hash,
)
from tutor.store.messages import MessageQueries
from tutor.store.rows import (
    SNIPPET_END,
    SNIPPET_START,
    ConceptStateRow,
    ExplainerRow,
    FeedbackRow,
    SearchHit,
    SessionRow,
    StateLogRow,
    SummaryRow,
)

if TYPE_CHECKING:
    from tutor.engine.events import TokenUsage

_SESSION_COLS = (
    "s.id, s.explainer_hash, s.explainer_path, coalesce(e.title, '') AS explainer_title, s.mode, "
    "s.started, s.updated, s.status, s.input_tokens, s.output_tokens, s.cache_write_tokens, "
    "s.cache_read_tokens, s.cost_usd, s.message_count, s.turn_count"
)
_HEX = re.compile(r"^[0-9a-f]+$")


class SessionQueries(MessageQueries):
    # -- explainers -----------------------------------------------------------------------

    def upsert_explainer(self, explainer: Any) -> str:
        """Record the explainer by content hash (a changed file is a new row); returns the hash."""
        h = explainer.content_hash
        now = now_iso()
        concepts = json.dumps(
            [{"id": c.id, "title": c.title} for c in getattr(explainer, "concepts", [])],
            ensure_ascii=False,
        )
        with self._write() as c:
            c.execute(
                """
                INSERT INTO explainers (hash, path, title, format_version, plain, concepts, first_seen, last_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (hash) DO UPDATE SET path = excluded.path, title = excluded.title,
                    last_seen = excluded.last_seen
                """,
                (
                    h,
                    normalise_path(explainer.path),
                    explainer.title,
                    int(getattr(explainer, "format_version", 1)),
                    int(bool(getattr(explainer, "plain", False))),
                    concepts,
                    now,
                    now,
                ),
            )
            # m003: each concept's section hash for this version, so feedback given on a
            # section can later be flagged when that section has been edited.
            c.executemany(
                "INSERT OR IGNORE INTO explainer_sections (explainer_hash, concept_id, title, section_hash)"
                " VALUES (?, ?, ?, ?)",
                [
                    (h, con.id, con.title, section_hash(con.section.text))
                    for con in getattr(explainer, "concepts", [])
                    if getattr(con, "section", None) is not None
                ],
            )
        return h

    def get_explainer(self, explainer_hash: str) -> ExplainerRow | None:
        row = self._one("SELECT * FROM explainers WHERE hash = ?", (explainer_hash,))
        if row is None:
            return None
        try:
            row["concepts"] = json.loads(row["concepts"] or "[]")
        except (TypeError, ValueError) as e:
            raise _damaged_row(self.path, "explainers", row, e) from None
        return self._rows(ExplainerRow, [row], "explainers")[0]

    # -- sessions -------------------------------------------------------------------------

    def create_session(self, explainer_hash: str, explainer_path: str | Path, mode: str) -> str:
        sid = uuid.uuid4().hex
        now = now_iso()
        with self._write() as c:
            known = c.execute("SELECT 1 FROM explainers WHERE hash = ?", (explainer_hash,)).fetchone()
            if not known:
                raise StoreError(f"unknown explainer {explainer_hash[:12]}: call upsert_explainer first")
            c.execute(
                "INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'active')",
                (sid, explainer_hash, normalise_path(explainer_path), mode, now, now),
            )
        return sid

    def get_session(self, session_id: str) -> SessionRow:
        row = self._one(
            f"SELECT {_SESSION_COLS} FROM sessions s LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            " WHERE s.id = ?",
            (session_id,),
        )
        if row is None:
            raise StoreError(f"no session {session_id!r}", hint="List sessions with `tutor sessions`.")
        return self._rows(SessionRow, [row], "sessions")[0]

    def latest_open_session(self, explainer_path: str | Path) -> SessionRow | None:
        row = self._one(
            f"SELECT {_SESSION_COLS} FROM sessions s LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            " WHERE s.explainer_path = ? AND s.status = 'active' ORDER BY s.updated DESC, s.rowid DESC LIMIT 1",
            (normalise_path(explainer_path),),
        )
        return self._rows(SessionRow, [row], "sessions")[0] if row else None

    def latest_session(self) -> SessionRow | None:
        """The most recently active session of any explainer (``tutor export --last``)."""
        row = self._one(
            f"SELECT {_SESSION_COLS} FROM sessions s LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            " ORDER BY s.updated DESC, s.rowid DESC LIMIT 1"
        )
        return self._rows(SessionRow, [row], "sessions")[0] if row else None

    def resolve_session_id(self, prefix: str) -> str:
        """A full id from a unique prefix (as shown by ``tutor sessions``)."""
        p = prefix.strip().lower()
        if not p:
            raise StoreError("no session id given", hint="List sessions with `tutor sessions`.")
        if not _HEX.match(p) or len(p) > 32:
            raise StoreError(
                f"{prefix!r} is not a session id (ids are hexadecimal, like 3f9a2c1e)",
                hint="List sessions with `tutor sessions`.",
            )
        rows = self._query(
            "SELECT id FROM sessions WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (p, p + "g")
        )
        if not rows:
            raise StoreError(f"no session matches {prefix!r}", hint="List sessions with `tutor sessions`.")
        if len(rows) > 1:
            shown = ", ".join(r["id"][: max(len(p) + 4, 12)] for r in rows[:5])
            raise StoreError(
                f"session id {prefix!r} is ambiguous: it matches {shown}{', ...' if len(rows) > 5 else ''}",
                hint="Give more characters of the id.",
            )
        return rows[0]["id"]

    def _session_filter(
        self, explainer_path: str | Path | None, explainer_hash: str | None, status: str | None
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if explainer_path is not None and explainer_hash is not None:
            where.append("(s.explainer_path = ? OR s.explainer_hash = ?)")
            params += [normalise_path(explainer_path), explainer_hash]
        elif explainer_path is not None:
            where.append("s.explainer_path = ?")
            params.append(normalise_path(explainer_path))
        elif explainer_hash is not None:
            where.append("s.explainer_hash = ?")
            params.append(explainer_hash)
        if status is not None:
            where.append("s.status = ?")
            params.append(status)
        return ((" WHERE " + " AND ".join(where)) if where else ""), params

    def list_sessions(
        self,
        *,
        explainer_path: str | Path | None = None,
        explainer_hash: str | None = None,
        status: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[SessionRow]:
        """Newest activity first. ``explainer_path`` and ``explainer_hash`` together match either."""
        where, params = self._session_filter(explainer_path, explainer_hash, status)
        sql = (
            f"SELECT {_SESSION_COLS} FROM sessions s LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            f"{where} ORDER BY s.updated DESC, s.rowid DESC"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return self._rows(SessionRow, self._query(sql, params), "sessions", skip=True)

    def count_sessions(
        self,
        *,
        explainer_path: str | Path | None = None,
        explainer_hash: str | None = None,
        status: str | None = None,
    ) -> int:
        where, params = self._session_filter(explainer_path, explainer_hash, status)
        row = self._one(f"SELECT count(*) AS n FROM sessions s{where}", params)
        return int(row["n"]) if row else 0

    def set_status(self, session_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        with self._write() as c:
            c.execute("UPDATE sessions SET status = ? WHERE id = ?", (status, session_id))

    def add_usage(self, session_id: str, usage: TokenUsage) -> SessionRow:
        """Add one model call's usage to the session totals; returns the updated session."""
        u = usage
        with self._write() as c:
            c.execute(
                "UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,"
                " cache_write_tokens = cache_write_tokens + ?, cache_read_tokens = cache_read_tokens + ?,"
                " cost_usd = cost_usd + ? WHERE id = ?",
                (int(u.input_tokens), int(u.output_tokens), int(u.cache_creation_input_tokens),
                 int(u.cache_read_input_tokens), float(u.cost_usd), session_id),
            )
        return self.get_session(session_id)

    def delete_sessions(self, ids: Iterable[str]) -> int:
        """Delete sessions with their messages, states, feedback and summaries. Returns how many."""
        ids = list(dict.fromkeys(ids))
        n = 0
        with self._write() as c:
            for sid in ids:
                n += c.execute("DELETE FROM sessions WHERE id = ?", (sid,)).rowcount
        return n

    # -- reader model ---------------------------------------------------------------------

    def set_concept_state(
        self,
        session_id: str,
        concept_id: str,
        state: str,
        evidence: str = "",
        message_seq: int | None = None,
    ) -> None:
        now = now_iso()
        with self._write() as c:
            c.execute(
                "INSERT INTO concept_states (session_id, concept_id, state, evidence, message_seq, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, concept_id) DO UPDATE SET"
                " state = excluded.state, evidence = excluded.evidence,"
                " message_seq = excluded.message_seq, updated = excluded.updated",
                (session_id, concept_id, state, _utf8(evidence or ""), message_seq, now),
            )
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))

    def state_log(self, session_id: str) -> list[StateLogRow]:
        """Every state change of the session, oldest first (concept_state_log, m003)."""
        rows = self._query(
            "SELECT concept_id, state, created FROM concept_state_log WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return self._rows(StateLogRow, rows, "concept_state_log")

    def concept_states(self, session_id: str) -> dict[str, ConceptStateRow]:
        rows = self._query(
            "SELECT * FROM concept_states WHERE session_id = ? ORDER BY rowid", (session_id,)
        )
        return {r.concept_id: r for r in self._rows(ConceptStateRow, rows, "concept_states")}

    # -- feedback -------------------------------------------------------------------------

    def add_feedback(
        self,
        session_id: str | None,
        explainer_hash: str,
        concept_id: str | None,
        text: str,
        source: str,
    ) -> int:
        """Store a note for the author; the same note again in the same session (same concept,
        source and ``text.note_key``) adds one to that row's ``count`` instead (m006). Returns
        the row id."""
        if source not in FEEDBACK_SOURCES:
            raise ValueError(f"source must be one of {FEEDBACK_SOURCES}, not {source!r}")
        from tutor.text import note_key

        text = _utf8(text) or ""
        key = note_key(text)
        with self._write() as c:
            if session_id is not None:
                for fid, old in c.execute(
                    "SELECT id, text FROM feedback WHERE session_id = ? AND concept_id IS ? AND source = ? ORDER BY id",
                    (session_id, concept_id, source),
                ).fetchall():
                    if note_key(old) == key:
                        c.execute("UPDATE feedback SET count = count + 1 WHERE id = ?", (fid,))
                        return int(fid)
            cur = c.execute(
                "INSERT INTO feedback (session_id, explainer_hash, concept_id, text, source, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, explainer_hash, concept_id, text, source, now_iso()),
            )
            return int(cur.lastrowid or 0)

    def feedback(
        self,
        explainer_hash: str | None = None,
        explainer_path: str | Path | None = None,
        session_id: str | None = None,
    ) -> list[FeedbackRow]:
        """Feedback rows, oldest first. ``explainer_path`` matches every version of that file."""
        where: list[str] = []
        params: list[Any] = []
        if explainer_hash is not None:
            where.append("f.explainer_hash = ?")
            params.append(explainer_hash)
        if explainer_path is not None:
            where.append("f.explainer_hash IN (SELECT hash FROM explainers WHERE path = ?"
                         " UNION SELECT explainer_hash FROM sessions WHERE explainer_path = ?)")
            p = normalise_path(explainer_path)
            params += [p, p]
        if session_id is not None:
            where.append("f.session_id = ?")
            params.append(session_id)
        sql = "SELECT f.* FROM feedback f" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY f.created, f.id"
        return self._rows(FeedbackRow, self._query(sql, params), "feedback")

    # -- summaries ------------------------------------------------------------------------

    def save_summary(self, session_id: str, upto_seq: int, text: str) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO summaries (session_id, upto_seq, text, created) VALUES (?, ?, ?, ?)",
                (session_id, int(upto_seq), _utf8(text), now_iso()),
            )
            return int(cur.lastrowid or 0)

    def latest_summary(self, session_id: str) -> SummaryRow | None:
        row = self._one(
            "SELECT * FROM summaries WHERE session_id = ? ORDER BY upto_seq DESC, id DESC LIMIT 1",
            (session_id,),
        )
        return self._rows(SummaryRow, [row], "summaries")[0] if row else None

    def summaries(self, session_id: str) -> list[SummaryRow]:
        rows = self._query("SELECT * FROM summaries WHERE session_id = ? ORDER BY upto_seq, id", (session_id,))
        return self._rows(SummaryRow, rows, "summaries")

    # -- search ---------------------------------------------------------------------------

    def search(
        self, query: str, limit: int = 50, *, session_id: str | None = None, order: str = "newest"
    ) -> list[SearchHit]:
        """Full-text search over message text. Every word of ``query`` must occur; FTS
        syntax in the query is treated as plain words (a trailing ``*`` keeps prefix search).

        ``order="newest"`` (default) walks the index backwards by rowid and stops after
        ``limit`` hits, so a word found in half a million messages costs milliseconds;
        ``order="rank"`` sorts by bm25 relevance, which must score every match first."""
        if order not in ("newest", "rank"):
            raise ValueError(f"order must be 'newest' or 'rank', not {order!r}")
        match = fts_query(_utf8(query) or "")
        if match is None:
            return []
        sql = (
            "SELECT m.session_id, coalesce(e.title, '') AS explainer_title, m.id AS message_id, m.seq,"
            " m.role, m.created,"
            f" snippet(messages_fts, 0, '{SNIPPET_START}', '{SNIPPET_END}', '…', 12) AS snippet"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN sessions s ON s.id = m.session_id LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            " WHERE messages_fts MATCH ?"
        )
        params: list[Any] = [match]
        if session_id is not None:
            sql += " AND m.session_id = ?"
            params.append(session_id)
        sql += " ORDER BY rank LIMIT ?" if order == "rank" else " ORDER BY messages_fts.rowid DESC LIMIT ?"
        params.append(int(limit))
        return self._rows(SearchHit, self._query(sql, params), "messages", skip=True)

    # -- export ---------------------------------------------------------------------------

    def session_dump(self, session_id: str) -> dict[str, Any]:
        """Everything about one session, as plain JSON-ready data (shape: docs/database.md)."""
        with self._lock:
            session = self.get_session(session_id)
            explainer = self.get_explainer(session.explainer_hash)
            return {
                "format": TRANSCRIPT_FORMAT,
                "version": TRANSCRIPT_VERSION,
                "exported_at": now_iso(),
                "session": session.model_dump(),
                "explainer": explainer.model_dump() if explainer else None,
                "messages": [m.model_dump() for m in self.messages(session_id)],
                "concept_states": [s.model_dump() for s in self.concept_states(session_id).values()],
                "state_log": [s.model_dump() for s in self.state_log(session_id)],
                "feedback": [f.model_dump() for f in self.feedback(session_id=session_id)],
                "summaries": [s.model_dump() for s in self.summaries(session_id)],
            }

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO settings (key, value, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                (key, _utf8(value), now_iso()),
            )

    def integrity_check(self) -> str:
        row = self.conn.execute("PRAGMA integrity_check").fetchone()
        return str(row[0])



_FTS_TERM = re.compile(r"[^\s\"]+")


def fts_query(query: str) -> str | None:
    """Turn free text into a safe FTS5 query: each word double-quoted (so ``AND``, ``-``,
    ``:``, ``(`` and quotes mean nothing special), all words required."""
    terms = []
    query = re.sub(r"[\x00-\x1f\x7f\"]", " ", query)
    for raw in _FTS_TERM.findall(query):
        prefix = raw.endswith("*")
        word = raw.rstrip("*")
        if not word:
            continue
        terms.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(terms) if terms else None
