"""Row types: what the store's queries return (docs/database.md has the tables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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


# -- authoring (m003_authors; tutor/store/authoring.py) ------------------------------------


class AuthorFeedbackRow(FeedbackRow):
    session_key: str | None = None  # an imported note's anonymous session (no session_id)
    session_mode: str | None = None  # the mode of the session it came from, when that is here


class SectionRow(_Row):
    explainer_hash: str
    concept_id: str
    title: str = ""
    section_hash: str


class ConceptStatRow(_Row):
    """One local session's history of one concept."""

    session_id: str
    explainer_hash: str
    concept_id: str
    shaky: bool = False  # ever marked shaky
    explained: int = 0  # times marked explained


class ImportedStatRow(_Row):
    session_key: str
    explainer_hash: str
    concept_id: str
    shaky: bool = False
    explained: int = 0
    imported: str


class FeedbackOverviewRow(_Row):
    path: str
    title: str
    items: int
    model: int
    reader: int
    newest: str


class ImportCounts(_Row):
    feedback_added: int = 0
    feedback_skipped: int = 0
    stats_added: int = 0
    transcripts_added: int = 0


class CompileQuestionRow(_Row):
    seq: int
    question: str
    answer: str | None = None
    status: str = "pending"  # pending | answered | skipped | not_asked
    kind: str = "question"  # question | follow_up | contradiction (m008)
    round: int = 0  # 0: from the outline; 1, 2: follow-up rounds
    about: int | None = None  # the seq of the answer a follow-up or contradiction is about
    notes_say: str = ""  # a contradiction: the notes' side, quoted
    answer_says: str = ""  # and the answer's


class CompileRow(_Row):
    id: str
    output: str
    notes_hash: str
    notes: list[str] = []
    model: str
    status: str  # outline | asking | writing | done | failed
    outline: str | None = None
    created: str
    updated: str
    questions: list[CompileQuestionRow] = []
    feedback: list[str] = []  # the model's notes on the notes, in order (compile_feedback)
