"""The reader model: one state per concept, with the evidence for it, and "what next".

Why a separate module: the Claude path, the offline walk, the app's outline and the
tests all need the same answer to "what does this reader know, and what do we teach
next?". Keeping it a small pure object (no store, no I/O) makes it cheap to rebuild
from the store on resume and easy to test.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet
from enum import StrEnum

from pydantic import BaseModel

from tutor.explainer import Explainer


class State(StrEnum):
    """A concept's state for one reader (docs/engine.md, "Reader model"). A ``str``: the store,
    the tag protocol and exports carry the value."""

    UNKNOWN = "unknown"
    ASKED = "asked"
    KNOWN = "known"
    EXPLAINED = "explained"
    UNDERSTOOD = "understood"
    SHAKY = "shaky"


STATES: tuple[State, ...] = tuple(State)
# Done: the reader can build on it. Active: in progress, the tutor is on it.
DONE: frozenset[State] = frozenset({State.KNOWN, State.UNDERSTOOD})
ACTIVE: frozenset[State] = frozenset({State.ASKED, State.EXPLAINED, State.SHAKY})
# The reader has been shown the concept's section (so "explain it again" reads right).
PRESENTED: frozenset[State] = frozenset({State.EXPLAINED, State.UNDERSTOOD, State.SHAKY})


class ConceptState(BaseModel):
    """A concept's state and why we believe it: the turn (message seq) and what was said."""

    state: State = State.UNKNOWN
    evidence: str = ""
    seq: int | None = None


class ReaderModel:
    """States for every concept of one explainer, in teaching order."""

    def __init__(self, explainer: Explainer):
        self.explainer = explainer
        self.order: list[str] = [c.id for c in explainer.concepts]
        self._states: dict[str, ConceptState] = {cid: ConceptState() for cid in self.order}
        # Concepts the reader chose to skip in this session: not done, but not offered again.
        self.skipped: set[str] = set()

    # -- reading -------------------------------------------------------------------
    def state(self, concept_id: str) -> State:
        return self._states[concept_id].state

    def entry(self, concept_id: str) -> ConceptState:
        return self._states[concept_id]

    def states(self) -> dict[str, State]:
        return {cid: self._states[cid].state for cid in self.order}

    def is_done(self, concept_id: str) -> bool:
        return self._states[concept_id].state in DONE

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._states

    # -- writing -------------------------------------------------------------------
    def set(self, concept_id: str, state: str, evidence: str = "", seq: int | None = None) -> bool:
        """Set a state. Returns True if anything changed. Unknown ids/states raise ValueError."""
        if concept_id not in self._states:
            raise ValueError(f"unknown concept id {concept_id!r}")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r} (expected one of {', '.join(STATES)})")
        old = self._states[concept_id]
        new = ConceptState(state=State(state), evidence=evidence, seq=seq)
        if old == new:
            return False
        self._states[concept_id] = new
        if state in DONE:
            self.skipped.discard(concept_id)
        return True

    # -- deciding ------------------------------------------------------------------
    def ready(self, concept_id: str) -> bool:
        """All prerequisites known or understood (unknown prerequisite ids are ignored)."""
        c = self.explainer.concept(concept_id)
        return all(self.is_done(p) for p in c.prerequisites if p in self._states)

    def next_concept(self, *, exclude: AbstractSet[str] = frozenset()) -> str | None:
        """The first concept in teaching order that is not done and whose prerequisites are done.

        If none is ready (the reader struggled with a prerequisite), the first not-done one:
        we never stall. Skipped and excluded concepts are passed over. None when all are done.
        """
        skip = self.skipped | set(exclude)
        pending = [cid for cid in self.order if not self.is_done(cid) and cid not in skip]
        for cid in pending:
            if self.ready(cid):
                return cid
        return pending[0] if pending else None

    def summary_line(self) -> str:
        """One compact line per concept for the prompt's newest user turn."""
        parts = []
        for cid in self.order:
            e = self._states[cid]
            mark = " (skipped)" if cid in self.skipped else ""
            parts.append(f"{cid}={e.state}{mark}")
        return ", ".join(parts)


