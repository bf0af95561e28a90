"""Offline section search: FTS5 + bm25 over the explainer's passages."""

from __future__ import annotations

import pytest

from tutor.engine.search import SectionIndex, blocks, passages, query_terms
from tutor.explainer import load

from conftest import EXPLAINERS


@pytest.fixture(scope="module")
def wal_index():
    return SectionIndex(load(EXPLAINERS / "sqlite-wal.md"))


@pytest.mark.parametrize(
    "question,heading",
    [
        ("When does a checkpoint happen?", "Checkpoints"),
        ("what is a page?", "Pages and the database file"),
        ("what is the -shm file for?", "The wal-index and the -shm file"),
        ("is synchronous=NORMAL safe?", "Durability and PRAGMA synchronous"),
        ("what is a hot journal", "The rollback journal"),
    ],
)
def test_questions_find_their_section(wal_index, question, heading):
    hits = wal_index.search(question, limit=1)
    assert hits and hits[0].heading == heading


def test_prose_is_preferred_to_code(wal_index):
    hit = wal_index.search("what is a page?", limit=1)[0]
    assert not hit.passage.lstrip().startswith("```")


def test_no_terms_or_no_match(wal_index):
    assert wal_index.search("what is the?") == []
    assert wal_index.search("xylophone quasar") == []
    # FTS5 syntax and quotes in a question are quoted into phrases: never an error, never SQL.
    for q in ['"; DROP TABLE passages; --', "NEAR(a b) OR *", 'a"b', "^col:x"]:
        assert isinstance(wal_index.search(q), list)
    assert wal_index.search("checkpoint")[0].heading == "Checkpoints"


def test_query_terms():
    assert query_terms("What is the -wal file's frame?") == ["wal", "file", "frame"]
    assert query_terms("how does it work") == ["work"]


def test_blocks_and_passages():
    md = "Intro:\n\nFirst para\nstill first.\n\n```\ncode\n\nmore code\n```\n\n## Heading\n\nLast."
    assert blocks(md) == ["Intro:", "First para\nstill first.", "```\ncode\n\nmore code\n```", "## Heading", "Last."]
    assert passages(md)[0].startswith("Intro:\n\nFirst para")


def test_a_term_in_every_passage_goes_to_the_section_that_names_it(tmp_path):
    """bm25 gives a term found in most passages no weight (every score ~0): the topic of the
    whole document, like "explainer" in tutor's README. Then the heading decides, not rowid."""
    from tutor.engine.offline import best_passage

    doc = tmp_path / "x.md"
    doc.write_text(
        "# Install\n\nOn PyPI the name is taken, so this is **widget-tools**; the widgets command is still widget.\n\n"
        "# Usage\n\nRun widget on a widget file to check the widget and its widgets.\n\n"
        "# The widget format\n\nA widget is a YAML file with a name, a size and a colour, read by the widget tool when it starts.\n",
        encoding="utf-8",
    )
    ex = load(doc)
    hit = best_passage(SectionIndex(ex), ex, "what is a widget?")
    assert hit is not None and hit.heading == "The widget format" and hit.passage.startswith("A widget is")
