"""The schema: the migration steps, applied with sqlite-utils' ``Migrations``, and the
objects rebuilt from the rows when a database lost them (docs/database.md).

Append only: never edit a step that has shipped; add a new one. This module does not
import sqlite-utils (~60 ms) at import: ``migrations()`` does, and the store calls it only
when a database is behind, so opening an up-to-date database does not pay for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

MIGRATION_SET = "tutor"
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' table: (id, migration_set, name, applied_at)


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


def m003_authors(db: Database) -> None:
    """The author side (tutor/authoring/, queries in tutor/store/authoring.py; docs/authors.md).

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


def m008_compile_dialogue(db: Database) -> None:
    """``tutor compile`` as a conversation (issue 13; docs/authors.md): a question may follow up
    an answer (``about`` its seq, in a follow-up ``round``) or ask the author which is right
    where the notes and an answer disagree (``kind = 'contradiction'``, with both sides); and
    the model's notes on the notes (``compile_feedback``), kept out of the explainer and shown
    to the author at the end, so a resumed compile still shows them."""
    db.executescript(
        """
        ALTER TABLE compile_questions ADD COLUMN kind TEXT NOT NULL DEFAULT 'question';
        ALTER TABLE compile_questions ADD COLUMN round INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE compile_questions ADD COLUMN about INTEGER;
        ALTER TABLE compile_questions ADD COLUMN notes_say TEXT NOT NULL DEFAULT '';
        ALTER TABLE compile_questions ADD COLUMN answer_says TEXT NOT NULL DEFAULT '';
        CREATE TABLE compile_feedback (
            compile_id TEXT NOT NULL REFERENCES compiles(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            step TEXT NOT NULL,
            text TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (compile_id, seq)
        );
        """
    )
    _set_user_version(db, 8)


STEPS: tuple[Callable[[Database], None], ...] = (
    m001_initial,
    m002_cache_usage_counts_fts,
    m003_authors,
    m004_settings,
    m005_fts_stemming,
    m006_feedback_count,
    m007_message_parts_pending,
    m008_compile_dialogue,
)
KNOWN_MIGRATIONS = [step.__name__ for step in STEPS]
SCHEMA_VERSION = len(STEPS)  # each step sets PRAGMA user_version to its number


@cache
def migrations() -> Migrations:
    """The steps as sqlite-utils' ``Migrations``, which records and applies them."""
    from sqlite_utils.migrations import Migrations

    m = Migrations(MIGRATION_SET)
    for step in STEPS:
        m(name=step.__name__)(step)
    return m

# Tables every command needs; a database without one of them is damaged, not repairable.
CORE_TABLES = (
    "explainers", "sessions", "messages", "concept_states", "feedback", "summaries",
    "concept_state_log", "explainer_sections", "imported_stats", "compiles", "compile_questions", "settings",
    "compile_feedback",
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



def _set_user_version(db: Database, version: int) -> None:
    db.execute(f"PRAGMA user_version = {int(version)}")