# -- naming concepts in free text ------------------------------------------------------

_QUESTION_WORDS = ("How ", "What ", "Why ", "When ", "Where ", "Which ", "Who ")


def in_sentence(title: str) -> str:
    """A title placed mid-sentence: "skip The rollback journal" reads as "skip the rollback
    journal", "explain How SQLite's log works" as "explain how SQLite's log works" (a
    question such as "What is a page?" stays as written, like a quoted title). Other
    capitals stay: the first word may be a name (Unicode, Git) and a wrong lower case reads
    worse than a title's capital."""
    for article in ("The ", "A ", "An "):
        if title.startswith(article) and len(title) > len(article) and not title[len(article)].isupper():
            return article.lower() + title[len(article):]
    if title.startswith(_QUESTION_WORDS) and not title.rstrip().endswith("?"):
        # "How X works" is a clause; "What is a page?" is a question quoted as a title.
        return title[0].lower() + title[1:]
    return title


def ending(title: str, mark: str) -> str:
    """A title at the end of a sentence or question: "Next: Why journal?" not "Why journal?.",
    "know about What is a page?" not "What is a page??" (plain files have such headings)."""
    return title if title.rstrip().endswith((".", "?", "!", "…")) else title + mark


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[`*_\"'“”‘’.,;:!?()\[\]]", " ", text)
    return " ".join(text.split())


_STOP = {"the", "a", "an", "of", "and", "or", "to", "in", "on", "about", "how", "what", "is", "it", "its"}


def find_concepts(explainer: Explainer, text: str, *, strict: bool = False) -> list[str]:
    """The concepts a reader's wording ("pages", "the WAL file", "wal", an id) could mean.

    One id: resolved. Several: ambiguous -- the caller asks which one rather than guess
    ("wal" is both ``wal-file`` and ``wal-index``). Empty: nothing plausible.
    Tiers, first that matches wins: exact id; exact title; the words as an id
    ("wal file" -> ``wal-file``); an id starting with them; a title holding all of them as
    words; a title containing the phrase (or the phrase the title); the best word overlap.
    ``strict``: exact id or title only (used while the reader is answering a
    check, where "I know that pages are rewritten" is an answer, not a command).
    """
    q = _norm(text)
    if not q:
        return []
    concepts = explainer.concepts
    for c in concepts:
        if q == c.id.casefold() or q.replace(" ", "-") == c.id.casefold():
            return [c.id]
    for c in concepts:
        if q == _norm(c.title):
            return [c.id]
    if strict:
        return []
    qwords = [w for w in re.split(r"[ -]+", q) if w and w not in _STOP]
    if not qwords:
        return []
    slug = "-".join(qwords)
    for c in concepts:
        if slug == c.id.casefold():
            return [c.id]
    hits = [c.id for c in concepts if c.id.casefold().startswith(slug + "-")]
    if hits:
        return hits
    hits = [c.id for c in concepts if set(qwords) <= {w for w in re.split(r"[ -]+", _norm(c.title)) if w}]
    if hits:
        return hits
    if len(q) >= 3:
        hits = [c.id for c in concepts if q in _norm(c.title) or _norm(c.title) in q]
        if hits:
            return hits
    qset = set(qwords)
    scored: list[tuple[float, str]] = []
    for c in concepts:
        twords = {w for w in re.split(r"[ -]+", _norm(c.title)) if w and w not in _STOP} | set(c.id.split("-"))
        overlap = len(qset & twords)
        if overlap:
            scored.append((overlap / len(qset | twords), c.id))
    if not scored:
        return []
    best = max(score for score, _ in scored)
    return [cid for score, cid in scored if score == best] if best >= 0.34 else []


def find_concept(explainer: Explainer, text: str, *, strict: bool = False) -> str | None:
    """The one concept a reader's wording names, or None when nothing or several match
    (see ``find_concepts``: an ambiguous name is never guessed)."""
    hits = find_concepts(explainer, text, strict=strict)
    return hits[0] if len(hits) == 1 else None
