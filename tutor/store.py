"""The session store: SQLite through sqlite-utils. Schema in docs/database.md.

CONTRACT (the engine, app and CLI use exactly these; implementations may add more):

    store = Store.open(path)                    # applies migrations, WAL, busy timeout
    h = store.upsert_explainer(explainer)       # -> content hash (str)
    sid = store.create_session(h, path, mode)   # -> session id (32 hex chars); mode "offline" | "claude:<model>"
    store.latest_open_session(explainer_path)   # -> SessionRow | None (status "active")
    store.get_session(sid) / store.resolve_session_id(prefix) / store.list_sessions(...)
    mid = store.add_message(sid, role, text, raw=None, complete=True, usage=None)  # role "reader"|"tutor"|"system"
    store.update_message(mid, text=..., raw=..., complete=..., usage=...)          # while a reply streams
    store.messages(sid, after_seq=0, limit=None) -> list[MessageRow]               # by seq ascending
    store.message_count(sid)
    store.set_concept_state(sid, concept_id, state, evidence, message_seq=None)
    store.concept_states(sid) -> dict[str, ConceptStateRow]
    store.add_feedback(sid, explainer_hash, concept_id, text, source)              # "model" | "reader"; a repeat counts
    store.feedback(explainer_hash=None, explainer_path=None) -> list[FeedbackRow]
    store.save_summary(sid, upto_seq, text) / store.latest_summary(sid) -> SummaryRow | None
    store.add_usage(sid, input_tokens, output_tokens, cache_write, cache_read, cost_usd)
    store.set_status(sid, "active" | "finished")
    store.search(query, limit=50)
    store.delete_sessions(ids)
    store.session_dump(sid) -> dict             # the JSON export shape

Every write commits before it returns: a reader's message is durable before any model
call starts.

Why these choices (details in docs/database.md):
- WAL + ``busy_timeout`` + ``BEGIN IMMEDIATE`` for every write: two tutor windows on one
  database queue their writes instead of failing with "database is locked"; readers never
  block writers.
- ``synchronous=FULL``: a commit is on disk when the call returns, so a kill or a power
  cut after the reader pressed Enter cannot lose their words.
- Usage given to ``add_message``/``update_message`` is recorded on that message only;
  session totals move only through ``add_usage`` (so a turn is never counted twice).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:  # sqlite-utils is imported only when a migration has to run
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

from tutor.errors import StoreError

BUSY_TIMEOUT_MS = 5000
ROLES = ("reader", "tutor", "system")
STATUSES = ("active", "finished")
FEEDBACK_SOURCES = ("model", "reader", "rules")  # rules: the tutor on its own instructions, not the explainer
TRANSCRIPT_FORMAT = "tutor-transcript"
TRANSCRIPT_VERSION = 1


def now_iso() -> str:
    """UTC timestamps as ISO 8601 text with microseconds: sortable as plain strings."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def normalise_path(path: str | Path) -> str:
    """Sessions are found again by explainer path, so store one absolute spelling of it."""
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return str(Path(path).absolute())


# ---------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------


class _Row(BaseModel):
    """Rows are built lazily: pydantic compiles a validator on first use, not at import,
    so a CLI command pays only for the row types it touches."""

    model_config = ConfigDict(defer_build=True)


class ExplainerRow(_Row):
    hash: str
    path: str
    title: str
    format_version: int
    plain: bool = False
    concepts: list[dict[str, str]] = []
    first_seen: str
    last_seen: str


class SessionRow(_Row):
    id: str
    explainer_hash: str
    explainer_path: str
    explainer_title: str = ""  # from the explainers table
    mode: str
    started: str
    updated: str  # last activity
    status: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    message_count: int = 0
    turn_count: int = 0  # reader messages

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens


class MessageRow(_Row):
    id: int
    session_id: str
    seq: int
    role: str
    text: str  # what the reader saw (tags filtered out)
    raw: str | None = None  # the model's raw text, tags included
    created: str
    complete: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0


class ConceptStateRow(_Row):
    session_id: str
    concept_id: str
    state: str
    evidence: str = ""
    message_seq: int | None = None
    updated: str


