"""The explainer lint in `tutor check` (issue 12 item 5): each rule, on a tiny explainer,
through the real CLI; and what it must not flag."""

from __future__ import annotations

from click.testing import CliRunner

from tutor.cli import cli

from explainer_helpers import v1, write

FRONT = """
tutor: 1
title: Tiny WAL
concepts:
  - id: pages
    title: Pages
    summary: The file is made of pages.
    checks:
      - question: "What is a page?"
        answer: "A fixed-size block of the file."
        misconceptions: ["A page is a row."]
{extra_check}
  - id: wal
    title: The WAL
    summary: Changes go to a side file first.
    prerequisites: [pages]
    checks:
      - question: "Where does a change go first?"
        answer: "To the WAL file, as a new frame holding the page."
        misconceptions: ["Straight into the database."]
"""
BODY = """## Pages

The database file is a sequence of **pages**, each a fixed-size block.

## The WAL

A change is appended to the **WAL** as a **frame** that holds the new page.
"""


def check(tmp_path, front, body=BODY, name="x.md"):
    path = write(tmp_path, v1(front, body), name)
    r = CliRunner().invoke(cli, ["check", str(path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return path, [ln for ln in r.output.splitlines() if ": warning:" in ln]


def test_a_check_that_tests_a_later_section_is_named_with_that_section(tmp_path):
    extra = '      - question: "What does a frame hold?"\n        answer: "One page."\n        misconceptions: ["A row."]'
    path, warnings = check(tmp_path, FRONT.replace("{extra_check}", extra))
    [w] = warnings
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if 'answer: "One page."' in t)
    assert w == (f"{path}:{line}: warning: check 2 of 'pages' rests on what only a later section explains: "
                 "\"frame\" ('wal'); move the check there, or explain it in § Pages")
    assert CliRunner().invoke(cli, ["check", "--strict", str(path)]).exit_code == 1


def test_checks_that_use_their_own_or_earlier_sections_are_not_flagged(tmp_path):
    _, warnings = check(tmp_path, FRONT.replace("{extra_check}", ""))
    assert warnings == []


def test_a_reference_answer_copied_from_its_section_is_flagged(tmp_path):
    body = BODY.replace("each a fixed-size block.", "each a fixed-size block. Every page of one database has the same size in bytes, set when it is made.")
    extra = ('      - question: "Do pages differ in size?"\n'
             '        answer: "No. Every page of one database has the same size in bytes, set when it is made."\n'
             '        misconceptions: ["Yes."]')
    _, warnings = check(tmp_path, FRONT.replace("{extra_check}", extra), body)
    assert len(warnings) == 1 and "copies a sentence of § Pages word for word" in warnings[0]


def test_a_term_used_before_its_definition_is_flagged_unless_the_text_says_it_comes_later(tmp_path):
    early = BODY.replace("each a fixed-size block.", "each a fixed-size block. A frame is how changes travel.")
    path, warnings = check(tmp_path, FRONT.replace("{extra_check}", ""), early)
    [w] = warnings
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "A frame is how" in t)
    assert w.startswith(f"{path}:{line}: warning: \"frame\" is used in § Pages before its definition in § The WAL")
    pointed = BODY.replace("each a fixed-size block.", "each a fixed-size block. Changes travel in frames (the next section).")
    _, warnings = check(tmp_path, FRONT.replace("{extra_check}", ""), pointed, "y.md")
    assert warnings == []


def test_a_check_without_misconceptions_is_flagged(tmp_path):
    front = FRONT.replace("{extra_check}", "").replace('        misconceptions: ["Straight into the database."]\n', "")
    _, warnings = check(tmp_path, front)
    [w] = warnings
    assert "check \"Where does a change go first?\" of wal lists no misconceptions" in w
