"""`tutor compile` with Claude, against the fake Messages API through the real SDK and CLI.

Scripts: outline -> 2 answered + 1 skipped question -> valid explainer; invalid then
repaired; still invalid -> draft + errors saved beside the target; resume; long notes.
"""

from __future__ import annotations

import pytest

from tutor.explainer import load

from compile_helpers import NO_FOLLOW_UPS, OUTLINE_REPLY, claude_env, compile_db, explainer_reply, run_cli
from fake_api import http_error, prompt_too_long, text


def _user_texts(body: dict) -> str:
    out = []
    for m in body["messages"]:
        for b in m["content"]:
            out.append(b.get("text", ""))
    return "\n".join(out)


def test_outline_two_answers_one_skip_then_valid_explainer(fake_api, notes, tmp_path):
    fake_api.enqueue(text(OUTLINE_REPLY, chunk_size=40), NO_FOLLOW_UPS, text(explainer_reply(), chunk_size=64))
    out = tmp_path / "wal.md"
    r = run_cli(
        ["compile", str(notes), "-o", str(out)],
        input="4096 bytes\nYes, briefly: it is the default journal mode\n\n",
        env=claude_env(fake_api, tmp_path / "home"),
    )
    assert r.exit_code == 0, r
    # The outline was shown, then each question, one at a time.
    assert "pages - Pages" in r.stdout and "Not covered yet" in r.stdout
    assert "<outline>" not in r.stdout and "<question>" not in r.stdout
    for n, q in enumerate(["How big is a page", "rollback journal", "default checkpoint threshold"], 1):
        assert f"Question {n} of 3: " in r.stdout and q in r.stdout
    assert r.stdout.index("Question 1 of 3") < r.stdout.index("Question 2 of 3") < r.stdout.index("Question 3 of 3")

    exp = load(out)
    assert [c.id for c in exp.concepts] == ["pages", "wal", "checkpoints"]
    assert "Note to any AI assistant" in exp.preamble  # added although the model left it out
    assert "1 gap(s) marked [GAP: ...]" in r.stderr
    assert not out.with_name("wal.draft.md").exists()

    # Three requests: outline, a follow-up round on the two answers (nothing to ask), then the
    # write with the answers and the skipped question.
    assert len(fake_api.requests) == 3
    assert "Follow-up round 1 of 2" in _user_texts(fake_api.bodies[1])
    write = _user_texts(fake_api.bodies[2])
    assert "<answer>4096 bytes</answer>" in write
    assert "<answer>Yes, briefly: it is the default journal mode</answer>" in write
    assert "- What is the default checkpoint threshold?" in write  # skipped -> a gap to mark
    # What the model is asked for (issue 13.5): audience and goal first, misconceptions
    # proposed for the author to confirm, check questions that apply or predict
    outline_ask = _user_texts(fake_api.bodies[0])
    assert "who the readers are and what they should be able to do afterwards, ask that first" in outline_ask
    assert "for the author to confirm" in outline_ask
    system = fake_api.bodies[0]["system"][0]["text"]
    assert "apply or predict" in system and "answerable from its own section or\n   earlier ones" in system
    assert "[GAP: the notes say ..., the answer says ... -- which is right?]" in system
    # Prompt caching: the notes block carries the breakpoint, and the second call reads it.
    for body in fake_api.bodies:
        notes_blocks = [b for b in body["messages"][0]["content"] if "<notes file=" in b.get("text", "")]
        assert len(notes_blocks) == 1 and notes_blocks[0]["cache_control"] == {"type": "ephemeral"}
    assert fake_api.requests[0].usage["cache_creation_input_tokens"] > 0
    for later in fake_api.requests[1:]:
        assert later.usage["cache_read_input_tokens"] >= fake_api.requests[0].usage["cache_creation_input_tokens"]

    # The Q&A is in the database.
    with compile_db(tmp_path) as db:
        rows = db.execute("SELECT seq, status, answer FROM compile_questions ORDER BY seq").fetchall()
        status = db.execute("SELECT status FROM compiles").fetchall()
    assert rows == [(1, "answered", "4096 bytes"), (2, "answered", "Yes, briefly: it is the default journal mode"), (3, "skipped", None)]
    assert status == [("done",)]


