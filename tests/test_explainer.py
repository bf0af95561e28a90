"""The loader on well-formed input: format v1 and plain Markdown."""

from __future__ import annotations

import hashlib

import pytest

from tutor.errors import ExplainerError
from tutor.explainer import AI_PREAMBLE, FORMAT_VERSION, load
from tutor.text import slug as slugify

from conftest import EXPLAINERS
from explainer_helpers import v1, write

FRONT = """
tutor: 1
title: How SQLite's write-ahead log works
summary: Why WAL lets readers and a writer work at once.
audience: Developers who use SQLite
author: Ada
concepts:
  - id: checkpoints
    title: Checkpoints
    summary: Copying the log back.
    prerequisites: [wal, pages]
    checks:
      - question: "What does a checkpoint copy?"
        answer: "Committed pages from the WAL into the database file."
        misconceptions: ["It deletes the WAL file every time"]
  - id: pages
    title: Pages and the database file
    summary: Fixed-size blocks.
    checks:
      - question: "What is a page?"
        answer: "A fixed-size block."
  - id: wal
    title: The write-ahead log
    summary: Appended pages.
    prerequisites: [pages]
    checks:
      - question: "Where do commits go?"
        answer: "To the end of the WAL."
"""

BODY = """
# How SQLite's write-ahead log works

## Pages and the database file

A database file is an array of pages.

### Page size

Usually 4096 bytes.

```text
## Not a heading: inside a fence
```

## The Write-Ahead   Log

Commits append pages.

## Checkpoints {#checkpoints}

Pages go back to the database.

## Further reading

Links.
"""


@pytest.fixture
def wal(tmp_path):
    return load(write(tmp_path, v1(FRONT, BODY)))


def test_metadata(wal):
    assert wal.format_version == FORMAT_VERSION == 1
    assert wal.title == "How SQLite's write-ahead log works"
    assert wal.summary.startswith("Why WAL")
    assert wal.audience == "Developers who use SQLite"
    assert wal.author == "Ada"
    assert not wal.plain


def test_teaching_order_is_topological_and_stable(wal):
    assert [c.id for c in wal.concepts] == ["pages", "wal", "checkpoints"]


def test_ties_keep_declaration_order(tmp_path):
    front = """
tutor: 1
title: Order
concepts:
  - {id: c, title: C, prerequisites: [a]}
  - {id: b, title: B}
  - {id: a, title: A}
  - {id: d, title: D, prerequisites: [b]}
"""
    body = "## A\n\n## B\n\n## C\n\n## D\n"
    ex = load(write(tmp_path, v1(front, body)))
    # b is declared before a, and c waits for a; d waits for b.
    assert [c.id for c in ex.concepts] == ["b", "a", "c", "d"]


def test_sections_text_and_lines(wal, tmp_path):
    src = wal.source.split("\n")
    pages = wal.concept("pages").section
    assert pages.heading == "Pages and the database file"
    assert pages.level == 2
    assert src[pages.start_line - 1] == "## Pages and the database file"
    # Subheadings stay inside; the fenced "heading" is just text.
    assert "### Page size" in pages.text and "## Not a heading" in pages.text
    assert src[pages.end_line] == "## The Write-Ahead   Log"
    assert pages.text.startswith("A database file")
    wal_sec = wal.concept("wal").section
    assert wal_sec.text == "Commits append pages."  # title match ignores case and spacing
    cp = wal.concept("checkpoints").section
    assert cp.heading == "Checkpoints"  # the {#id} attribute is not part of the heading
    assert cp.text == "Pages go back to the database."  # "Further reading" ends it
    assert src[cp.end_line] == "## Further reading"


def test_checks_and_declaration_lines(wal):
    cp = wal.concept("checkpoints")
    assert cp.prerequisites == ["wal", "pages"]
    assert cp.checks[0].answer.startswith("Committed pages")
    assert cp.checks[0].misconceptions == ["It deletes the WAL file every time"]
    assert wal.source.split("\n")[cp.line - 1].strip() == "- id: checkpoints"


def test_preamble_holds_the_ai_note(wal):
    assert wal.preamble.startswith(AI_PREAMBLE.split("\n")[0])
    assert "<feedback>" not in wal.preamble and "feedback:" in wal.preamble
    assert "# How SQLite's write-ahead log works" in wal.preamble


