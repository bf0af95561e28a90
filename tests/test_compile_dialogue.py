"""`tutor compile` as a conversation (issue 13.5 and the compile half of 13.3): follow-up
questions and contradictions, structured output where the model takes it, notes on the notes,
and reference answers checked against their sections. Through the real CLI, SDK and store,
against the fake Messages API.
"""

from __future__ import annotations

import json

import pytest

from tutor.authoring.compile_prompts import FOLLOW_UP_SCHEMA, OUTLINE_SCHEMA
from tutor.explainer import load

from compile_helpers import OUTLINE_REPLY, claude_env, compile_db, explainer_reply, run_cli
from fake_api import http_error, json_reply


def _step_text(body: dict) -> str:
    """The step's own instruction: the last block of the one user message (the notes come first)."""
    return body["messages"][0]["content"][-1]["text"]


def _all_text(body: dict) -> str:
    return "\n".join(b.get("text", "") for m in body["messages"] for b in m["content"])


FOLLOW_UP_REPLY = """\
<question about="1">Is 4096 bytes the default page size, or only the size in your examples?</question>
<contradiction about="2">The notes say "SQLite normally uses a rollback journal", your answer says WAL is \
the default journal mode: which is right?</contradiction>
<question about="7">A follow-up on an answer that does not exist.</question>
<question about="1">One more.</question>
"""


def test_answers_lead_to_follow_ups_and_a_contradiction_for_at_most_two_rounds(fake_api, notes, tmp_path):
    out = tmp_path / "wal.md"
    fake_api.enqueue(
        OUTLINE_REPLY,
        FOLLOW_UP_REPLY,
        '<question about="4">And the page size of the WAL frames?</question>',
        explainer_reply(),
    )
    answers = ["4096 bytes", "Yes, it is the default journal mode", "skip",  # the outline's three questions
               "only the examples", "the notes: rollback is the default", "",  # round 1 (the third is skipped)
               "the same as the database"]  # round 2; there is no third round
    r = run_cli(["compile", str(notes), "-o", str(out)], input="\n".join(answers) + "\n", env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    # Round 1: contradictions first, at most three in all, "about" only for an answer given.
    assert "Question 4 (your notes and your answer 2 disagree): The notes say" in r.stdout
    assert "Question 5 (a follow-up to your answer 1): Is 4096 bytes the default page size" in r.stdout
    assert "Question 6 (a follow-up): A follow-up on an answer that does not exist." in r.stdout
    assert "One more." not in r.stdout
    assert "Question 7 (a follow-up to your answer 4): And the page size of the WAL frames?" in r.stdout
    assert "round 1 of 2" in r.stdout and "round 2 of 2" in r.stdout
    assert len(fake_api.requests) == 4  # outline, two follow-up rounds, write: no third round
    round1, round2, write = (_step_text(b) for b in fake_api.bodies[1:])
    assert "Follow-up round 1 of 2" in round1 and "<answer>4096 bytes</answer>" in round1
    assert "<answer>(skipped)</answer>" in round1  # "skip" skipped the third question
    assert "do not pick one" in round1 and "because" in round1  # the instruction says why
    assert "Follow-up round 2 of 2" in round2 and "<answer>the notes: rollback is the default</answer>" in round2
    assert "(follow-up to question 1) Is 4096 bytes the default page size" in write
    assert "<answer>the notes: rollback is the default</answer>" in write
    assert "an answer to a contradiction says which side is right" in write
    with compile_db(tmp_path) as db:
        rows = db.execute("SELECT seq, kind, round, about, status FROM compile_questions ORDER BY seq").fetchall()
    assert rows == [
        (1, "question", 0, None, "answered"), (2, "question", 0, None, "answered"), (3, "question", 0, None, "skipped"),
        (4, "contradiction", 1, 2, "answered"), (5, "follow_up", 1, 1, "answered"), (6, "follow_up", 1, None, "skipped"),
        (7, "follow_up", 2, 4, "answered"),
    ]
    assert load(out).concepts


def test_stop_ends_the_conversation_and_no_questions_skips_it(fake_api, notes, tmp_path):
    env = claude_env(fake_api, tmp_path / "home")
    fake_api.enqueue(OUTLINE_REPLY, FOLLOW_UP_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "a.md")], input="4096\nyes\n\nstop\n", env=env)
    assert r.exit_code == 0, r
    assert "Question 4 (your notes and your answer" in r.stdout and "Question 5" not in r.stdout
    assert len(fake_api.requests) == 3  # outline, one round, write
    # Nothing answered: nothing to follow up, so no follow-up call at all.
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "b.md")], input="\n\n\n", env=env)
    assert r.exit_code == 0 and len(fake_api.requests) == 5, r
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "c.md"), "--no-questions"], env=env)
    assert r.exit_code == 0 and len(fake_api.requests) == 7 and "Question" not in r.stdout, r