def test_invalid_then_repaired(fake_api, notes, tmp_path):
    fake_api.enqueue(OUTLINE_REPLY, text(explainer_reply(prereq="ghost")), text(explainer_reply(fence=False)))
    out = tmp_path / "wal.md"
    r = run_cli(["compile", str(notes), "-o", str(out), "--no-questions"], env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    assert "Question 1" not in r.stdout
    assert "ghost" in r.stderr and "repair" in r.stderr
    assert "(after one repair)" in r.stderr
    assert [c.id for c in load(out).concepts] == ["pages", "wal", "checkpoints"]
    assert len(fake_api.requests) == 3
    repair = fake_api.bodies[2]["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert "prerequisites: [ghost]" in repair[1]["content"][0]["text"]  # its own draft, sent back
    assert "ghost" in repair[2]["content"][0]["text"] and "line " in repair[2]["content"][0]["text"]
    # --no-questions: the questions were recorded but not asked.
    with compile_db(tmp_path) as db:
        assert {s for (s,) in db.execute("SELECT status FROM compile_questions")} == {"not_asked"}


def test_still_invalid_saves_draft_and_errors(fake_api, notes, tmp_path):
    bad = explainer_reply(prereq="ghost")
    fake_api.enqueue(OUTLINE_REPLY, bad, bad)
    out = tmp_path / "wal.md"
    r = run_cli(["compile", str(notes), "-o", str(out), "--no-questions"], env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 1, r
    assert not out.exists()
    draft, errors = tmp_path / "wal.draft.md", tmp_path / "wal.errors.txt"
    assert draft.exists() and errors.exists()
    assert "prerequisites: [ghost]" in draft.read_text()
    err_lines = errors.read_text().strip().splitlines()
    assert err_lines and all(line.startswith(str(draft)) for line in err_lines)
    assert any("ghost" in line for line in err_lines)
    assert "tutor: " in r.stderr and "still invalid" in r.stderr and "wal.draft.md" in r.stderr
    assert "Traceback" not in r.stderr
    with compile_db(tmp_path) as db:
        assert db.execute("SELECT status FROM compiles").fetchall() == [("failed",)]


def test_stop_asking_and_resume_after_a_failed_write(fake_api, notes, tmp_path):
    env = claude_env(fake_api, tmp_path / "home")
    out = tmp_path / "wal.md"
    # First run: one answer, then `stop`; the write step fails (server errors after retries).
    fake_api.enqueue(OUTLINE_REPLY, *[http_error(500)] * 3)
    r = run_cli(["compile", str(notes), "-o", str(out)], input="4096 bytes\nstop\n", env=env)
    assert r.exit_code == 1, r
    assert "Question 2 of 3" in r.stdout and "Question 3 of 3" not in r.stdout
    assert "tutor: Claude returned an error (500" in r.stderr
    # Issue 9.9: an author's next step, not the reader's "your message was kept".
    assert "run the same command with --resume" in r.stderr and "message was kept" not in r.stderr
    assert not out.exists()
    # Resume: no new outline request, no questions asked again, the answer is reused.
    n = len(fake_api.requests)
    fake_api.enqueue(explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(out), "--resume"], input="", env=env)
    assert r.exit_code == 0, r
    assert "Resuming compile" in r.stderr and "Question" not in r.stdout
    assert len(fake_api.requests) == n + 1
    assert "<answer>4096 bytes</answer>" in _user_texts(fake_api.bodies[-1])
    assert out.exists()
    # Nothing left to resume.
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "other.md"), "--resume"], env=env)
    assert r.exit_code == 1 and "no interrupted compile" in r.stderr


def test_resume_mid_questions_keeps_answers(fake_api, notes, tmp_path):
    """End of input (Ctrl-D) mid-way stops asking; answers typed so far are in the DB."""
    env = claude_env(fake_api, tmp_path / "home")
    out = tmp_path / "wal.md"
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(out)], input="4096 bytes\n", env=env)  # EOF after one answer
    assert r.exit_code == 0, r
    with compile_db(tmp_path) as db:
        rows = db.execute("SELECT status FROM compile_questions ORDER BY seq").fetchall()
    assert rows == [("answered",), ("not_asked",), ("not_asked",)]


def test_never_overwrites_without_force(fake_api, notes, tmp_path):
    out = tmp_path / "wal.md"
    out.write_text("precious\n")
    env = claude_env(fake_api, tmp_path / "home")
    r = run_cli(["compile", str(notes), "-o", str(out)], env=env)
    assert r.exit_code == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "precious\n" and fake_api.requests == []
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(out), "--force", "--no-questions"], env=env)
    assert r.exit_code == 0, r
    assert load(out).title == "How SQLite's WAL works"


def test_notes_too_long_for_the_context_fail_before_sending(fake_api, tmp_path):
    notes = tmp_path / "huge.md"
    notes.write_text("# Huge\n\n" + ("word " * 200_000), encoding="utf-8")  # ~250k tokens
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md")], env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 1
    assert "huge.md: the notes are about" in r.stderr and "tokens" in r.stderr and "Split the notes" in r.stderr
    assert "about 180,000 tokens" in r.stderr  # the 200k window the Models API reported, less room for the answer
    assert fake_api.requests == []