def test_hash_and_source(tmp_path):
    text = v1(FRONT, BODY)
    path = write(tmp_path, text)
    ex = load(path)
    assert ex.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ex.source == text
    assert ex.word_count == len(text.split())


def test_clean_file_has_no_warnings(wal):
    assert wal.warnings == []


def test_warnings(tmp_path):
    front = """
tutor: 1
title: Warnings
colour: blue
concepts:
  - id: a
    title: A
    difficulty: 3
  - id: b
    title: B
    summary: Has a check without answer.
    checks:
      - question: "Why?"
"""
    body = "## A\n\nText.\n\n## B\n\nText.\n\n## Extra {#nothing}\n"
    ex = load(write(tmp_path, v1(front, body, preamble="No note here.")))
    msgs = [(w.line, w.message) for w in ex.warnings]
    text = "\n".join(m for _, m in msgs)
    assert "unknown front-matter key 'colour'" in text
    assert ex.extra == {"colour": "blue"}
    assert "concept 'a': unknown key 'difficulty'" in text
    assert "concept 'a' has no check question" in text
    assert "concept 'a' has no summary" in text
    assert "concept 'b': check question has no reference answer" in text
    assert "heading {#nothing} matches no concept" in text
    assert "no note to AI assistants" in text
    assert (4, "unknown front-matter key 'colour' (kept, ignored)") in msgs
    assert all(w.file.endswith("doc.md") for w in ex.warnings)


def test_missing_version_key_is_a_warning(tmp_path):
    ex = load(write(tmp_path, "---\ntitle: T\nconcepts:\n  - {id: a, title: A}\n---\n\n## A\n"))
    assert not ex.plain
    assert any("no 'tutor:' format version" in w.message for w in ex.warnings)


def test_crlf_and_bom(tmp_path):
    text = "\ufeff" + v1(FRONT, BODY).replace("\n", "\r\n")
    ex = load(write(tmp_path, text))
    assert [c.id for c in ex.concepts] == ["pages", "wal", "checkpoints"]
    assert ex.concept("wal").section.text == "Commits append pages."
    assert ex.source.split("\n")[ex.concept("wal").section.start_line - 1] == "## The Write-Ahead   Log"


def test_setext_and_inline_markup_headings(tmp_path):
    front = "tutor: 1\ntitle: T\nconcepts:\n  - {id: a, title: The A thing}\n  - {id: b, title: Code b}\n"
    body = "The *A* thing\n=============\n\nalpha\n\n## Code `b`\n\nbeta\n"
    ex = load(write(tmp_path, v1(front, body)))
    a = ex.concept("a").section
    assert (a.level, a.text) == (1, "alpha")
    assert ex.source.split("\n")[a.start_line - 1] == "The *A* thing"
    assert ex.concept("b").section.text == "beta"


def test_headings_inside_quotes_and_lists_are_not_sections(tmp_path):
    front = "tutor: 1\ntitle: T\nconcepts:\n  - {id: a, title: A}\n"
    body = "## A\n\n> ## A\n\n- ## A\n\ntext\n"
    ex = load(write(tmp_path, v1(front, body)))  # no "second section" error
    assert "> ## A" in ex.concept("a").section.text


def test_ai_preamble_constant_is_plain_prose():
    assert "diagnose" in AI_PREAMBLE.lower()
    assert "one concept at a time" in AI_PREAMBLE
    assert "<feedback>" not in AI_PREAMBLE  # pasted into a chatbot there is no hidden channel
    assert all(line.startswith("> ") for line in AI_PREAMBLE.split("\n"))


# ----------------------------------------------------------------- plain Markdown


def test_plain_markdown_headings_become_concepts(tmp_path):
    text = "Intro text.\n\n# My Project\n\nAbout.\n\n## Install\n\npip it.\n\n## Usage\n\nrun\n\n### Install\n\nagain\n"
    ex = load(write(tmp_path, text, "README.md"))
    assert ex.plain
    assert ex.title == "My Project"  # a lone top heading is the title, not its own first concept
    assert ex.preamble == "Intro text.\n\n# My Project\n\nAbout."
    # A repeated heading is named with its parent (issue 9.6).
    assert [c.title for c in ex.concepts] == ["Install", "Usage", "Usage › Install"]
    assert [c.id for c in ex.concepts] == ["install", "usage", "usage-install"]
    assert [c.section.level for c in ex.concepts] == [2, 2, 3]
    assert all(c.prerequisites == [] for c in ex.concepts)
    usage = ex.concept("usage").section
    assert usage.text == "run"  # in plain mode every heading is a concept, so ### ends it
    assert (usage.start_line, usage.end_line) == (11, 14)
    assert ex.concept("usage-install").section.text == "again"


