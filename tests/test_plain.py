"""`tutor open --plain`: the real CLI as a real process (and through CliRunner), offline
and against the fake Messages API."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from tutor.cli import cli
from tutor.store import Store

from conftest import EXPLAINERS, ROOT
from fake_api import FakeAPI, http_error, text

WAL = EXPLAINERS / "sqlite-wal.md"
TUTOR = [sys.executable, "-m", "tutor"]
# What --plain prints first: the title and where help is (issue 9.15).
WAL_HEADER = "How SQLite's write-ahead log works. Type /help for the commands, /quit to leave.\n\n"


def run(args, input_text, env_extra=None, cwd=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "TUTOR_MODEL")}
    env.update(env_extra or {})
    return subprocess.run(
        TUTOR + args, input=input_text, capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=timeout
    )


def test_printf_yes_no_runs_a_guided_dialogue_and_exits_cleanly(tmp_path):
    db = tmp_path / "t.db"
    r = run(["open", str(WAL), "--plain", "--offline", "--db", str(db)], "yes\nno\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(WAL_HEADER + "I want to explain how SQLite's write-ahead log works to you. Do you already know about Pages and the database file?")
    # a claim is verified with one check first; "no" to it is taught at once
    assert "> yes\nGood. One quick question to confirm, then we move on:" in out
    assert "> no\nNo problem: let's go through it.\n\nFrom § Pages and the database file:" in out
    assert "Session saved. Resume with: tutor open" in out and "--resume" in out
    assert "\x1b" not in out and "Traceback" not in r.stderr
    # The session is in the database: 2 reader messages, 3 tutor messages, states.
    with Store.open(db) as store:
        [row] = store.list_sessions()
        msgs = store.messages(row.id)
        assert [m.role for m in msgs] == ["tutor", "reader", "tutor", "reader", "tutor"]
        assert store.concept_states(row.id)["pages"].state == "asked"

    # Running again resumes where it stopped.
    r = run(["open", str(WAL), "--plain", "--offline", "--db", str(db)], "\n")
    assert r.returncode == 0
    assert "Resuming session" in r.stderr
    assert r.stdout.startswith(WAL_HEADER + "Welcome back. We are reading § Pages and the database file (part 1 of")
    assert "(§ Pages and the database file, continued)" in r.stdout


def test_no_key_means_offline_with_a_notice(tmp_path):
    r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db")], "")
    assert r.returncode == 0
    assert "No ANTHROPIC_API_KEY set: using the offline guided mode" in r.stderr
    assert r.stderr.count("ANTHROPIC_API_KEY") == 2  # said once (message + how to set it)


def test_load_errors_are_one_clean_line(tmp_path):
    r = run(["open", str(tmp_path / "missing.md"), "--plain", "--db", str(tmp_path / "t.db")], "")
    assert r.returncode == 1
    assert r.stderr.startswith("tutor: ") and "missing.md" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntutor: 1\ntitle: [unclosed\n---\n# x\n", encoding="utf-8")
    r = run(["open", str(bad), "--plain", "--db", str(tmp_path / "t.db")], "")
    assert r.returncode == 1 and "bad.md" in r.stderr and "Traceback" not in r.stderr


def test_new_and_resume_together_is_a_usage_error(tmp_path):
    r = run(["open", str(WAL), "--new", "--resume", "abc", "--db", str(tmp_path / "t.db")], "")
    assert r.returncode == 2 and "--new" in r.stderr


def test_resume_unknown_id(tmp_path):
    r = run(["open", str(WAL), "--plain", "--resume", "deadbeef", "--db", str(tmp_path / "t.db")], "")
    assert r.returncode == 1 and "deadbeef" in r.stderr and "Traceback" not in r.stderr


def test_commands(tmp_path):
    db = tmp_path / "t.db"
    script = "\n".join(
        ["/help", "/know checkpoints", "/explain pages", "/feedback The first example is confusing.", "/progress",
         "/skip", "/bogus", "/know nothing-like-this", "/retry", "/quit", "this is never read"]
    ) + "\n"
    r = CliRunner().invoke(cli, ["open", str(WAL), "--plain", "--offline", "--db", str(db)], input=script)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "/feedback TEXT" in out  # help
    assert "Noted: you already know Checkpoints." in out
    assert "From § Pages and the database file:" in out
    assert "Thanks, your note is saved for the author." in out
    assert "Progress:" in out and "known      Checkpoints [checkpoints]" in out
    assert "Skipping Pages and the database file." in out
    assert "Unknown command /bogus" in out
    assert "no concept matches 'nothing-like-this'" in out
    assert "There is nothing to retry." in out
    assert "this is never read" not in out.split("/quit")[-1]
    with Store.open(db) as store:
        fb = store.feedback()
        assert [(f.text, f.source) for f in fb] == [("The first example is confusing.", "reader")]


def test_hostile_text_is_not_sent_to_the_terminal(tmp_path):
    md = tmp_path / "evil.md"
    md.write_text("# Evil \x1b[2J heading\n\nText with \x1b]0;pwned\x07 escapes and \x9b31m C1.\n", encoding="utf-8")
    r = run(["open", str(md), "--plain", "--offline", "--db", str(tmp_path / "t.db")], "no\n")
    assert r.returncode in (0, 1)
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\x9b" not in r.stdout


def test_plain_with_claude_against_the_fake_api(tmp_path):
    db = tmp_path / "t.db"
    with FakeAPI() as api:
        api.enqueue(
            text('I want to explain the WAL to you. Do you already know about pages?<state concept="pages" value="asked"/>', chunk_size=5),
            text('Good.<state concept="pages" value="known">yes</state><feedback concept="pages">fine</feedback> Next: the journal?'),
            http_error(529), http_error(529), http_error(529),
            text("Here is the rollback journal."),
        )
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(db)], "yes\nno\n/retry\n", env_extra=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(WAL_HEADER + "I want to explain the WAL to you. Do you already know about pages?")
    assert "Good. Next: the journal?" in out
    assert "<state" not in out and "<feedback" not in out and "fine" not in out
    assert "[error]" in out and "Type /retry" in out
    assert "Here is the rollback journal." in out
    assert "test-key" not in out + r.stderr
    with Store.open(db) as store:
        [row] = store.list_sessions()
        assert row.mode.startswith("claude:")
        assert [m.role for m in store.messages(row.id)].count("reader") == 2  # the retry resent, not duplicated
        assert [f.source for f in store.feedback()] == ["model"]


def test_ctrl_c_interrupts_a_reply_but_not_the_session(tmp_path):
    import signal
    import threading
    import time

    db = tmp_path / "t.db"
    with FakeAPI() as api:
        api.enqueue(text("Hello. Do you know pages?"), text("slow " * 200, chunk_size=5, delay=0.05))
        env = {k: v for k, v in os.environ.items() if k not in ("TUTOR_MODEL",)}
        env.update({"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url})
        p = subprocess.Popen(
            TUTOR + ["open", str(WAL), "--plain", "--db", str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(iter(lambda: p.stdout.read(1), "")), daemon=True)
        reader.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        deadline = time.time() + 20
        while "slow slow" not in "".join(out) and time.time() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        p.stdin.write("/quit\n")
        p.stdin.close()
        rc = p.wait(timeout=20)
        reader.join(5)
    text_out = "".join(out)
    assert rc == 0, p.stderr.read()
    assert "[interrupted: what arrived is saved" in text_out
    assert "Session saved. Resume with" in text_out
    with Store.open(db) as store:
        [row] = store.list_sessions()
        last = store.messages(row.id)[-1]
        assert last.role == "tutor" and last.complete is False and last.text.startswith("slow slow")


def test_bad_bytes_and_an_ascii_terminal_do_not_crash(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY",)}
    env["PYTHONIOENCODING"] = "ascii"
    p = subprocess.run(
        TUTOR + ["open", str(WAL), "--plain", "--offline", "--db", str(tmp_path / "t.db")],
        input=b"caf\xe9 \xff?\nno\n", capture_output=True, env=env, cwd=ROOT, timeout=60,
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"Traceback" not in p.stderr
    assert b"From ? The rollback journal" in p.stdout or b"From ? Pages and the database file" in p.stdout


def test_resume_a_session_of_another_file_is_refused(tmp_path):
    db = tmp_path / "t.db"
    r = run(["open", str(WAL), "--plain", "--offline", "--db", str(db)], "yes\n")
    assert r.returncode == 0
    with Store.open(db) as store:
        sid = store.list_sessions()[0].id
    other = EXPLAINERS / "git-objects.md"
    r = run(["open", str(other), "--plain", "--offline", "--resume", sid[:8], "--db", str(db)], "")
    assert r.returncode == 1
    assert f"session {sid[:8]} is a session of" in r.stderr and "--resume" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_session_that_ends_on_a_failed_reply_exits_3(tmp_path):
    """Issue 9.4: a script can tell that nobody answered (401 every call, 529 every call),
    while a failure the reader then retried successfully still exits 0."""
    from tutor.plain import EXIT_REPLY_FAILED

    assert EXIT_REPLY_FAILED == 3  # documented in --help, README and docs/engine.md
    with FakeAPI(require_key="the-right-key") as api:
        env = {"ANTHROPIC_API_KEY": "a-wrong-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "a.db")], "yes\n", env_extra=env)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "[error]" in r.stdout and "Session saved. Resume with:" in r.stdout
    assert "ended on a failed reply" in r.stderr and "exit status 3" in r.stderr
    assert "Traceback" not in r.stderr and "a-wrong-key" not in r.stdout + r.stderr

    with FakeAPI() as api:
        api.handler = lambda body: http_error(529)
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "b.db")], "/progress\n/quit\n", env_extra=env)
    assert r.returncode == 3, (r.stdout, r.stderr)  # a command after the failure is not an answer

    with FakeAPI() as api:
        api.enqueue(http_error(529), http_error(529), http_error(529), text("Do you know about pages?"))
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "c.db")], "/retry\n", env_extra=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Do you know about pages?" in r.stdout and "failed reply" not in r.stderr


# -- Markdown as plain text (issue 9.15) ---------------------------------------------------

MARKDOWN_REPLY = (
    "A **page** is a fixed-size block; the `-wal` file holds *frames*.\n"
    "Each frame is a page plus a\n`24-byte` header, see [the docs](https://sqlite.org/wal.html).\n\n"
    "## Steps\n\n1. copy the page\n2. sync it\n\n"
    "| mode | file |\n|---|---|\n| DELETE | `-journal` |\n\n"
    "```sql\nPRAGMA journal_mode=WAL;\n```\n"
    "Plain words stream as they arrive and \\*stars\\* stay."
)
MARKDOWN_PLAIN = (
    "A page is a fixed-size block; the -wal file holds frames.\n"
    "Each frame is a page plus a\n24-byte header, see the docs (https://sqlite.org/wal.html).\n\n"
    "Steps\n\n1. copy the page\n2. sync it\n\n"
    "mode | file\nDELETE | -journal\n\n"
    "    PRAGMA journal_mode=WAL;\n\n"
    "Plain words stream as they arrive and *stars* stay."
)


def test_streamed_markdown_prints_as_plain_text_whatever_the_chunking():
    from tutor.plain import PlainMarkdown, markdown_to_text

    assert markdown_to_text(MARKDOWN_REPLY) == MARKDOWN_PLAIN
    for step in (1, 2, 3, 7, 16, len(MARKDOWN_REPLY)):
        md = PlainMarkdown()
        out = "".join(md.feed(MARKDOWN_REPLY[i : i + step]) for i in range(0, len(MARKDOWN_REPLY), step)) + md.close()
        assert out == MARKDOWN_PLAIN, step
    # Prose is let out word by word, before its line ends; markup waits for its block.
    md = PlainMarkdown()
    assert md.feed("Plain prose here") == "Plain prose"
    assert md.feed(" and **bo") == " here and"
    assert md.feed("ld** too.\n\nNext") == " bold too.\n"
    assert md.close() == "\nNext"


def test_plain_mode_prints_the_title_help_and_no_markdown_syntax(tmp_path):
    with FakeAPI() as api:
        api.enqueue(text("Do you know about **pages**?", chunk_size=3), text(MARKDOWN_REPLY, chunk_size=5))
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db")], "no\n", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(WAL_HEADER + "Do you know about pages?\n")
    assert MARKDOWN_PLAIN in r.stdout
    # The offline guide quotes the explainer's own Markdown (`PRAGMA journal_mode=DELETE`).
    right = "At least three: a leaf page of the table's b-tree and a leaf page of each index's b-tree."
    r = run(["open", str(WAL), "--plain", "--offline", "--db", str(tmp_path / "o.db")], f"yes\n{right}\nno\n")
    assert "rollback journal (PRAGMA journal_mode=DELETE)." in r.stdout
    assert "`" not in r.stdout and "**" not in r.stdout


def test_after_a_rejected_key_offline_carries_on_without_quitting(tmp_path):
    """Issue 9.1 in --plain: a 401 offers /offline, which carries on in the same session."""
    db = tmp_path / "t.db"
    with FakeAPI(require_key="the-right-key") as api:
        env = {"ANTHROPIC_API_KEY": "a-wrong-key", "ANTHROPIC_BASE_URL": api.url}
        r = run(["open", str(WAL), "--plain", "--db", str(db)], "/offline\nyes\n/quit\n", env_extra=env)
        calls = len(api.requests)
    assert r.returncode == 0, r.stderr
    assert "Type /offline to carry on in the offline guided mode." in r.stdout
    assert "Carrying on in the offline guided mode (no Claude)." in r.stdout
    assert calls == 1  # nothing more was sent to the server that refused the key
    with Store.open(db) as store:
        [row] = store.list_sessions()
        assert [m.role for m in store.messages(row.id)].count("tutor") >= 2