def test_the_context_limit_is_the_models_own(fake_api, tmp_path):
    """The window comes from the Models API (GET /v1/models/{id}): notes too long for a
    200k model go through on a 1M one; without that endpoint tutor assumes 200k."""
    notes = tmp_path / "big.md"
    notes.write_text("# Big\n\n" + ("word " * 200_000), encoding="utf-8")  # ~250k tokens
    env = claude_env(fake_api, tmp_path / "home")
    fake_api.max_input_tokens = 1_000_000
    fake_api.enqueue(OUTLINE_REPLY, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md"), "--no-questions"], env=env)
    assert r.exit_code == 0, r
    assert len(fake_api.requests) == 2

    fake_api.max_input_tokens = None  # a proxy without the Models API: 404
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "y.md"), "--no-questions"], env=env)
    assert r.exit_code == 1 and "about 180,000 tokens" in r.stderr and "Split the notes" in r.stderr
    assert len(fake_api.requests) == 2  # nothing more was sent


def test_prompt_too_long_from_the_api_is_a_clear_error(fake_api, notes, tmp_path):
    fake_api.enqueue(prompt_too_long())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md")], env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 1
    assert "too long for" in r.stderr and "context window" in r.stderr and "Split the notes" in r.stderr


def test_no_key_points_to_offline(tmp_path, notes):
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md")])
    assert r.exit_code == 1 and "ANTHROPIC_API_KEY" in r.stderr and "--offline" in r.stderr


def test_model_text_with_escapes_is_shown_as_plain_text(fake_api, notes, tmp_path):
    evil = "<outline>\x1b[2J\x1b]0;pwned\x07[bold red]x[/] ok</outline>\n<question>Really\x1b[31m?</question>"
    fake_api.enqueue(evil, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md")], input="\n", env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "[bold red]x[/] ok" in r.stdout  # markup shown literally, not interpreted
    assert "Question 1 of 1: Really?" in r.stdout


def test_ctrl_c_mid_questions_then_resume(fake_api, notes, tmp_path):
    """A real process interrupted (SIGINT) at question 2 keeps answer 1; --resume asks 2 and 3 only."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from compile_helpers import ROOT

    env = {**os.environ, **claude_env(fake_api, tmp_path / "home")}
    out = tmp_path / "wal.md"
    fake_api.enqueue(OUTLINE_REPLY)
    p = subprocess.Popen(
        [sys.executable, "-m", "tutor", "compile", str(notes), "-o", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
    )
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "Question 1 of 3" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        p.stdin.write("4096 bytes\n")
        p.stdin.flush()
        while "Question 2 of 3" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        time.sleep(0.2)  # let it block on reading the second answer
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert not out.exists()

    fake_api.enqueue(NO_FOLLOW_UPS, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(out), "--resume"], input="no, WAL first\n\n", env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    assert "Question 1 of 3" not in r.stdout and "Question 2 of 3" in r.stdout and "Question 3 of 3" in r.stdout
    assert len(fake_api.requests) == 3  # the outline was not asked for again (a follow-up round, then the write)
    write = _user_texts(fake_api.bodies[-1])
    assert "<answer>4096 bytes</answer>" in write and "<answer>no, WAL first</answer>" in write
    assert load(out).concepts


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("---\ntutor: 1\n---\nbody\n", "---\ntutor: 1\n---\nbody\n"),
        ("Here it is:\n\n```markdown\n---\ntutor: 1\n---\n\n```py\nx\n```\n```\n\nHope this helps!", "---\ntutor: 1\n---\n\n```py\nx\n```\n"),
        ("~~~\n---\ntutor: 1\n---\nx\n~~~\n", "---\ntutor: 1\n---\nx\n"),
        ("no front matter at all", "no front matter at all\n"),
    ],
)
def test_extract_document(reply, expected):
    from tutor.authoring.compile import extract_document

    assert extract_document(reply) == expected


def test_parse_outline_without_outline_tag():
    from tutor.authoring.compile_prompts import parse_outline

    outline, qs = parse_outline("1. a\n2. b\n<question> What\n is X? </question>\n<question></question>")
    assert outline == "1. a\n2. b" and qs == ["What is X?"]


def test_lone_surrogates_from_the_model_are_stored_safely(fake_api, notes, tmp_path):
    fake_api.enqueue("<outline>odd \ud800 text</outline>\n<question>Why \udc80?</question>", NO_FOLLOW_UPS, explainer_reply())
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "x.md")], input="because\n", env=claude_env(fake_api, tmp_path / "home"))
    assert r.exit_code == 0, r
    with compile_db(tmp_path) as db:
        assert db.execute("SELECT outline FROM compiles").fetchone()[0] == "odd \ufffd text"
        assert db.execute("SELECT question, answer FROM compile_questions").fetchone() == ("Why \ufffd?", "because")


def test_a_rejected_key_says_what_an_author_can_do(fake_api, notes, tmp_path):
    """Issue 9.9: compile errors used the reader's wording ("run with --offline for the guided
    mode"). A 401 points at the key or at a skeleton without one."""
    env = claude_env(fake_api, tmp_path / "home")
    fake_api.enqueue(http_error(401))
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "wal.md")], input="", env=env)
    assert r.exit_code == 1 and "Claude rejected the API key (401)" in r.stderr, r
    assert "tutor compile NOTES --offline -o FILE" in r.stderr
    assert "guided mode" not in r.stderr and "message was kept" not in r.stderr