def test_plain_markdown_without_headings_is_one_concept(tmp_path):
    ex = load(write(tmp_path, "Just a note\nwith two lines.\n", "shopping-list.md"))
    assert ex.plain
    assert [(c.id, c.title) for c in ex.concepts] == [("shopping-list", "shopping-list")]
    assert ex.concepts[0].section.text == "Just a note\nwith two lines."
    assert (ex.concepts[0].section.start_line, ex.concepts[0].section.end_line) == (1, 2)


def test_plain_markdown_with_blog_front_matter(tmp_path):
    text = "---\ntitle: My post\ndate: 2024-01-02\ntags: [a, b]\n---\n\n## One\n\nx\n"
    ex = load(write(tmp_path, text))
    assert ex.plain and ex.title == "My post"
    assert ex.concepts[0].section.start_line == 7
    assert ex.extra["tags"] == ["a", "b"]


def test_leading_thematic_break_is_not_front_matter(tmp_path):
    ex = load(write(tmp_path, "---\n\nSome text\n\n## Part\n\nbody\n"))
    assert ex.plain and [c.id for c in ex.concepts] == ["part"]
    ex = load(write(tmp_path, "---\nFoo\n---\n\nbar\n"))  # setext heading, not YAML
    assert ex.plain and ex.title == "Foo"


def test_slugify():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("Ünïcödé  héading") == "unicode-heading"
    assert slugify("日本語") == "section"


def test_heading_attribute_sets_plain_id(tmp_path):
    ex = load(write(tmp_path, "## Intro {#start}\n\nx\n"))
    assert ex.concepts[0].id == "start" and ex.concepts[0].title == "Intro"


# ----------------------------------------------------------------- the samples


SAMPLES = sorted(EXPLAINERS.glob("*.md"))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_samples_load_as_v1(path):
    try:
        ex = load(path)
    except ExplainerError as e:  # pragma: no cover - show the problems
        pytest.fail(str(e))
    assert not ex.plain
    assert 5 <= len(ex.concepts) <= 10
    assert all(c.checks for c in ex.concepts)


def test_unknown_values_are_json_safe(tmp_path):
    text = "---\ntitle: Post\ndate: 2024-01-02 10:00:00\nblob: !!binary gIGC\nset: !!set {a: null}\n---\n\n# P\n"
    ex = load(write(tmp_path, text))
    assert ex.extra["date"].startswith("2024-01-02")
    assert ex.extra["set"] == ["a"]
    assert isinstance(ex.extra["blob"], str)
    assert '"date"' in ex.model_dump_json()


def test_title_match_ignores_inline_markup(tmp_path):
    front = "tutor: 1\ntitle: T\nconcepts:\n  - {id: a, title: 'The `A` *thing*'}\n"
    ex = load(write(tmp_path, v1(front, "## The A thing\n\nbody\n")))
    assert ex.concept("a").section.text == "body"


def test_body_word_count_excludes_front_matter(tmp_path):
    ex = load(write(tmp_path, "---\ntutor: 1\ntitle: one two three\nconcepts: [{id: a, title: A}]\n---\n## A\n\nfour five\n"))
    assert ex.body_line == 6
    assert ex.body_word_count == 4  # "##", "A", "four", "five"
    assert ex.word_count > ex.body_word_count
    plain = load(write(tmp_path, "\n\n# T\n\nx y\n", "p.md"))
    assert plain.body_word_count == plain.word_count == 4


def test_typos_get_a_suggestion(tmp_path):
    front = "tutor: 1\ntitle: T\nconcepts:\n  - {id: pages, title: P}\n  - {id: wal, title: W, prerequisites: [page]}\n"
    with pytest.raises(ExplainerError) as info:
        load(write(tmp_path, v1(front, "## P\n\n## W\n")))
    assert "unknown prerequisite 'page'; did you mean 'pages'?" in str(info.value)
    ex = load(write(tmp_path, v1(front.replace("[page]", "[pages]"), "## P\n\n## W\n\n## Extra {#wall}\n")))
    assert any("{#wall} matches no concept in the front matter; did you mean 'wal'?" in w.message for w in ex.warnings)
