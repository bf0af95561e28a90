"""Bugs found by using every non-app command from a shell, each pinned by a test.

Real CLI (click runner through tutor.cli, or the installed entry point), real SQLite files,
real explainer files; nothing of ours is mocked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from tutor.cli import cli
from tutor.explainer import load
from tutor.store import Store

from compile_helpers import run_cli
from conftest import EXPLAINERS

WAL = EXPLAINERS / "sqlite-wal.md"


def _has_control(text: str) -> bool:
    """Terminal controls: C0 (but newline and tab), DEL, C1, and bidi overrides."""
    return any(
        (ord(ch) < 32 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F or ch in "\u202a\u202b\u202c\u202d\u202e"
        for ch in text
    )


def _bundle_with_hostile_name(tmp_path: Path) -> Path:
    """A bundle whose file name and title carry terminal escapes (a title-setting OSC)."""
    db = tmp_path / "reader.db"
    with Store.open(db) as store:
        exp = load(WAL)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, "pages", "Say the page size.", "reader")
    r = run_cli(["feedback", "export", "--yes", str(WAL), "-o", "-", "--db", str(db)])
    assert r.exit_code == 0, r
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    for line in lines:
        if "file" in line:
            line["file"] = "\x1b]0;pwned\x07evil\x9b2J\u202e.md"
    bundle = tmp_path / "evil.jsonl"
    bundle.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return bundle


def test_feedback_import_never_prints_escapes_from_a_bundle_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = _bundle_with_hostile_name(tmp_path)
    r = run_cli(["feedback", "import", str(bundle), "--db", "a.db"])
    assert r.exit_code == 0, r
    assert not _has_control(r.stdout + r.stderr), r
    assert "evil" in r.stdout and "no such file here" in r.stdout
    overview = run_cli(["feedback", "--db", "a.db"])
    assert overview.exit_code == 0 and "evil" in overview.stdout
    assert not _has_control(overview.stdout), overview
    as_json = run_cli(["feedback", "--json", "--db", "a.db"])
    (row,) = json.loads(as_json.stdout)
    assert not _has_control(row["path"])  # what was stored is clean too, not just what is shown


def _one_session(db: Path) -> str:
    r = run_cli(["open", str(WAL), "--plain", "--offline", "--db", str(db)], input="no\n\n")
    assert r.exit_code == 0, r
    with Store.open(db) as store:
        return store.latest_session().id


def test_export_into_a_folder_writes_the_default_name_there(tmp_path):
    db = tmp_path / "t.db"
    sid = _one_session(db)
    out = tmp_path / "exports"
    out.mkdir()
    r = run_cli(["export", "--last", "-o", str(out), "-f", "html", "--db", str(db)])
    assert r.exit_code == 0, r
    (written,) = out.iterdir()
    assert written.name.endswith(f"{sid[:8]}.html") and written.read_text().startswith("<!DOCTYPE html>")
    assert str(written) in r.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_export_to_a_missing_folder_is_one_clear_line(tmp_path):
    db = tmp_path / "t.db"
    _one_session(db)
    r = run_cli(["export", "--last", "-o", str(tmp_path / "no-such-dir" / "t.md"), "--db", str(db)])
    assert r.exit_code == 1 and "no-such-dir" in r.stderr and "cannot write" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))


def check(*args: str):
    """`tutor check` as shipped: it ends with ctx.exit(code), so run it standalone."""
    r = CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)
    return r


def test_check_a_folder_checks_the_markdown_files_in_it(tmp_path):
    folder = tmp_path / "explainers"
    folder.mkdir()
    (folder / "a.md").write_text(WAL.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b.markdown").write_text("# Plain\n\ntext\n", encoding="utf-8")
    (folder / "c.md").write_text("---\ntutor: 1\ntitle: [oops\n---\n", encoding="utf-8")
    (folder / "notes.txt").write_text("not markdown", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "d.md").write_text("# Deeper\n", encoding="utf-8")
    r = check("-q", str(folder))
    assert r.exit_code == 1, r
    assert f"{folder / 'a.md'}: OK" in r.output and f"{folder / 'b.markdown'}: OK" in r.output
    assert f"{folder / 'c.md'}:3:" in r.output
    assert "notes.txt" not in r.output and "d.md" not in r.output
    assert "3 files: 2 OK, 1 with errors" in r.output
    data = json.loads(check("--json", str(folder)).stdout)
    assert [Path(d["path"]).name for d in data] == ["a.md", "b.markdown", "c.md"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = check(str(empty))
    assert r.exit_code == 1 and f"{empty}: no Markdown files" in r.output


def test_check_expands_a_quoted_glob(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("one.md").write_text("# One\n", encoding="utf-8")
    Path("two.md").write_text("# Two\n", encoding="utf-8")
    r = check("-q", "*.md")
    assert r.exit_code == 0, r
    assert "one.md: OK - One" in r.output and "two.md: OK - Two" in r.output
    r = check("*.markdown")
    assert r.exit_code == 1 and "*.markdown: no files match" in r.output


def test_offline_questions_about_question_titles_have_one_question_mark(tmp_path):
    faq = tmp_path / "faq.md"
    faq.write_text("# FAQ\n\n## What is a page?\n\nA block.\n\n## Why journal?\n\nCrashes.\n\n## Done!\n\nYes.\n", encoding="utf-8")
    r = run_cli(["open", str(faq), "--plain", "--offline", "--db", str(tmp_path / "t.db")],
                input="maybe later\nyes\n/know Done!\n/skip\n")
    assert r.exit_code == 0, r
    out = r.stdout
    assert "the first is “What is a page?”. Do you already know that part? (yes" in out
    assert "do you already know about What is a page? (Or ask" in out
    assert "Next: Why journal? Do you already know about it?" in out
    assert "Noted: you already know Done!" in out
    for doubled in ("??", "?.", "!.", "!?"):
        assert doubled not in out.replace("(yes / no / not sure)", ""), doubled


def _pty_session(args: list[str], keys: list[bytes], tmp_path: Path, *, prompt: bytes = b"> ",
                 done: bytes = b"Resume with", status: list[int] | None = None) -> str:
    """Run the installed CLI on a real pseudo-terminal, typing `keys` one line at a time
    (each after the next `prompt`); the exit status goes into `status` if given."""
    import os
    import pty
    import select
    import signal
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env.update(TERM="xterm", COLUMNS="100", LINES="40")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "tutor", *args], env)
    out = b""

    def pump(done, timeout: float = 20) -> None:
        """Read what the program writes until done(out) or the timeout."""
        nonlocal out
        end = time.monotonic() + timeout
        while not done(out) and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child exited and closed the terminal
                    return
                if not chunk:
                    return
                out += chunk

    try:
        pump(lambda o: o.endswith(prompt))
        for k in keys:
            before = len(out)
            if k == b"\x03":  # Ctrl-C: the signal the terminal sends. A signal that lands between
                time.sleep(0.3)  # Python's check and its read() is only seen at the next one: let
                os.kill(pid, signal.SIGINT)  # the prompt's read start first, as a person would.
            else:
                os.write(fd, k)
            pump(lambda o: done in o[before:] or (len(o) > before + len(k) and o.endswith(prompt)))  # noqa: B023 (called at once)
        pump(lambda o: done in o, timeout=10)
        pump(lambda o: False, timeout=0.3)  # anything after it
    finally:
        end = time.monotonic() + 10
        while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < end:
            pump(lambda o: False, timeout=0.1)
        st = waited[1]
        if waited[0] == 0:  # never leave a stuck child behind
            os.kill(pid, signal.SIGKILL)
            _, st = os.waitpid(pid, 0)
        os.close(fd)
        if status is not None:
            status.append(os.waitstatus_to_exitcode(st))
    return out.decode("utf-8", "replace")


def test_plain_prompt_on_a_terminal_has_line_editing_and_no_stray_blank_lines(tmp_path):
    db = tmp_path / "t.db"
    left = b"\x1b[D"
    out = _pty_session(
        ["open", str(WAL), "--plain", "--offline", "--db", str(db)],
        [b"/progrss" + left * 2 + b"e\r", b"what is a chckpoint" + left * 7 + b"e\x05?\r", b"/quit\r"],
        tmp_path,
    )
    assert "Progress:" in out, out  # the edited command was understood
    assert "Unknown command" not in out
    with Store.open(db) as store:
        msgs = store.messages(store.latest_session().id)
    readers = [m.text for m in msgs if m.role == "reader"]
    assert readers == ["what is a checkpoint?"], readers
    # The reply starts on the line after the reader's Enter, not after an empty line.
    assert "\r\n\r\nProgress:" not in out, repr(out)


HELP_SCREENS = [[], ["open"], ["check"], ["compile"], ["feedback"], ["feedback", "export"], ["feedback", "import"],
                ["feedback", "show"], ["sessions"], ["sessions", "rm"], ["search"], ["export"], ["where"]]


def test_every_help_screen_is_light_complete_and_has_examples():
    import subprocess
    import sys

    from conftest import ROOT

    code = (
        "import io, sys, contextlib\n"
        "from tutor.cli import main\n"
        f"screens = {HELP_SCREENS!r}\n"
        "for s in screens:\n"
        "    sys.argv = ['tutor', *s, '--help']\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        try:\n            main()\n        except SystemExit:\n            pass\n"
        "    print('=====', ' '.join(s)); print(buf.getvalue())\n"
        "heavy = {'textual', 'anthropic', 'pydantic', 'yaml', 'markdown_it', 'sqlite_utils', 'httpx2', 'rich'}\n"
        "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:] + proc.stderr
    screens = dict(part.split("\n", 1) for part in proc.stdout.split("===== ")[1:])
    for name, text in screens.items():
        commands = text.split("Commands:")[1] if "Commands:" in text else ""
        assert not [ln for ln in commands.splitlines() if ln.rstrip().endswith("...")], f"tutor {name} --help truncates:\n{text}"
        options = text.split("Options:")[1].split("Commands:")[0]
        for line in options.splitlines():
            opt = line.strip()
            if opt.startswith("-"):
                described = opt.split("  ", 1)[1].strip() if "  " in opt else "(wrapped)"
                assert not described.startswith("["), f"tutor {name}: option without help: {opt}"
        if name and name not in ("feedback show",):
            assert f"tutor {name} " in text.split("Options:")[0], f"tutor {name} --help has no example:\n{text}"


def test_resume_hints_can_be_pasted_into_a_shell(tmp_path):
    import shlex

    folder = tmp_path / "my notes"
    folder.mkdir()
    doc = folder / "it's.md"
    doc.write_text("# One\n\ntext\n", encoding="utf-8")
    other = tmp_path / "other.md"
    other.write_text("# Two\n\ntext\n", encoding="utf-8")
    db = str(tmp_path / "t.db")
    r = run_cli(["open", str(doc), "--plain", "--offline", "--db", db], input="no\n")
    hint = r.stdout.strip().splitlines()[-1]
    assert hint.startswith("Session saved. Resume with: ")
    argv = shlex.split(hint.split(": ", 1)[1])
    assert argv[:3] == ["tutor", "open", str(doc)] and argv[3] == "--resume"
    # Resuming that session with another file points at the right command, quoted too.
    r = run_cli(["open", str(other), "--plain", "--offline", "--db", db, "--resume", argv[4]])
    assert r.exit_code == 1
    run_line = [ln for ln in r.stderr.splitlines() if ln.startswith("Run: ")][0]
    assert shlex.split(run_line[5:])[:3] == ["tutor", "open", str(doc)]


def test_export_does_not_overwrite_a_file_without_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "t.db"
    _one_session(db)
    precious = tmp_path / "explainer.md"
    precious.write_text("# My own work\n", encoding="utf-8")
    r = run_cli(["export", "--last", "-o", str(precious), "--db", str(db)])
    assert r.exit_code == 1 and f"{precious}: already exists" in r.stderr and "--force" in r.stderr
    assert precious.read_text(encoding="utf-8") == "# My own work\n"
    r = run_cli(["export", "--last", "-o", str(precious), "--force", "--db", str(db)])
    assert r.exit_code == 0 and precious.read_text(encoding="utf-8").startswith("# How SQLite")
    # The default name is ours: exporting the same session again just refreshes it.
    for _ in range(2):
        r = run_cli(["export", "--last", "-f", "html", "--db", str(db)])
        assert r.exit_code == 0, r


def test_sessions_table_stays_aligned_with_wide_titles(tmp_path):
    import unicodedata

    def cols(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)

    db = str(tmp_path / "t.db")
    for name, title in [("jp", "日本語のテキスト処理と文字コードの基礎について詳しく学ぶための入門ガイド"),
                        ("em", "Émoji 😀 guide"), ("pl", "Plain")]:
        (tmp_path / f"{name}.md").write_text(f"# {title}\n\ntext\n", encoding="utf-8")
        assert run_cli(["open", str(tmp_path / f"{name}.md"), "--plain", "--offline", "--db", db], input="no\n").exit_code == 0
    r = run_cli(["sessions", "--db", db])
    lines = r.stdout.splitlines()
    header = lines[0]
    for line in lines[1:]:
        # STARTED starts in the same terminal column on every row, and the title is cut to fit.
        start = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line).start()
        assert cols(line[:start]) == cols(header[: header.index("STARTED")]), r.stdout
    assert "…" in r.stdout


def test_export_header_counts_read_naturally(tmp_path):
    db = tmp_path / "t.db"
    with Store.open(db) as store:
        exp = load(WAL)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_message(sid, "reader", "hello")
    md = run_cli(["export", "--last", "-o", "-", "--db", str(db)]).stdout
    assert "- 1 reader turn, 1 message" in md, md
    page = run_cli(["export", sid[:8], "-f", "html", "-o", "-", "--db", str(db)]).stdout
    assert "1 reader turn" in page and "1 reader turns" not in page


def test_reopening_a_finished_explainer_says_a_new_session_starts(tmp_path):
    doc = tmp_path / "one.md"
    doc.write_text("# One\n\ntext\n", encoding="utf-8")
    db = str(tmp_path / "t.db")
    first = run_cli(["open", str(doc), "--plain", "--offline", "--db", db], input="yes\n")
    assert "That's everything in One." in first.stdout
    with Store.open(db) as store:
        old = store.latest_session()
    assert old.status == "finished"
    again = run_cli(["open", str(doc), "--plain", "--offline", "--db", db], input="")
    assert again.exit_code == 0, again
    assert f"--resume {old.id[:8]}" in again.stderr and "finished" in again.stderr, again
    with Store.open(db) as store:
        assert store.count_sessions() == 2
    # --new is explicit: no notice then.
    fresh = run_cli(["open", str(doc), "--plain", "--offline", "--new", "--db", db], input="")
    assert "finished" not in fresh.stderr


def test_db_with_a_trailing_slash_is_a_folder(tmp_path):
    folder = tmp_path / "tutor-data"
    r = run_cli(["where", "--db", str(folder) + "/"])
    assert r.stdout.splitlines()[0] == str(folder / "tutor.db"), r
    r = run_cli(["open", str(WAL), "--plain", "--offline", "--db", str(folder) + "/"], input="")
    assert r.exit_code == 0, r
    assert folder.is_dir() and (folder / "tutor.db").is_file()


def test_plain_know_and_explain_without_a_current_concept_say_what_to_type(tmp_path):
    doc = tmp_path / "one.md"
    doc.write_text("# One\n\ntext\n", encoding="utf-8")
    r = run_cli(["open", str(doc), "--plain", "--offline", "--db", str(tmp_path / "t.db")], input="yes\n/explain\n/know\n")
    assert r.exit_code == 0, r
    after = r.stdout.split("> /explain", 1)[1]
    assert "Usage: /explain TOPIC (one of: one)" in after
    assert "Usage: /know TOPIC (one of: one)" in after.split("> /know", 1)[1]


def test_an_imported_transcript_cannot_be_continued(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "wal.md"
    doc.write_text(WAL.read_text(encoding="utf-8"), encoding="utf-8")
    r = run_cli(["open", str(doc), "--plain", "--offline", "--db", "reader.db"], input="no\n/feedback too long\n")
    assert r.exit_code == 0, r
    r = run_cli(["feedback", "export", "--yes", str(doc), "--with-transcripts", "-o", "b.jsonl", "--db", "reader.db"])
    assert r.exit_code == 0, r
    assert run_cli(["feedback", "import", "b.jsonl", "--db", "author.db"]).exit_code == 0
    with Store.open(tmp_path / "author.db") as store:
        (row,) = store.list_sessions()
        before = len(store.messages(row.id))
    assert row.mode == "imported"
    r = run_cli(["open", str(doc), "--plain", "--offline", "--resume", row.id[:8], "--db", "author.db"], input="hello\n")
    assert r.exit_code == 1 and "imported" in r.stderr and "tutor open" in r.stderr, r
    with Store.open(tmp_path / "author.db") as store:
        assert len(store.messages(row.id)) == before  # the reader's transcript is untouched


def test_bidi_overrides_in_titles_do_not_reach_the_terminal(tmp_path):
    doc = tmp_path / "bidi.md"
    doc.write_text("# abc\u202edef\u2066x\n\nsome text\n", encoding="utf-8")
    db = str(tmp_path / "t.db")
    assert run_cli(["open", str(doc), "--plain", "--offline", "--db", db], input="no\n").exit_code == 0
    outputs = [
        run_cli(["sessions", "--db", db]).stdout,
        run_cli(["search", "some", "--db", db]).stdout,
        check(str(doc)).output,
    ]
    for out in outputs:
        assert "abc" in out and not _has_control(out) and "\u2066" not in out, out


def test_load_errors_quoting_the_file_never_carry_terminal_escapes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # YAML's "\e" and "\a" escapes put ESC and BEL in a value without a raw control byte in the file.
    Path("esc.md").write_text(
        '---\ntutor: 1\ntitle: t\nconcepts:\n  - id: "bad\\e]0;pwn\\aid"\n    title: x\n    summary: s\n'
        '    prerequisites: ["\\e[2Jgone"]\n  - id: ok\n    title: "y"\n    summary: s\n    extra\\u202e: 1\n---\n\n## x\n\n## y\n',
        encoding="utf-8",
    )
    message = "esc.md:5: concept id 'bad\\x1b]0;pwn\\x07id' is not valid"
    r = run_cli(["feedback", "esc.md", "--db", "t.db"], input="")
    assert r.exit_code == 1 and message in r.stderr, r
    assert not _has_control(r.stderr), r
    # A reader still gets the outline (issue 9.7), with the same problem as one escaped line.
    r = run_cli(["open", "esc.md", "--plain", "--offline", "--db", "t.db"], input="")
    assert r.exit_code == 0 and message in r.stdout + r.stderr, r
    assert not _has_control(r.stdout + r.stderr), r


def test_search_for_nothing_searchable_says_so(tmp_path):
    db = tmp_path / "t.db"
    _one_session(db)
    for query in ("", "  \t"):
        r = run_cli(["search", query, "--db", str(db)])
        assert r.exit_code == 1 and "no words to search for" in r.stderr, (query, r)
    assert run_cli(["search", "pages", "--db", str(db)]).exit_code == 0


def test_ctrl_c_at_the_remove_question_is_an_interrupt_not_a_missing_answer(tmp_path):
    db = tmp_path / "t.db"
    sid = _one_session(db)
    status: list[int] = []
    out = _pty_session(["sessions", "rm", sid[:8], "--db", str(db)], [b"\x03"], tmp_path,
                       prompt=b"[y/N]: ", done=b"Nothing removed", status=status)
    assert "Nothing removed." in out and "no answer" not in out and "--yes" not in out, out
    assert status == [130]
    with Store.open(db) as store:
        assert store.count_sessions() == 1


def test_ctrl_c_at_the_plain_prompt_says_goodbye_on_its_own_line(tmp_path):
    db = tmp_path / "t.db"
    status: list[int] = []
    out = _pty_session(["open", str(WAL), "--plain", "--offline", "--db", str(db)], [b"\x03"], tmp_path, status=status)
    assert status == [130]
    assert "\r\nInterrupted. Session saved. Resume with: tutor open" in out and "> Interrupted" not in out, repr(out)


def test_reading_feedback_creates_no_database(tmp_path):
    db = tmp_path / "data" / "t.db"
    r = run_cli(["feedback", "--db", str(db)])
    assert r.exit_code == 0 and "No feedback yet." in r.stdout
    assert run_cli(["feedback", "--json", "--db", str(db)]).stdout.strip() == "[]"
    r = run_cli(["feedback", str(WAL), "--db", str(db)])
    assert r.exit_code == 0 and "No feedback yet." in r.stdout and "How SQLite" in r.stdout, r
    r = run_cli(["feedback", str(tmp_path / "missing.md"), "--db", str(db)])
    assert r.exit_code == 1 and "no such file" in r.stderr
    r = run_cli(["feedback", "export", "--yes", str(WAL), "-o", str(tmp_path / "b.jsonl"), "--db", str(db)])
    assert r.exit_code == 1 and "no sessions yet" in r.stderr and not (tmp_path / "b.jsonl").exists()
    assert not db.exists() and not db.parent.exists()


def test_one_session_is_not_driven_by_two_tutors_at_once(tmp_path):
    import os
    import subprocess
    import sys

    db = tmp_path / "t.db"
    sid = _one_session(db)
    first = subprocess.Popen(
        [sys.executable, "-m", "tutor", "open", str(WAL), "--plain", "--offline", "--db", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "Type /help" in first.stdout.readline() and first.stdout.readline() == "\n"  # title, blank line
        assert "Welcome back" in first.stdout.readline()  # it holds the session now
        with Store.open(db) as store:
            before = len(store.messages(sid))
        r = run_cli(["open", str(WAL), "--plain", "--offline", "--db", str(db)], input="no\n")
        assert r.exit_code == 1 and f"session {sid[:8]} is open in another tutor" in r.stderr, r
        assert "--new" in r.stderr
        with Store.open(db) as store:
            assert len(store.messages(sid)) == before
        r = run_cli(["open", str(WAL), "--plain", "--offline", "--new", "--db", str(db)], input="")
        assert r.exit_code == 0, r
        # Nor is it removed from under the tutor that has it open.
        stdin_before = os.fstat(0)
        r = run_cli(["sessions", "rm", sid[:8], "--yes", "--db", str(db)])
        assert r.exit_code == 1 and f"session {sid[:8]} is open in another tutor" in r.stderr, r
        assert os.fstat(0) == stdin_before  # only lock descriptors were closed
        with Store.open(db) as store:
            assert store.count_sessions() == 2
    finally:
        first.communicate("", timeout=30)
    assert first.returncode == 0
    # Once the first tutor has quit, the session opens again.
    r = run_cli(["open", str(WAL), "--plain", "--offline", "--resume", sid[:8], "--db", str(db)], input="")
    assert r.exit_code == 0, r


def test_plain_progress_is_numbered_and_numbers_name_concepts(tmp_path):
    r = run_cli(["open", str(WAL), "--plain", "--offline", "--db", str(tmp_path / "t.db")],
                input="/progress\n/know 6\n/explain 2\n/explain 99\n")
    assert r.exit_code == 0, r
    out = r.stdout
    assert " 1. asked      Pages and the database file [pages]  <- current" in out
    assert " 6. unknown    Checkpoints [checkpoints]" in out
    assert "Noted: you already know Checkpoints." in out
    assert "From § The rollback journal:" in out
    assert "/explain: no concept matches '99'" in out


def test_open_sums_up_many_author_warnings_in_two_lines(tmp_path):
    skeleton = tmp_path / "draft.md"
    r = run_cli(["compile", "--offline", str(EXPLAINERS / "notes" / "git-objects"), "-o", str(skeleton)])
    assert r.exit_code == 0, r
    n = len(load(skeleton).warnings)
    assert n > 3
    r = run_cli(["open", str(skeleton), "--plain", "--offline", "--db", str(tmp_path / "t.db")], input="")
    notes = [ln for ln in r.stderr.splitlines() if "draft.md" in ln]
    assert len(notes) == 2, r.stderr
    assert notes[0].startswith(f"{skeleton}:") and "has no check question" in notes[0]
    assert f"and {n - 1} more warnings" in notes[1] and f"tutor check {skeleton}" in notes[1]


def test_check_reads_standard_input_as_dash(tmp_path):
    r = CliRunner().invoke(cli, ["check", "-"], input=WAL.read_text(encoding="utf-8"))
    assert r.exit_code == 0 and r.output.startswith("-: OK - How SQLite's write-ahead log works"), r.output
    r = CliRunner().invoke(cli, ["check", "-"], input="---\ntutor: 1\ntitle: [oops\n---\n")
    assert r.exit_code == 1 and "-:3: invalid YAML" in r.output and "stdin.md" not in r.output, r.output
    r = CliRunner().invoke(cli, ["check", "--json", "-"], input="# Plain\n\ntext\n")
    assert json.loads(r.output)["path"] == "-"


def test_export_to_a_missing_folder_with_a_slash_writes_no_file_of_that_name(tmp_path):
    db = tmp_path / "t.db"
    _one_session(db)
    r = run_cli(["export", "--last", "-o", str(tmp_path / "exports") + "/", "--db", str(db)])
    assert r.exit_code == 1 and "exports/: no such folder" in r.stderr, r
    assert not (tmp_path / "exports").exists()


def test_author_outputs_treat_folders_as_folders_and_respect_the_umask(tmp_path, monkeypatch):
    import os
    import stat

    monkeypatch.chdir(tmp_path)
    notes = str(EXPLAINERS / "notes" / "git-objects")
    r = run_cli(["compile", "--offline", notes, "-o", "drafts/"])
    assert r.exit_code == 1 and "drafts/: no such folder" in r.stderr and not Path("drafts").exists(), r
    old = os.umask(0o022)
    try:
        r = run_cli(["compile", "--offline", notes, "-o", "draft.md"])
        assert r.exit_code == 0, r
        assert stat.S_IMODE(Path("draft.md").stat().st_mode) == 0o644  # an explainer is meant to be shared
        db = tmp_path / "t.db"
        _one_session(db)
        r = run_cli(["feedback", "export", "--yes", str(WAL), "-o", "bundles/", "--db", str(db)])
        assert r.exit_code == 1 and "bundles/: no such folder" in r.stderr and not Path("bundles").exists(), r
        Path("bundles").mkdir()
        r = run_cli(["feedback", "export", "--yes", str(WAL), "-o", "bundles", "--db", str(db)])
        assert r.exit_code == 0, r
        assert [p.name for p in Path("bundles").iterdir()] == ["sqlite-wal.feedback.jsonl"]
        assert stat.S_IMODE(Path("bundles/sqlite-wal.feedback.jsonl").stat().st_mode) == 0o644
    finally:
        os.umask(old)