class FeedbackRow(_Row):
    id: int
    session_id: str | None
    explainer_hash: str
    concept_id: str | None = None
    text: str
    source: str
    created: str
    uid: str | None = None  # stable id (m003), so an imported bundle never duplicates a row
    count: int = 1  # times this note was given in its session (m006)


class StateLogRow(_Row):
    concept_id: str
    state: str
    created: str


class SummaryRow(_Row):
    id: int
    session_id: str
    upto_seq: int
    text: str
    created: str


class PendingRow(_Row):
    """A reader message shown on screen but not sent yet (m007)."""

    id: int
    session_id: str
    text: str
    created: str


class SearchHit(_Row):
    session_id: str
    explainer_title: str
    message_id: int
    seq: int
    role: str
    created: str
    snippet: str  # matches wrapped in SNIPPET_START / SNIPPET_END


SNIPPET_START = "\x02"
SNIPPET_END = "\x03"


# ---------------------------------------------------------------------------------------
# Migrations: append only. Never edit a step that has shipped; add a new one.
# ---------------------------------------------------------------------------------------

MIGRATION_SET = "tutor"
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' table: (id, migration_set, name, applied_at)


class MigrationList:
    """The ordered migration steps, declared with ``@migrations(name=...)`` like
    sqlite-utils' ``Migrations``, which runs them. Kept as a plain list so that opening
    an up-to-date database (every CLI command) does not pay ~0.15 s to import sqlite-utils;
    any other attribute (``apply``, ``pending``, ``applied``) goes to the real Migrations."""

    def __init__(self, name: str):
        self.name = name
        self.steps: list[tuple[str, Callable[..., None], bool]] = []
        self._real: Migrations | None = None

    def __call__(self, *, name: str | None = None, transactional: bool = True) -> Callable[[Any], Any]:
        def inner(fn: Callable[..., None]) -> Callable[..., None]:
            step = name or fn.__name__
            if any(n == step for n, _, _ in self.steps):
                raise ValueError(f"migration {step!r} is declared twice")
            self.steps.append((step, fn, transactional))
            self._real = None
            return fn

        return inner

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.steps]

    def real(self) -> Migrations:
        if self._real is None:
            from sqlite_utils.migrations import Migrations

            real = Migrations(self.name)
            for step, fn, transactional in self.steps:
                real(name=step, transactional=transactional)(fn)
            self._real = real
        return self._real

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.real(), attr)


migrations = MigrationList(MIGRATION_SET)


@migrations(name="m001_initial")
def m001_initial(db: Database) -> None:
    """The first schema: explainers, sessions, messages, states, feedback, summaries."""
    db.executescript(
        """
        CREATE TABLE explainers (
            hash TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            title TEXT NOT NULL,
            format_version INTEGER NOT NULL,
            plain INTEGER NOT NULL DEFAULT 0,
            concepts TEXT NOT NULL DEFAULT '[]',
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            explainer_hash TEXT NOT NULL REFERENCES explainers(hash),
            explainer_path TEXT NOT NULL,
            mode TEXT NOT NULL,
            started TEXT NOT NULL,
            updated TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX sessions_by_path ON sessions (explainer_path, status, updated);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            text TEXT NOT NULL,
            raw TEXT,
            created TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            complete INTEGER NOT NULL DEFAULT 1,
            UNIQUE (session_id, seq)
        );
        CREATE TABLE concept_states (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            concept_id TEXT NOT NULL,
            state TEXT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '',
            message_seq INTEGER,
            updated TEXT NOT NULL,
            PRIMARY KEY (session_id, concept_id)
        );
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
            explainer_hash TEXT NOT NULL,
            concept_id TEXT,
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX feedback_by_explainer ON feedback (explainer_hash);
        CREATE INDEX feedback_by_session ON feedback (session_id);
        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            upto_seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX summaries_by_session ON summaries (session_id, upto_seq);
        """
    )
    _set_user_version(db, 1)