STRUCTURED_OUTLINE = {
    "concepts": [
        {"id": "pages", "title": "Pages", "summary": "The file is an array of pages.", "prerequisites": []},
        {"id": "wal", "title": "The WAL file", "summary": "Writers append page images.", "prerequisites": ["pages"]},
    ],
    "not_covered": ["the default checkpoint threshold"],
    "questions": ["Who are the readers, and what should they be able to do afterwards?", "How big is a page?"],
    "feedback": ['"I never remember the default threshold." -- a reader will ask; give the number or say where to look.'],
}
STRUCTURED_FOLLOW_UPS = {
    "follow_ups": [],
    "contradictions": [{"about": 2, "notes_say": "fixed-size pages", "answer_says": "pages vary in size",
                        "question": "Which is right: are pages fixed-size?"}],
    "feedback": [],
}


@pytest.mark.parametrize("how", ["table", "models-api"])
def test_structured_output_for_the_outline_and_follow_ups_where_the_model_takes_it(fake_api, notes, tmp_path, how):
    """A model the table marks (Sonnet 4.6), or one the Models API reports, gets the schemas;
    the JSON replies are read as the tags would be, and the write is left free-form."""
    args = ["--model", "claude-sonnet-4-6"] if how == "table" else []
    if how == "models-api":
        fake_api.structured_outputs = True  # the default model (not marked in the table) is reported to take it
    none = {"follow_ups": [], "contradictions": [], "feedback": []}
    fake_api.enqueue(json_reply(STRUCTURED_OUTLINE), json_reply(STRUCTURED_FOLLOW_UPS), json_reply(none), explainer_reply())
    out = tmp_path / "wal.md"
    r = run_cli(["compile", str(notes), "-o", str(out), *args], input="developers\npages vary in size\nfixed\n",
                env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    formats = [(b.get("output_config") or {}).get("format") for b in fake_api.bodies]
    assert formats[0] == {"type": "json_schema", "schema": OUTLINE_SCHEMA}
    assert formats[1] == {"type": "json_schema", "schema": FOLLOW_UP_SCHEMA}
    assert formats[3] is None  # the explainer itself is Markdown
    assert "fill in the reply's fields" in _step_text(fake_api.bodies[0]) and "<outline>" not in _step_text(fake_api.bodies[0])
    assert "1. pages - Pages (no prerequisites): The file is an array of pages." in r.stdout
    assert "2. wal - The WAL file (after pages)" in r.stdout and "- the default checkpoint threshold" in r.stdout
    assert "Question 1 of 2: Who are the readers" in r.stdout
    assert 'your notes:  "fixed-size pages"' in r.stdout and 'your answer: "pages vary in size"' in r.stdout
    assert "Which is right: are pages fixed-size?" in r.stdout
    assert "Notes on your notes (1 note from Claude; not in the explainer):" in r.stdout
    assert '- "I never remember the default threshold." -- a reader will ask' in r.stdout
    write = _step_text(fake_api.bodies[3])
    assert 'The notes say "fixed-size pages"; the answer to question 2 says "pages vary in size".' in write
    assert "<answer>fixed</answer>" in write


def test_a_model_without_structured_output_gets_no_schema(fake_api, notes, tmp_path):
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "wal.md"), "--model", "claude-sonnet-4-20250514"],
                input="\n\n\n", env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    assert all("output_config" not in b for b in fake_api.bodies)  # a budget-thinking model: no effort, no format
    assert "Question 3 of 3" in r.stdout  # the tags were read


