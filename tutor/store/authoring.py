"""Authoring queries: the feedback report, feedback bundles and the state of ``tutor compile``.

Tables (m003_authors; docs/database.md): feedback (uid, session_key), explainer_sections,
concept_state_log, imported_stats, compiles, compile_questions, plus sessions/messages for
transcripts imported from a bundle (mode ``imported``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tutor.store.connection import normalise_path, now_iso
from tutor.store.rows import (
    AuthorFeedbackRow,
    CompileQuestionRow,
    CompileRow,
    ConceptStatRow,
    FeedbackOverviewRow,
    ImportCounts,
    ImportedStatRow,
    SectionRow,
    SessionRow,
)
from tutor.store.sessions import _SESSION_COLS, SessionQueries

IMPORTED_MODE = "imported"  # sessions.mode of a transcript that came in a bundle


def session_key(session_id: str) -> str:
    """An anonymous, stable name for a session: same session -> same key, nothing else."""
    return hashlib.sha256(f"tutor-session:{session_id}".encode()).hexdigest()[:32]


# What importing a bundle needs of its lines (tutor/authoring/bundles.py has the models).


class _Section(Protocol):
    @property
    def concept_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def section_hash(self) -> str: ...


class _Explainer(Protocol):
    @property
    def hash(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def sections(self) -> Sequence[_Section]: ...


class _Feedback(Protocol):
    @property
    def uid(self) -> str: ...
    @property
    def explainer_hash(self) -> str: ...
    @property
    def concept_id(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def created(self) -> str: ...
    @property
    def session_key(self) -> str | None: ...
    @property
    def count(self) -> int: ...


class _Stats(Protocol):
    @property
    def session_key(self) -> str: ...
    @property
    def explainer_hash(self) -> str: ...
    @property
    def concept_id(self) -> str: ...
    @property
    def shaky(self) -> bool: ...
    @property
    def explained(self) -> int: ...


class _Message(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def created(self) -> str: ...


class _Transcript(Protocol):
    @property
    def session_key(self) -> str: ...
    @property
    def explainer_hash(self) -> str: ...
    @property
    def started(self) -> str: ...
    @property
    def messages(self) -> Sequence[_Message]: ...


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class AuthoringQueries(SessionQueries):
    # -- versions of one explainer file ----------------------------------------------------

    def explainer_hashes(self, path: str | Path) -> list[str]:
        """Every version (content hash) of the file at ``path`` this database has seen."""
        p = normalise_path(path)
        rows = self._query(
            "SELECT hash FROM explainers WHERE path = ? UNION SELECT explainer_hash FROM sessions WHERE explainer_path = ?",
            (p, p),
        )
        return sorted({r["hash"] for r in rows})

    def latest_explainer_title(self, path: str | Path) -> str | None:
        """The title last recorded for ``path`` (its feedback is shown while the file does not load)."""
        row = self._one(
            "SELECT title FROM explainers WHERE path = ? ORDER BY last_seen DESC LIMIT 1", (normalise_path(path),)
        )
        return str(row["title"]) if row else None

    def explainer_titles(self, hashes: Sequence[str]) -> dict[str, str]:
        if not hashes:
            return {}
        rows = self._query(f"SELECT hash, title FROM explainers WHERE hash IN ({_marks(hashes)})", hashes)
        return {r["hash"]: r["title"] for r in rows}

    def known_explainers(self, hashes: Iterable[str]) -> set[str]:
        """Which of these versions this database has."""
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return set()
        rows = self._query(f"SELECT hash FROM explainers WHERE hash IN ({_marks(wanted)})", wanted)
        return {r["hash"] for r in rows}

    def explainer_paths(self) -> list[str]:
        """Every explainer path known here, most recently seen first."""
        return [r["path"] for r in self._query("SELECT path FROM explainers ORDER BY last_seen DESC")]

    def sections(self, hashes: Sequence[str]) -> list[SectionRow]:
        """The section fingerprints recorded for these versions (``upsert_explainer``, bundles)."""
        if not hashes:
            return []
        rows = self._query(
            "SELECT explainer_hash, concept_id, title, section_hash FROM explainer_sections"
            f" WHERE explainer_hash IN ({_marks(hashes)}) ORDER BY explainer_hash, rowid",
            hashes,
        )
        return self._rows(SectionRow, rows, "explainer_sections")

    # -- feedback and stats over versions ----------------------------------------------------

    def version_feedback(self, hashes: Sequence[str], *, newest_first: bool = False) -> list[AuthorFeedbackRow]:
        """Feedback on these versions, with the mode of the session it came from."""
        if not hashes:
            return []
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            "SELECT f.*, s.mode AS session_mode FROM feedback f LEFT JOIN sessions s ON s.id = f.session_id"
            f" WHERE f.explainer_hash IN ({_marks(hashes)}) ORDER BY f.created {order}, f.id {order}",
            hashes,
        )
        return self._rows(AuthorFeedbackRow, rows, "feedback")

    def local_session_ids(self, hashes: Sequence[str]) -> list[str]:
        """Sessions run here (not imported) on these versions."""
        if not hashes:
            return []
        rows = self._query(
            f"SELECT id FROM sessions WHERE explainer_hash IN ({_marks(hashes)}) AND mode != ?", [*hashes, IMPORTED_MODE]
        )
        return [r["id"] for r in rows]

    def concept_stats(self, hashes: Sequence[str]) -> list[ConceptStatRow]:
        """Per local session and concept: whether it was ever shaky, how often it was explained."""
        if not hashes:
            return []
        rows = self._query(
            "SELECT l.session_id, s.explainer_hash, l.concept_id, max(l.state = 'shaky') AS shaky,"
            " sum(l.state = 'explained') AS explained FROM concept_state_log l JOIN sessions s ON s.id = l.session_id"
            f" WHERE s.explainer_hash IN ({_marks(hashes)}) AND s.mode != ?"
            " GROUP BY l.session_id, l.concept_id ORDER BY l.session_id, min(l.id)",
            [*hashes, IMPORTED_MODE],
        )
        return self._rows(ConceptStatRow, rows, "concept_state_log")

    def imported_stats(self, hashes: Sequence[str]) -> list[ImportedStatRow]:
        if not hashes:
            return []
        rows = self._query(f"SELECT * FROM imported_stats WHERE explainer_hash IN ({_marks(hashes)})", hashes)
        return self._rows(ImportedStatRow, rows, "imported_stats")

    def feedback_overview(self) -> list[FeedbackOverviewRow]:
        """Every explainer with feedback: counts and the newest item, newest first."""
        rows = self._query(
            "SELECT e.path, e.title, count(*) AS items, sum(f.source = 'model') AS model,"
            " sum(f.source = 'reader') AS reader, max(f.created) AS newest"
            " FROM feedback f JOIN explainers e ON e.hash = f.explainer_hash"
            " GROUP BY e.path ORDER BY newest DESC"
        )
        return self._rows(FeedbackOverviewRow, rows, "feedback")

    def reader_texts(self, session_id: str) -> list[str]:
        """What the reader typed in a session, commands (``/skip``...) left out."""
        rows = self._query(
            "SELECT text FROM messages WHERE session_id = ? AND role = 'reader' AND (raw IS NULL OR raw NOT LIKE '/%')",
            (session_id,),
        )
        return [r["text"] for r in rows]

    def version_sessions(self, hashes: Sequence[str]) -> list[SessionRow]:
        """Every session on these versions, oldest first (transcripts for a bundle)."""
        if not hashes:
            return []
        rows = self._query(
            f"SELECT {_SESSION_COLS} FROM sessions s LEFT JOIN explainers e ON e.hash = s.explainer_hash"
            f" WHERE s.explainer_hash IN ({_marks(hashes)}) ORDER BY s.started",
            hashes,
        )
        return self._rows(SessionRow, rows, "sessions")

    # -- importing a bundle ------------------------------------------------------------------

    def import_bundle(
        self,
        target: str,
        explainers: Iterable[_Explainer],
        feedback: Iterable[_Feedback],
        stats: Iterable[_Stats],
        transcripts: Iterable[_Transcript],
    ) -> ImportCounts:
        """Merge a bundle's lines in one transaction; rows already here (same uid or key) are
        skipped, and a repeated note takes the larger count. ``target``: the explainer path."""
        now = now_iso()
        counts = ImportCounts()
        with self._write() as c:
            for ex in explainers:
                concepts = json.dumps([{"id": s.concept_id, "title": s.title} for s in ex.sections], ensure_ascii=False)
                c.execute(
                    "INSERT OR IGNORE INTO explainers (hash, path, title, format_version, plain, concepts, first_seen,"
                    " last_seen) VALUES (?, ?, ?, 1, 0, ?, ?, ?)",
                    (ex.hash, target, ex.title, concepts, now, now),
                )
                c.executemany(
                    "INSERT OR IGNORE INTO explainer_sections (explainer_hash, concept_id, title, section_hash)"
                    " VALUES (?, ?, ?, ?)",
                    [(ex.hash, s.concept_id, s.title, s.section_hash) for s in ex.sections],
                )
            hashes = {r[0] for r in c.execute("SELECT hash FROM explainers")}
            local_keys = {session_key(r[0]) for r in c.execute("SELECT id FROM sessions WHERE mode != ?", (IMPORTED_MODE,))}
            for fb in feedback:
                here = c.execute("SELECT count FROM feedback WHERE uid = ?", (fb.uid,)).fetchone()
                if here is None:
                    c.execute(
                        "INSERT INTO feedback (session_id, explainer_hash, concept_id, text, source, created, uid,"
                        " session_key, count) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (fb.explainer_hash, fb.concept_id, fb.text, fb.source, fb.created, fb.uid, fb.session_key, fb.count),
                    )
                    counts.feedback_added += 1
                else:  # the reader's session went on repeating the note since the last bundle
                    if fb.count > here[0]:
                        c.execute("UPDATE feedback SET count = ? WHERE uid = ?", (fb.count, fb.uid))
                    counts.feedback_skipped += 1
            for st in stats:
                if st.session_key in local_keys:  # our own sessions, exported and imported back
                    continue
                before = c.execute(
                    "SELECT 1 FROM imported_stats WHERE session_key = ? AND explainer_hash = ? AND concept_id = ?",
                    (st.session_key, st.explainer_hash, st.concept_id),
                ).fetchone()
                c.execute(
                    "INSERT INTO imported_stats (session_key, explainer_hash, concept_id, shaky, explained, imported)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_key, explainer_hash, concept_id) DO UPDATE SET"
                    " shaky = max(shaky, excluded.shaky), explained = max(explained, excluded.explained)",
                    (st.session_key, st.explainer_hash, st.concept_id, int(st.shaky), st.explained, now),
                )
                counts.stats_added += before is None
            for tr in transcripts:
                if tr.explainer_hash not in hashes or tr.session_key in local_keys:
                    continue
                if c.execute("SELECT 1 FROM sessions WHERE id = ?", (tr.session_key,)).fetchone():
                    continue
                last = tr.messages[-1].created if tr.messages else tr.started
                c.execute(
                    "INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'finished')",
                    (tr.session_key, tr.explainer_hash, target, IMPORTED_MODE, tr.started, last),
                )
                c.executemany(
                    "INSERT INTO messages (session_id, seq, role, text, created, complete) VALUES (?, ?, ?, ?, ?, 1)",
                    [(tr.session_key, i + 1, m.role, m.text, m.created) for i, m in enumerate(tr.messages)],
                )
                counts.transcripts_added += 1
        return counts

    # -- compile state (tutor compile --resume) ------------------------------------------------

    def create_compile(self, output: str | Path, notes_hash: str, notes: Sequence[str], model: str) -> CompileRow:
        now = now_iso()
        row = CompileRow(
            id=uuid.uuid4().hex, output=normalise_path(output), notes_hash=notes_hash, notes=list(notes), model=model,
            status="outline", created=now, updated=now,
        )
        with self._write() as c:
            c.execute(
                "INSERT INTO compiles (id, output, notes_hash, notes, model, status, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.output, notes_hash, json.dumps(row.notes), model, row.status, now, now),
            )
        return row

    def unfinished_compile(self, output: str | Path) -> CompileRow | None:
        """The newest compile of ``output`` that did not finish, with its questions."""
        row = self._one(
            "SELECT * FROM compiles WHERE output = ? AND status != 'done' ORDER BY updated DESC, rowid DESC LIMIT 1",
            (normalise_path(output),),
        )
        if row is None:
            return None
        qs = self._query(
            "SELECT seq, question, answer, status, kind, round, about, notes_say, answer_says FROM compile_questions"
            " WHERE compile_id = ? ORDER BY seq",
            (row["id"],),
        )
        row["feedback"] = [r["text"] for r in self._query(
            "SELECT text FROM compile_feedback WHERE compile_id = ? ORDER BY seq", (row["id"],)
        )]
        try:
            row["notes"] = json.loads(row["notes"] or "[]")
        except (TypeError, ValueError):
            row["notes"] = []
        row["questions"] = self._rows(CompileQuestionRow, qs, "compile_questions")
        return self._rows(CompileRow, [row], "compiles")[0]

    def save_compile_outline(self, compile_id: str, outline: str, questions: Sequence[str], status: str) -> None:
        """The outline and its questions (all pending), replacing any from before."""
        now = now_iso()
        with self._write() as c:
            c.execute("UPDATE compiles SET outline = ?, status = ?, updated = ? WHERE id = ?", (outline, status, now, compile_id))
            c.execute("DELETE FROM compile_questions WHERE compile_id = ?", (compile_id,))
            c.executemany(
                "INSERT INTO compile_questions (compile_id, seq, question, status, updated) VALUES (?, ?, ?, 'pending', ?)",
                [(compile_id, i + 1, q, now) for i, q in enumerate(questions)],
            )

    def add_compile_questions(self, compile_id: str, questions: Sequence[CompileQuestionRow]) -> None:
        """Follow-up questions (pending), after the ones already asked: their ``seq`` as given."""
        now = now_iso()
        with self._write() as c:
            c.executemany(
                "INSERT INTO compile_questions (compile_id, seq, question, status, kind, round, about, notes_say, answer_says,"
                " updated) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                [(compile_id, q.seq, q.question, q.kind, q.round, q.about, q.notes_say, q.answer_says, now) for q in questions],
            )
            c.execute("UPDATE compiles SET updated = ? WHERE id = ?", (now, compile_id))

    def add_compile_feedback(self, compile_id: str, step: str, notes: Sequence[str]) -> None:
        """The model's notes on the notes from one step (outline, follow_up, write), in order."""
        if not notes:
            return
        now = now_iso()
        with self._write() as c:
            (last,) = c.execute("SELECT COALESCE(MAX(seq), 0) FROM compile_feedback WHERE compile_id = ?", (compile_id,)).fetchone()
            c.executemany(
                "INSERT INTO compile_feedback (compile_id, seq, step, text, created) VALUES (?, ?, ?, ?, ?)",
                [(compile_id, last + i + 1, step, n, now) for i, n in enumerate(notes)],
            )

    def save_compile_answer(self, compile_id: str, seq: int, answer: str | None, status: str) -> None:
        """One answer, committed as soon as it is typed: an interrupted compile loses nothing."""
        now = now_iso()
        with self._write() as c:
            c.execute(
                "UPDATE compile_questions SET answer = ?, status = ?, updated = ? WHERE compile_id = ? AND seq = ?",
                (answer, status, now, compile_id, seq),
            )
            c.execute("UPDATE compiles SET updated = ? WHERE id = ?", (now, compile_id))

    def set_compile_status(self, compile_id: str, status: str) -> None:
        with self._write() as c:
            c.execute("UPDATE compiles SET status = ?, updated = ? WHERE id = ?", (status, now_iso(), compile_id))