@migrations(name="m002_cache_usage_counts_fts")
def m002_cache_usage_counts_fts(db: Database) -> None:
    """Prompt-cache token fields, denormalised counts for a fast list, full-text search."""
    db.executescript(
        """
        ALTER TABLE sessions ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN turn_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN cache_read_input_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;

        UPDATE sessions SET
            message_count = (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id),
            turn_count = (SELECT count(*) FROM messages m
                          WHERE m.session_id = sessions.id AND m.role = 'reader');

        CREATE INDEX sessions_by_updated ON sessions (updated);

        CREATE TRIGGER messages_count_ai AFTER INSERT ON messages BEGIN
            UPDATE sessions SET message_count = message_count + 1,
                turn_count = turn_count + (NEW.role = 'reader')
            WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER messages_count_ad AFTER DELETE ON messages BEGIN
            UPDATE sessions SET message_count = message_count - 1,
                turn_count = turn_count - (OLD.role = 'reader')
            WHERE id = OLD.session_id;
        END;

        CREATE VIRTUAL TABLE messages_fts USING fts5(
            text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, text) VALUES (NEW.id, NEW.text);
        END;
        CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
        END;
        CREATE TRIGGER messages_fts_au AFTER UPDATE OF text ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
            INSERT INTO messages_fts(rowid, text) VALUES (NEW.id, NEW.text);
        END;
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
        """
    )
    _set_user_version(db, 2)


@migrations(name="m003_authors")
def m003_authors(db: Database) -> None:
    """The author side (tutor/feedback.py, tutor/compile.py; docs/authors.md).

    A stable ``uid`` per feedback row so importing a bundle twice adds nothing; section
    hashes per explainer version to flag feedback on sections edited since; a log of
    concept-state changes (filled by triggers) for "explained twice" stats; imported
    anonymous stats; the Q&A of ``tutor compile`` so an interrupted compile resumes.
    """
    db.executescript(
        """
        ALTER TABLE feedback ADD COLUMN uid TEXT;
        ALTER TABLE feedback ADD COLUMN session_key TEXT;
        UPDATE feedback SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
        CREATE UNIQUE INDEX feedback_by_uid ON feedback (uid);
        CREATE TRIGGER feedback_uid_ai AFTER INSERT ON feedback WHEN NEW.uid IS NULL BEGIN
            UPDATE feedback SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id;
        END;

        CREATE TABLE explainer_sections (
            explainer_hash TEXT NOT NULL,
            concept_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            section_hash TEXT NOT NULL,
            PRIMARY KEY (explainer_hash, concept_id)
        );

        CREATE TABLE concept_state_log (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            concept_id TEXT NOT NULL,
            state TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX concept_state_log_by_session ON concept_state_log (session_id, concept_id);
        INSERT INTO concept_state_log (session_id, concept_id, state, created)
            SELECT session_id, concept_id, state, updated FROM concept_states;
        CREATE TRIGGER concept_state_log_ai AFTER INSERT ON concept_states BEGIN
            INSERT INTO concept_state_log (session_id, concept_id, state, created)
            VALUES (NEW.session_id, NEW.concept_id, NEW.state, NEW.updated);
        END;
        CREATE TRIGGER concept_state_log_au AFTER UPDATE OF state, updated ON concept_states BEGIN
            INSERT INTO concept_state_log (session_id, concept_id, state, created)
            VALUES (NEW.session_id, NEW.concept_id, NEW.state, NEW.updated);
        END;

        CREATE TABLE imported_stats (
            session_key TEXT NOT NULL,
            explainer_hash TEXT NOT NULL,
            concept_id TEXT NOT NULL,
            shaky INTEGER NOT NULL DEFAULT 0,
            explained INTEGER NOT NULL DEFAULT 0,
            imported TEXT NOT NULL,
            PRIMARY KEY (session_key, explainer_hash, concept_id)
        );

        CREATE TABLE compiles (
            id TEXT PRIMARY KEY,
            output TEXT NOT NULL,
            notes_hash TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            outline TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE INDEX compiles_by_output ON compiles (output, updated);
        CREATE TABLE compile_questions (
            compile_id TEXT NOT NULL REFERENCES compiles(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            question TEXT NOT NULL,
            answer TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            updated TEXT NOT NULL,
            PRIMARY KEY (compile_id, seq)
        );
        """
    )
    _set_user_version(db, 3)


