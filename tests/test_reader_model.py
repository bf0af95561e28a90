"""The reader model: states with evidence, what comes next, overrides, naming concepts."""

from __future__ import annotations

import pytest

from tutor.engine.reader_model import STATES, ReaderModel, find_concept

from engine_helpers import make_explainer

SPECS = [
    {"id": "pages", "title": "Pages and the database file"},
    {"id": "journal", "title": "The rollback journal", "prerequisites": ["pages"]},
    {"id": "wal", "title": "The write-ahead log", "prerequisites": ["pages"]},
    {"id": "checkpoint", "title": "Checkpoints", "prerequisites": ["wal", "journal"]},
]


def test_initial_states_and_order():
    rm = ReaderModel(make_explainer(SPECS))
    assert rm.states() == {"pages": "unknown", "journal": "unknown", "wal": "unknown", "checkpoint": "unknown"}
    assert rm.next_concept() == "pages"


def test_next_concept_follows_prerequisites():
    rm = ReaderModel(make_explainer(SPECS))
    rm.set("pages", "known", "reader said yes", seq=2)
    assert rm.next_concept() == "journal"
    rm.set("journal", "understood", "answered the check", seq=5)
    assert rm.next_concept() == "wal"
    rm.set("wal", "explained", "", seq=7)
    # wal is explained but not understood: checkpoint is not ready, so wal stays next.
    assert rm.next_concept() == "wal"
    rm.set("wal", "shaky", "wrong answer", seq=9)
    assert rm.next_concept() == "wal"
    rm.set("wal", "understood", "", seq=11)
    assert rm.next_concept() == "checkpoint"
    rm.set("checkpoint", "known", "")
    assert rm.next_concept() is None


def test_no_ready_concept_falls_back_to_first_not_done():
    rm = ReaderModel(make_explainer(SPECS))
    rm.skipped.add("pages")
    # Everything else needs pages; we never stall.
    assert rm.next_concept() == "journal"


def test_evidence_is_kept():
    rm = ReaderModel(make_explainer(SPECS))
    assert rm.set("pages", "known", "I already know pages", seq=3) is True
    assert rm.set("pages", "known", "I already know pages", seq=3) is False
    e = rm.entry("pages")
    assert (e.state, e.evidence, e.seq) == ("known", "I already know pages", 3)


def test_override_unskips_and_rejects_bad_values():
    rm = ReaderModel(make_explainer(SPECS))
    rm.skipped.add("wal")
    rm.set("wal", "known", "I already know the WAL")
    assert "wal" not in rm.skipped
    with pytest.raises(ValueError):
        rm.set("nope", "known")
    with pytest.raises(ValueError):
        rm.set("wal", "brilliant")
    assert set(STATES) == {"unknown", "asked", "known", "explained", "understood", "shaky"}


def test_find_concept():
    ex = make_explainer(SPECS)
    assert find_concept(ex, "wal") == "wal"
    assert find_concept(ex, "The write-ahead log") == "wal"
    assert find_concept(ex, "write-ahead log") == "wal"
    assert find_concept(ex, "pages") == "pages"
    assert find_concept(ex, "the rollback journal") == "journal"
    assert find_concept(ex, "checkpoints") == "checkpoint"
    assert find_concept(ex, "quantum chromodynamics") is None
    assert find_concept(ex, "") is None


def test_find_concepts_prefers_ids_and_reports_ambiguity():
    from tutor.engine.reader_model import find_concepts
    from tutor.explainer import load

    from conftest import EXPLAINERS

    ex = load(EXPLAINERS / "sqlite-wal.md")
    # "wal" starts two ids: ambiguous, never guessed (it used to pick wal-index by substring).
    assert find_concepts(ex, "wal") == ["wal-file", "wal-index"]
    assert find_concept(ex, "wal") is None
    assert find_concept(ex, "wal file") == "wal-file"  # the words as an id
    assert find_concept(ex, "the WAL file") == "wal-file"
    assert find_concept(ex, "wal-index") == "wal-index"
    assert find_concept(ex, "shm") == "wal-index"  # a word of one title
    assert find_concept(ex, "journal") == "rollback-journal"
    assert find_concepts(ex, "file") == ["pages", "wal-file", "wal-index"]
    assert find_concepts(ex, "wal", strict=True) == []


def test_titles_read_well_mid_sentence():
    from tutor.engine.reader_model import in_sentence

    assert in_sentence("The rollback journal") == "the rollback journal"
    assert in_sentence("How SQLite's write-ahead log works") == "how SQLite's write-ahead log works"
    assert in_sentence("What is a page?") == "What is a page?"  # a question, quoted as a title
    # names and acronyms keep their capitals: a wrong lower case reads worse than a title's
    assert in_sentence("Unicode and UTF-8") == "Unicode and UTF-8"
    assert in_sentence("The WAL file") == "The WAL file"
    assert in_sentence("Whom to ask") == "Whom to ask"


def test_every_state_has_a_look_in_the_app_and_a_set():
    """A new State needs its outline symbol (the app) and its place in DONE / ACTIVE / unknown."""
    from tutor.app.widgets import STATE_LOOK
    from tutor.engine.reader_model import ACTIVE, DONE, State

    assert set(STATE_LOOK) == set(State)
    assert DONE | ACTIVE | {State.UNKNOWN} == set(State) and not DONE & ACTIVE