def test_notes_on_the_notes_are_shown_saved_and_never_written_into_the_explainer(fake_api, notes, tmp_path):
    env = claude_env(fake_api, tmp_path / "home")
    out = tmp_path / "wal.md"
    outline = OUTLINE_REPLY + (
        '<feedback>"I never remember the default threshold." -- unclear to a reader; give the value.</feedback>\n'
        "<feedback>[bold red]markup[/]\x1b[2J -- shown as typed</feedback>\n"
    )
    fenced = explainer_reply(fence=False).replace(
        "A checkpoint copies pages from the WAL back into the database file.",
        "A checkpoint copies pages from the WAL back into the database file.\n\n```text\n<feedback>an example tag</feedback>\n```",
    )
    write = fenced + (
        '\n<feedback>"I NEVER remember the default threshold." --   unclear to a reader; give the value</feedback>\n'  # said before
        '<feedback>"A commit is just a frame with the commit flag set." -- say what a frame is first.</feedback>\n'
    )
    fake_api.enqueue(outline, *[http_error(500)] * 3)  # the first write fails: the outline's notes are kept
    r = run_cli(["compile", str(notes), "-o", str(out)], input="\n\n\n", env=env)
    assert r.exit_code == 1, r
    fake_api.enqueue(write)
    r = run_cli(["compile", str(notes), "-o", str(out), "--resume"], input="", env=env)
    assert r.exit_code == 0, r
    # Every step ends with the request, listing what was already said; the write saw the outline's notes.
    for body in fake_api.bodies:
        if body["messages"][0]["content"][-1]["text"].startswith("Final step") or "Step 1" in _step_text(body):
            assert _step_text(body).rstrip().endswith("</feedback_sent>") and "Notes already given:" in _step_text(body)
    assert '- "I never remember the default threshold."' in _step_text(fake_api.bodies[-1])
    # Shown at the end, once each, as plain text; never in the file (a tag in a code fence is the file's own).
    assert "Notes on your notes (3 notes from Claude; not in the explainer):" in r.stdout
    assert r.stdout.count("I never remember the default threshold") == 1
    assert "[bold red]markup[/] -- shown as typed" in r.stdout and "\x1b" not in r.stdout
    assert "say what a frame is first" in r.stdout
    text = out.read_text()
    assert "say what a frame is first" not in text and "default threshold.\" --" not in text
    assert "<feedback>an example tag</feedback>" in text
    with compile_db(tmp_path) as db:
        saved = db.execute("SELECT step, text FROM compile_feedback ORDER BY seq").fetchall()
    assert [s for s, _ in saved] == ["outline", "outline", "write"]


def test_check_answers_that_need_a_later_section_are_shown_with_their_line(fake_api, notes, tmp_path):
    reply = explainer_reply(fence=False).replace(
        'answer: "Every read and write works on whole pages."',
        'answer: "Every read and write works on whole pages of 8192 bytes, which checkpoints copy back."',
    )
    fake_api.enqueue(OUTLINE_REPLY, reply)
    out = tmp_path / "wal.md"
    r = run_cli(["compile", str(notes), "-o", str(out), "--no-questions"], env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    line = next(n for n, ln in enumerate(out.read_text().splitlines(), 1) if "8192 bytes" in ln)
    assert "Check answers to look at (2 warnings;" in r.stderr
    assert (f"{out}:{line}: check 1 of 'pages' rests on what only a later section explains: "
            "\"Checkpoints\" ('checkpoints'); move the check there, or explain it in § Pages") in r.stderr
    assert f"{out}:{line}: check 1 of 'pages': the reference answer states \"8192\", which no section says" in r.stderr
    assert load(out).concepts  # a warning, not a failure: the file is written


def test_a_structured_reply_that_is_not_json_falls_back_to_the_tags():
    """A reply cut short, or a proxy that took the schema and answered in tags, is still read."""
    from tutor.authoring.compile_prompts import read_follow_ups, read_outline

    got = read_outline(OUTLINE_REPLY, structured=True)
    assert got.questions[0] == "How big is a page in your examples?" and "pages - Pages" in got.outline
    cut = json.dumps(STRUCTURED_FOLLOW_UPS)[:40]
    assert read_follow_ups(cut, [], structured=True, round_no=1).questions == []

