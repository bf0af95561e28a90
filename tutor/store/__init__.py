"""The session store: every SQL statement of tutor is in this package. Schema in docs/database.md.

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
    store.add_usage(sid, usage)                  # usage: tutor.engine.events.TokenUsage, the one usage type
    store.set_status(sid, "active" | "finished")
    store.search(query, limit=50)
    store.delete_sessions(ids)
    store.session_dump(sid) -> dict             # the JSON export shape

    Authoring (tutor/authoring/; table in docs/database.md, "Author-side tables"):
    store.explainer_hashes(path) / store.sections(hashes) / store.version_feedback(hashes)
    store.concept_stats(hashes) / store.imported_stats(hashes) / store.feedback_overview()
    store.import_bundle(target, explainers, feedback, stats, transcripts) -> ImportCounts
    store.create_compile(...) / store.unfinished_compile(output) -> CompileRow | None / ...

    with SessionLock(db_path, sid) as lock: ...  # lock.busy: open in another tutor (lock.py)

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

from tutor.store.authoring import IMPORTED_MODE, AuthoringQueries, session_key
from tutor.store.connection import (
    BUSY_TIMEOUT_MS,
    FEEDBACK_SOURCES,
    ROLES,
    STATUSES,
    TRANSCRIPT_FORMAT,
    TRANSCRIPT_VERSION,
    db_error,
    normalise_path,
    now_iso,
    section_hash,
)
from tutor.store.rows import (
    SNIPPET_END,
    SNIPPET_START,
    AuthorFeedbackRow,
    CompileQuestionRow,
    CompileRow,
    ConceptStateRow,
    ConceptStatRow,
    ExplainerRow,
    FeedbackOverviewRow,
    FeedbackRow,
    ImportCounts,
    ImportedStatRow,
    MessageRow,
    PendingRow,
    SearchHit,
    SectionRow,
    SessionRow,
    StateLogRow,
    SummaryRow,
)
from tutor.store.schema import KNOWN_MIGRATIONS, SCHEMA_VERSION, migrations
from tutor.store.sessions import fts_query


class Store(AuthoringQueries):
    """The session database: the connection (``connection.py``), then message, session and
    authoring queries (``messages.py``, ``sessions.py``, ``authoring.py``), each building on the last."""


__all__ = [
    "BUSY_TIMEOUT_MS",
    "FEEDBACK_SOURCES",
    "IMPORTED_MODE",
    "KNOWN_MIGRATIONS",
    "ROLES",
    "SCHEMA_VERSION",
    "SNIPPET_END",
    "SNIPPET_START",
    "STATUSES",
    "TRANSCRIPT_FORMAT",
    "TRANSCRIPT_VERSION",
    "AuthorFeedbackRow",
    "CompileQuestionRow",
    "CompileRow",
    "ConceptStatRow",
    "ConceptStateRow",
    "FeedbackOverviewRow",
    "ImportCounts",
    "ImportedStatRow",
    "SectionRow",
    "ExplainerRow",
    "FeedbackRow",
    "MessageRow",
    "PendingRow",
    "SearchHit",
    "SessionRow",
    "StateLogRow",
    "Store",
    "SummaryRow",
    "db_error",
    "fts_query",
    "migrations",
    "normalise_path",
    "now_iso",
    "section_hash",
    "session_key",
]