@migrations(name="m004_settings")
def m004_settings(db: Database) -> None:
    """Reader preferences that outlive a session, such as the app's colour theme."""
    db.executescript(
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        """
    )
    _set_user_version(db, 4)


@migrations(name="m005_fts_stemming")
def m005_fts_stemming(db: Database) -> None:
    """Search matches word forms ("checkpoint" finds "checkpoints"): the index is rebuilt
    with the porter stemmer over unicode61. The m002 triggers name the table, so they
    keep working once it is recreated under the same name."""
    db.executescript(
        """
        DROP TABLE IF EXISTS messages_fts;
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            text, content='messages', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
        """
    )
    _set_user_version(db, 5)


@migrations(name="m006_feedback_count")
def m006_feedback_count(db: Database) -> None:
    """The model repeats the same ``<feedback>`` note turn after turn: a session keeps it once,
    with a ``count``. Existing repeats within a session (same concept, source and
    ``text.note_key``) fold into the oldest row, whose uid (and so bundle identity) stays."""
    from tutor.text import note_key

    db.execute("ALTER TABLE feedback ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    first: dict[tuple, int] = {}
    extra: dict[int, int] = {}
    drop: list[tuple[int]] = []
    rows = db.execute(
        "SELECT id, session_id, concept_id, source, text FROM feedback WHERE session_id IS NOT NULL ORDER BY created, id"
    ).fetchall()
    for fid, sid, cid, source, text in rows:
        key = (sid, cid, source, note_key(text or ""))
        if key in first:
            extra[first[key]] = extra.get(first[key], 0) + 1
            drop.append((fid,))
        else:
            first[key] = fid
    db.conn.executemany("UPDATE feedback SET count = count + ? WHERE id = ?", [(n, fid) for fid, n in extra.items()])
    db.conn.executemany("DELETE FROM feedback WHERE id = ?", drop)
    _set_user_version(db, 6)


@migrations(name="m007_message_parts_pending")
def m007_message_parts_pending(db: Database) -> None:
    """Linear saving and durable queued messages (issue 15; docs/database.md).

    ``message_parts``: a streaming reply is saved by appending its new tail here at each
    flush (O(chunk)), not by rewriting the whole growing text and re-indexing it for search
    at every flush (O(length), so O(length^2) per reply). When the reply ends the parts are
    folded into ``messages.text``/``raw`` once, which indexes it for search once.

    ``pending_messages``: a reader message is stored here the moment it is shown (typed while
    a reply streams, or just before its own turn starts), so a kill never loses a line the
    reader saw; it moves into ``messages`` when it is sent."""
    db.executescript(
        """
        CREATE TABLE message_parts (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            raw TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX message_parts_by_message ON message_parts (message_id, id);
        CREATE TABLE pending_messages (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX pending_messages_by_session ON pending_messages (session_id, id);
        """
    )
    _set_user_version(db, 7)


def section_hash(text: str) -> str:
    """A section's identity across versions: whitespace at line ends and blank lines around ignored."""
    norm = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


SCHEMA_VERSION = len(migrations.steps)

# Tables every command needs; a database without one of them is damaged, not repairable.
CORE_TABLES = (
    "explainers", "sessions", "messages", "concept_states", "feedback", "summaries",
    "concept_state_log", "explainer_sections", "imported_stats", "compiles", "compile_questions", "settings",
)
_FTS_REBUILD = """
    DROP TRIGGER IF EXISTS messages_fts_ai;
    DROP TRIGGER IF EXISTS messages_fts_ad;
    DROP TRIGGER IF EXISTS messages_fts_au;
    DROP TABLE IF EXISTS messages_fts;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content='messages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, text) VALUES (NEW.id, NEW.text);
    END;
    CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
    END;
    CREATE TRIGGER messages_fts_au AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
        INSERT INTO messages_fts(rowid, text) VALUES (NEW.id, NEW.text);
    END;
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"""
_COUNTS = """
    DROP TRIGGER IF EXISTS messages_count_ai;
    DROP TRIGGER IF EXISTS messages_count_ad;
    CREATE TRIGGER messages_count_ai AFTER INSERT ON messages BEGIN
        UPDATE sessions SET message_count = message_count + 1, turn_count = turn_count + (NEW.role = 'reader')
        WHERE id = NEW.session_id;
    END;
    CREATE TRIGGER messages_count_ad AFTER DELETE ON messages BEGIN
        UPDATE sessions SET message_count = message_count - 1, turn_count = turn_count - (OLD.role = 'reader')
        WHERE id = OLD.session_id;
    END;
    UPDATE sessions SET
        message_count = (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id),
        turn_count = (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id AND m.role = 'reader');
"""
# (type, name, SQL that recreates it when it is missing): the schema of the latest step,
# for the objects that can be rebuilt from the rows without loss.
_REPAIRS: tuple[tuple[str, str, str], ...] = (
    ("table", "messages_fts", _FTS_REBUILD),
    ("trigger", "messages_fts_ai", _FTS_REBUILD),
    ("trigger", "messages_fts_ad", _FTS_REBUILD),
    ("trigger", "messages_fts_au", _FTS_REBUILD),
    ("trigger", "messages_count_ai", _COUNTS),
    ("trigger", "messages_count_ad", _COUNTS),
    ("trigger", "feedback_uid_ai", """CREATE TRIGGER feedback_uid_ai AFTER INSERT ON feedback WHEN NEW.uid IS NULL BEGIN
        UPDATE feedback SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id;
    END;"""),
    ("trigger", "concept_state_log_ai", """CREATE TRIGGER concept_state_log_ai AFTER INSERT ON concept_states BEGIN
        INSERT INTO concept_state_log (session_id, concept_id, state, created)
        VALUES (NEW.session_id, NEW.concept_id, NEW.state, NEW.updated);
    END;"""),
    ("trigger", "concept_state_log_au", """CREATE TRIGGER concept_state_log_au AFTER UPDATE OF state, updated ON concept_states BEGIN
        INSERT INTO concept_state_log (session_id, concept_id, state, created)
        VALUES (NEW.session_id, NEW.concept_id, NEW.state, NEW.updated);
    END;"""),
    ("index", "sessions_by_path", "CREATE INDEX sessions_by_path ON sessions (explainer_path, status, updated)"),
    ("index", "sessions_by_updated", "CREATE INDEX sessions_by_updated ON sessions (updated)"),
    ("index", "feedback_by_explainer", "CREATE INDEX feedback_by_explainer ON feedback (explainer_hash)"),
    ("index", "feedback_by_session", "CREATE INDEX feedback_by_session ON feedback (session_id)"),
    ("index", "feedback_by_uid", "CREATE UNIQUE INDEX feedback_by_uid ON feedback (uid)"),
    ("index", "summaries_by_session", "CREATE INDEX summaries_by_session ON summaries (session_id, upto_seq)"),
    ("index", "concept_state_log_by_session",
     "CREATE INDEX concept_state_log_by_session ON concept_state_log (session_id, concept_id)"),
    ("index", "compiles_by_output", "CREATE INDEX compiles_by_output ON compiles (output, updated)"),
)


def _statements(script: str) -> list[str]:
    """Split a repair script into statements (executescript would COMMIT our transaction)."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out

KNOWN_MIGRATIONS = migrations.names


def _set_user_version(db: Database, version: int) -> None:
    db.execute(f"PRAGMA user_version = {int(version)}")


# ---------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------

_MESSAGE_COLS = (
    "id, session_id, seq, role, text, raw, created, complete, input_tokens, output_tokens, "
    "cache_creation_input_tokens, cache_read_input_tokens, cost_usd"
)
_SESSION_COLS = (
    "s.id, s.explainer_hash, s.explainer_path, coalesce(e.title, '') AS explainer_title, s.mode, "
    "s.started, s.updated, s.status, s.input_tokens, s.output_tokens, s.cache_write_tokens, "
    "s.cache_read_tokens, s.cost_usd, s.message_count, s.turn_count"
)
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
)
_HEX = re.compile(r"^[0-9a-f]+$")


def _usage_values(usage: Any) -> dict[str, Any]:
    """Accept a mapping, a pydantic model or any object with the usage attributes."""
    if usage is None:
        return {}
    out: dict[str, Any] = {}
    for name in _USAGE_FIELDS:
        if isinstance(usage, Mapping):
            value = usage.get(name)
        else:
            value = getattr(usage, name, None)
        if value is not None:
            out[name] = float(value) if name == "cost_usd" else int(value)
    return out


def _utf8(text: str | None) -> str | None:
    """SQLite stores UTF-8, and text from a model or a paste can hold lone surrogates
    (valid in JSON, not in UTF-8); they become U+FFFD instead of failing the write."""
    from tutor.text import utf8_text

    return None if text is None else utf8_text(text)


_DAMAGED_HINT = "Restore it from a backup, or move it aside (mv {q} {q}.damaged) and tutor starts a new one."


def db_error(path: str | Path, e: BaseException) -> StoreError:
    """The one mapping from a sqlite3 or OS error on the session database to the words the
    reader sees: what is wrong with which file, and what to do (docs/database.md, "Damaged
    databases"). Every Store method and every command goes through it, so the wording of a
    database problem lives here and nowhere else."""
    import shlex

    path = Path(path)
    q = shlex.quote(str(path))
    if isinstance(e, StoreError):
        return e
    if isinstance(e, OSError) and not isinstance(e, sqlite3.Error):
        if e.errno == errno.ENAMETOOLONG:
            return StoreError(f"{str(path)[:60]}…: the path is too long ({len(os.fsencode(str(path)))} bytes)",
                              hint="Choose a shorter path with --db or TUTOR_HOME.")
        if e.errno == errno.ENOSPC:
            return StoreError(f"{path}: the disk is full", hint="Free some space and try again; nothing saved before was lost.")
        return StoreError(f"{path}: cannot use the database ({e.strerror or e})",
                          hint="Check the path, and that tutor may read and write it and its folder.")
    msg = str(e)
    low = msg.lower()
    if "locked" in low or "busy" in low:
        return StoreError(
            f"{path}: the database stayed busy for {BUSY_TIMEOUT_MS // 1000} s "
            "(another tutor or another program is using it)",
            hint="Close the other program (or wait for it) and try again; nothing saved before was lost.",
        )
    if "readonly" in low or "read-only" in low:
        if path.exists() and not os.access(path, os.W_OK):
            return StoreError(f"{path}: the database file is read-only, so tutor cannot save to it",
                              hint=f"Make it writable (chmod u+w {q}), or use --db to pick another database.")
        if not os.access(path.parent, os.W_OK):
            return StoreError(
                f"{path}: its folder is read-only, and SQLite must create {path.name}-wal and {path.name}-shm beside it",
                hint="Make the folder writable, or copy the database to a writable folder and use --db.")
        return StoreError(f"{path}: the database is read-only ({msg})",
                          hint="Check that tutor may write to the file and its folder, or use --db.")
    if "disk is full" in low or "database or disk is full" in low:
        return StoreError(f"{path}: the disk is full; the last change was not saved",
                          hint="Free some space and try again; everything saved before is kept.")
    if "disk i/o error" in low:
        return StoreError(
            f"{path}: reading or writing the database failed (disk I/O error: the disk may be full or failing)",
            hint="Free some space or check the disk, then try again; everything saved before is kept.")
    m = re.search(r"no such (table|column): (?:\w+\.)*(\S+)", msg)  # main.x, or a query alias s.x
    if m and m.group(2).startswith("messages_fts"):
        return StoreError(f"{path}: the search index is missing and the database is read-only, so it was not rebuilt",
                          hint="Make the database writable and run tutor once more: it rebuilds the index itself.")
    if m:
        return StoreError(f"{path}: the database is damaged ({m.group(1)} {m.group(2)} is missing)",
                          hint=_DAMAGED_HINT.format(q=q))
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return StoreError(f"{path}: is not a tutor database, or it is damaged ({msg})",
                          hint="Point --db at another file; this one was left untouched.")
    if "could not decode" in low:
        return StoreError(f"{path}: the database is damaged (text that is not UTF-8: {msg})",
                          hint=_DAMAGED_HINT.format(q=q))
    if "unable to open" in low:
        return StoreError(f"{path}: cannot open the database ({msg})",
                          hint="Check that the folder exists and that tutor may read and write it.")
    return StoreError(f"{path}: cannot use the database ({msg})", hint=_DAMAGED_HINT.format(q=q))


def _damaged_row(path: Path, table: str, row: Mapping[str, Any], e: Exception) -> StoreError:
    """A row whose values do not fit its columns (text in a number column, a blob, a NULL):
    name the row and say how to get rid of it."""
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        field = ".".join(str(x) for x in err.get("loc", ())) or "?"
        what = f"{field}: {str(err.get('msg', 'invalid')).split(',')[0].lower()}, found {str(err.get('input'))[:30]!r}"
    else:
        what = str(e)[:80]
    sid = row.get("session_id") if table != "sessions" else row.get("id")
    key = row.get("id") or row.get("hash") or row.get("concept_id") or "?"
    if isinstance(key, str) and len(key) >= 32:
        key = key[:8]
    hint = (f"Remove that session (tutor sessions rm {str(sid)[:8]}), fix the row with sqlite3, or restore a backup."
            if sid else "Fix the row with sqlite3, or restore a backup.")
    return StoreError(f"{path}: {table} row {key} is damaged ({what})", hint=hint + " Nothing was changed.")


def _row_dict(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row)}


class Store:
    """One connection to the session database. Safe to share between threads (one lock)."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self._db: Database | None = None
        self._lock = threading.RLock()
        self.notices: list[str] = []  # one quiet line per repair made at open (the search index rebuilt)
        self.skipped: list[str] = []  # damaged rows a listing left out, one line each

    @property
    def db(self) -> Database:
        """A sqlite-utils view of the same connection (for migrations and ad-hoc use)."""
        if self._db is None:
            from sqlite_utils import Database

            self._db = Database(self.conn, execute_plugins=False)
        return self._db

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Store:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        Raises StoreError, never a raw sqlite3 error: a file that is not a database, a
        database from a newer tutor, or a folder we cannot write to are user problems.
        """
        path = Path(path).expanduser()
        try:
            return cls._open(path, create)
        except (OSError, sqlite3.Error) as e:  # a path too long, a folder we may not enter, ...
            raise db_error(path, e) from None

    @classmethod
    def _open(cls, path: Path, create: bool) -> Store:
        if path.is_dir():
            raise StoreError(
                f"{path}: is a folder, not a database file",
                hint="Give a file path to --db, e.g. --db sessions/tutor.db.",
            )
        if path.exists() and not path.is_file():
            # /dev/zero or a FIFO: SQLite says only "disk I/O error" (or waits on the pipe)
            raise StoreError(
                f"{path}: not a regular file (a device, pipe or socket), so not a database",
                hint="Give --db the path of a database file, e.g. --db sessions/tutor.db.",
            )
        if not path.exists():
            if not create:
                raise StoreError(f"{path}: no tutor database here yet")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"{path.parent}: cannot create the data folder ({e.strerror or e})") from None
        try:
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise db_error(path, e) from None
        store = cls(conn, path)
        try:
            store._configure()
            store._migrate()
            store._check_schema()
            if store.conn.execute("SELECT 1 FROM message_parts LIMIT 1").fetchone():
                store.fold_unfinished()  # a reply cut by a kill: make its words searchable
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise db_error(path, e) from None
        return store

    def _configure(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        c.execute("PRAGMA foreign_keys = ON")
        # Switching to WAL needs a moment alone with the file; another process that is
        # opening the same new file at the same moment makes it return "locked".
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000  # another program holding the file
        for attempt in range(50):
            if time.monotonic() > deadline:
                raise self._busy_error(sqlite3.OperationalError("database is locked"))
            try:
                mode = c.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                time.sleep(0.02 * (attempt + 1))
        else:
            raise self._busy_error(sqlite3.OperationalError("database is locked"))
        if mode.lower() != "wal":  # e.g. a read-only folder: WAL needs to create -wal/-shm files
            raise StoreError(
                f"{self.path}: cannot switch the database to WAL mode (journal mode stays {mode!r})",
                hint="Check that tutor may write to the file and its folder.",
            )
        c.execute("PRAGMA synchronous = FULL")

    def _migrate(self) -> None:
        """Apply pending migrations under a write lock so two processes never race."""
        self._check_not_newer()
        if self._applied_migrations() == KNOWN_MIGRATIONS and self._user_version() == SCHEMA_VERSION:
            return
        with self._write():
            self._check_not_newer()
            migrations.real().apply(self.db)

    def _applied_migrations(self) -> list[str]:
        """Names of the steps recorded in the database, in the order they ran."""
        has_table = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
        ).fetchone()
        if not has_table:
            return []
        rows = self.conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", (MIGRATION_SET,)
        )
        return [r[0] for r in rows]

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_not_newer(self) -> None:
        applied = self._applied_migrations()
        unknown = [name for name in applied if name not in KNOWN_MIGRATIONS]
        version = self._user_version()
        if unknown or version > SCHEMA_VERSION:
            what = f"schema step {unknown[0]!r}" if unknown else f"schema version {version}"
            raise StoreError(
                f"{self.path}: this database was written by a newer tutor ({what}; "
                f"this tutor knows up to version {SCHEMA_VERSION})",
                hint="Upgrade tutor, or use --db to pick another database. The file was not changed.",
            )
        if not applied and version == 0:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables:
                raise StoreError(
                    f"{self.path}: is an SQLite database, but not a tutor one "
                    f"(it has tables: {', '.join(sorted(tables)[:5])})",
                    hint="Point --db at another file; this one was left untouched.",
                )

    def _check_schema(self) -> None:
        """One look at sqlite_master after the migrations: a missing core table is a clear
        StoreError (nothing is touched); a missing search index, trigger or index is rebuilt
        here, from the rows themselves, so nothing is lost (docs/database.md, "Damaged
        databases"). On a read-only file the repair is skipped; reads still work."""
        present = {(r[0], r[1]) for r in self.conn.execute("SELECT type, name FROM sqlite_master")}
        missing_tables = [t for t in CORE_TABLES if ("table", t) not in present]
        if missing_tables:
            raise db_error(self.path, sqlite3.OperationalError(f"no such table: {missing_tables[0]}"))
        todo = [name for kind, name, _ in _REPAIRS if (kind, name) not in present]
        if not todo:
            return
        try:
            with self._write() as c:
                present = {(r[0], r[1]) for r in c.execute("SELECT type, name FROM sqlite_master")}
                done = []
                for kind, name, sql in _REPAIRS:
                    if (kind, name) not in present:
                        for q in _statements(sql):
                            c.execute(q)
                        present |= {(k, n) for k, n, sq in _REPAIRS if sq == sql}
                        done.append(name)
        except StoreError:
            return  # read-only or busy: use it as it is; a search then says what is missing
        if any(n.startswith("messages_fts") for n in done):
            n = self.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            self.notices.append(f"{self.path}: the search index was missing; rebuilt it from {n} messages.")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._user_version()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting
        up to busy_timeout), so we never hit SQLITE_BUSY halfway through; COMMIT on exit."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise self._busy_error(e) from None
            try:
                yield self.conn
            except BaseException as e:
                self._rollback()
                if isinstance(e, sqlite3.Error):  # read-only, disk full, a table gone, ...
                    raise db_error(self.path, e) from None
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as e:
                    self._rollback()
                    raise db_error(self.path, e) from None

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:  # a full disk can refuse even this; SQLite rolls back on close
            pass

    def _busy_error(self, e: sqlite3.Error) -> StoreError:
        return db_error(self.path, e)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self.conn.execute(sql, tuple(params))
                return [_row_dict(cur, r) for r in cur.fetchall()]
            except sqlite3.Error as e:
                raise db_error(self.path, e) from None

    def _rows(self, model: type[Any], rows: Iterable[Mapping[str, Any]], table: str, *, skip: bool = False) -> list[Any]:
        """Rows into models. A row whose values do not fit (text in a number column, a blob,
        a NULL) is a StoreError naming it; with ``skip`` (listings) it is left out and named
        in ``self.skipped``, so one damaged session does not hide all the others."""
        out = []
        for r in rows:
            try:
                out.append(model(**r))
            except (ValidationError, TypeError, ValueError) as e:
                err = _damaged_row(self.path, table, r, e)
                if not skip:
                    raise err from None
                self.skipped.append(err.message)
        return out

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

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

    def add_usage(
        self,
        session_id: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_write: int = 0,
        cache_read: int = 0,
        cost_usd: float = 0.0,
    ) -> SessionRow:
        """Add one model call's usage to the session totals; returns the updated session."""
        with self._write() as c:
            c.execute(
                "UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,"
                " cache_write_tokens = cache_write_tokens + ?, cache_read_tokens = cache_read_tokens + ?,"
                " cost_usd = cost_usd + ? WHERE id = ?",
                (int(input_tokens), int(output_tokens), int(cache_write), int(cache_read), float(cost_usd), session_id),
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

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: str,
        text: str,
        raw: str | None = None,
        complete: bool = True,
        usage: Any = None,
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
        usage: Any = None,
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
        usage: Any = None,
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
        usage: Any = None,
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
