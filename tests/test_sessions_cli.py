"""`tutor sessions / sessions rm / search / export / where` through the real CLI entry point.

``tutor.cli.main`` runs in-process with a real argv, real stdin/stdout and a real database
file, so user errors are checked exactly as a user sees them (``tutor: ...``, exit 1).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from pathlib import Path

import pytest

from tutor.cli import main
from tutor.engine.events import TokenUsage
from tutor.store import Store

from store_workers import sample_explainer


def run(capsys, monkeypatch, *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["tutor", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def seed(db: Path, n: int = 3, title: str = "Pages & WAL", path: str = "ex.md", content_hash: str | None = None) -> list[str]:
    ex = sample_explainer(path)
    ex = ex.model_copy(update={"title": title, "content_hash": content_hash or ex.content_hash})
    ids = []
    with Store.open(db) as store:
        h = store.upsert_explainer(ex)
        for i in range(n):
            sid = store.create_session(h, ex.path, "offline" if i % 2 else "claude:claude-sonnet-4-5")
            store.add_message(sid, "reader", f"question {i} about checkpoint pages")
            store.add_message(sid, "tutor", f"answer {i}: a checkpoint copies pages back")
            if i % 2 == 0:
                store.add_usage(sid, TokenUsage(input_tokens=100, output_tokens=50, cost_usd=0.0125))
            ids.append(sid)
    return ids


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "cli.db"


def test_sessions_without_a_database_says_so_and_creates_nothing(capsys, monkeypatch, db):
    code, out, _ = run(capsys, monkeypatch, "sessions", "--db", str(db))
    assert code == 0 and "No sessions yet" in out and str(db) in out
    assert not db.exists()
    code, out, _ = run(capsys, monkeypatch, "sessions", "--json", "--db", str(db))
    assert json.loads(out) == []


def test_sessions_table_newest_first_aligned_and_literal(capsys, monkeypatch, db):
    ids = seed(db, 3, title="[bold]P[/bold] <script>\x1b[2J")
    code, out, err = run(capsys, monkeypatch, "sessions", "--db", str(db))
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == ["ID", "EXPLAINER", "STARTED", "LAST", "ACTIVE", "TURNS", "MODE", "COST"]
    assert [ln[:8] for ln in lines[1:]] == [i[:8] for i in reversed(ids)]
    # columns line up: every row has its mode where the header says MODE
    col = header.index("MODE")
    assert all(ln[col:].startswith(("offline", "claude:")) for ln in lines[1:])
    assert "[bold]P[/bold] <script>" in lines[1]
    assert "\x1b" not in out and "\\x1b[2J" in out
    assert "$0.0125" in lines[1] and re.search(r"\s1\s", lines[1])
    assert err == ""


def test_sessions_limit_all_json_and_explainer_filter(capsys, monkeypatch, db, tmp_path):
    ids = seed(db, 4)
    explainer = tmp_path / "real.md"
    explainer.write_text("# Real\n\nSome text.\n")
    real_ids = seed(db, 2, title="Real", path=str(explainer),
                    content_hash=hashlib.sha256(explainer.read_bytes()).hexdigest())
    code, out, err = run(capsys, monkeypatch, "sessions", "--limit", "2", "--db", str(db))
    assert len(out.splitlines()) == 3 and "2 of 6 sessions" in err
    code, out, err = run(capsys, monkeypatch, "sessions", "--all", "--db", str(db))
    assert len(out.splitlines()) == 7 and err == ""
    code, out, _ = run(capsys, monkeypatch, "sessions", "--json", "--db", str(db))
    rows = json.loads(out)
    assert [r["id"] for r in rows] == list(reversed(ids + real_ids))
    assert {"id", "explainer_title", "started", "updated", "turn_count", "mode", "cost_usd", "total_tokens"} <= set(rows[0])
    code, out, _ = run(capsys, monkeypatch, "sessions", "--explainer", str(explainer), "--json", "--db", str(db))
    assert [r["id"] for r in json.loads(out)] == list(reversed(real_ids))
    # the file moved: its content hash still finds its sessions
    moved = tmp_path / "moved.md"
    explainer.rename(moved)
    code, out, _ = run(capsys, monkeypatch, "sessions", "--explainer", str(moved), "--json", "--db", str(db))
    assert len(json.loads(out)) == 2
    code, out, _ = run(capsys, monkeypatch, "sessions", "--explainer", str(tmp_path / "none.md"), "--db", str(db))
    assert "No sessions for" in out


def test_sessions_rm_asks_first_and_accepts_prefixes(capsys, monkeypatch, db):
    ids = seed(db, 3)
    code, out, _ = run(capsys, monkeypatch, "sessions", "rm", ids[0][:8], "--db", str(db), stdin="n\n")
    assert code == 0 and "Remove 1 session?" in out and "Nothing removed." in out
    with Store.open(db) as s:
        assert s.count_sessions() == 3
    code, out, err = run(capsys, monkeypatch, "sessions", "rm", ids[0][:8], "--db", str(db), stdin="")
    assert code == 1 and "nothing removed: no answer" in err and "--yes" in err
    code, out, _ = run(capsys, monkeypatch, "sessions", "rm", ids[0][:8], ids[1], "--db", str(db), stdin="y\n")
    assert code == 0 and "Removed 2 sessions." in out
    code, out, _ = run(capsys, monkeypatch, "sessions", "rm", "--yes", ids[2][:6], "--db", str(db))
    assert code == 0 and "Removed 1 session." in out
    with Store.open(db) as s:
        assert s.count_sessions() == 0


def test_sessions_rm_with_a_bad_id_removes_nothing(capsys, monkeypatch, db):
    ids = seed(db, 2)
    code, out, err = run(capsys, monkeypatch, "sessions", "rm", "--yes", ids[0], "0000ffff", "--db", str(db))
    assert code == 1 and err.startswith("tutor: no session matches '0000ffff'")
    assert len(err.strip().splitlines()) <= 2
    code, out, err = run(capsys, monkeypatch, "sessions", "rm", "--yes", "not-hex", "--db", str(db))
    assert code == 1 and "not a session id" in err
    with Store.open(db) as s:
        assert s.count_sessions() == 2


def test_search_shows_session_role_and_snippet_and_takes_any_characters(capsys, monkeypatch, db):
    ids = seed(db, 2)
    code, out, _ = run(capsys, monkeypatch, "search", "checkpoint", "--db", str(db))
    assert code == 0
    assert out.count("Pages & WAL") == 4
    assert {ln.split()[0] for ln in out.splitlines() if not ln.startswith(" ")} == {i[:8] for i in ids}
    assert "reader" in out and "tutor" in out and "a checkpoint copies pages back" in out
    for q in ['"', "AND (", "a:b*", "-", "NEAR(", "checkpoint OR"]:
        code, out, err = run(capsys, monkeypatch, "search", q, "--db", str(db))
        assert code == 0, (q, err)
    code, out, _ = run(capsys, monkeypatch, "search", "zebra", "--db", str(db))
    assert "No messages match 'zebra'" in out
    code, out, _ = run(capsys, monkeypatch, "search", "question", "1", "--json", "--db", str(db))
    hits = json.loads(out)
    assert len(hits) == 1 and hits[0]["role"] == "reader" and hits[0]["session_id"] == ids[1]
    assert hits[0]["snippet"] == "question 1 about checkpoint pages"


def test_export_formats_outputs_and_ids(capsys, monkeypatch, db, tmp_path):
    ids = seed(db, 2)
    code, out, _ = run(capsys, monkeypatch, "export", ids[0][:7], "-o", "-", "--db", str(db))
    assert code == 0 and out.startswith("# Pages & WAL") and "question 0 about checkpoint" in out
    code, out, _ = run(capsys, monkeypatch, "export", "--last", "--format", "json", "-o", "-", "--db", str(db))
    assert json.loads(out)["session"]["id"] == ids[1]
    target = tmp_path / "out" / "t.json"
    target.parent.mkdir()
    code, out, err = run(capsys, monkeypatch, "export", ids[0], "-o", str(target), "--db", str(db))
    assert code == 0 and json.loads(target.read_text())["format"] == "tutor-transcript"
    assert out == "" and f"Wrote {target}" in err
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, monkeypatch, "export", ids[1], "--format", "html", "--db", str(db))
    name = out.strip().removeprefix("Wrote ")
    assert re.fullmatch(rf"tutor-pages-wal-{ids[1][:8]}\.html", name)
    assert (tmp_path / name).read_text().startswith("<!DOCTYPE html>")
    # 9.12: one rule for every format: without -o, md and json are files here too, not stdout
    for fmt in ("md", "json"):
        code, out, _ = run(capsys, monkeypatch, "export", ids[1], "-f", fmt, "--db", str(db))
        assert code == 0 and out.strip() == f"Wrote tutor-pages-wal-{ids[1][:8]}.{fmt}"
    assert json.loads((tmp_path / f"tutor-pages-wal-{ids[1][:8]}.json").read_text())["session"]["id"] == ids[1]
    code, out, _ = run(capsys, monkeypatch, "export", ids[1], "-o", "-", "-f", "html", "--db", str(db))
    assert out.startswith("<!DOCTYPE html>")


def test_export_errors_are_one_or_two_lines(capsys, monkeypatch, db, tmp_path):
    code, _, err = run(capsys, monkeypatch, "export", "--last", "--db", str(db))
    assert code == 1 and err.startswith("tutor: no sessions yet")
    seed(db, 1)
    for args, needle in [
        (["export"], "give a session id or --last"),
        (["export", "abc", "--last"], "give a session id or --last"),
        (["export", "fffffffff"], "no session matches"),
        (["export", "--last", "-o", str(tmp_path / "nope" / "x.md")], "cannot write"),
    ]:
        code, out, err = run(capsys, monkeypatch, *args, "--db", str(db))
        assert code == 1 and err.startswith("tutor: ") and needle in err, (args, err)
        assert len(err.strip().splitlines()) <= 2


def test_bad_database_file_is_a_clear_error_and_left_alone(capsys, monkeypatch, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n" * 100)
    before = notes.read_bytes()
    for cmd in (["sessions"], ["search", "x"], ["export", "--last"], ["where"]):
        code, out, err = run(capsys, monkeypatch, *cmd, "--db", str(notes))
        assert code == 1 and err.startswith(f"tutor: {notes}: is not a tutor database"), (cmd, err)
    assert notes.read_bytes() == before


def test_where_names_the_path_and_the_rule(capsys, monkeypatch, tmp_path, db):
    code, out, _ = run(capsys, monkeypatch, "where", "--db", str(db))
    assert out.splitlines()[0] == str(db) and "given with --db" in out and "not created yet" in out
    seed(db, 2)
    code, out, _ = run(capsys, monkeypatch, "where", "--db", str(db))
    assert "2 sessions, schema version" in out
    code, out, _ = run(capsys, monkeypatch, "where")
    assert out.splitlines()[0] == str(tmp_path / "tutor-home" / "tutor.db") and "TUTOR_HOME" in out
    monkeypatch.delenv("TUTOR_HOME")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sessions").mkdir()
    code, out, _ = run(capsys, monkeypatch, "where")
    assert out.splitlines()[0] == str(tmp_path / "sessions" / "tutor.db") and "sessions/ folder" in out
    (tmp_path / "sessions").rmdir()
    code, out, _ = run(capsys, monkeypatch, "where")
    assert "user data folder" in out


def test_database_from_a_newer_tutor_is_a_clear_cli_error(capsys, monkeypatch, db):
    seed(db, 1)
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('tutor', 'm900_x', 'x')")
    conn.commit()
    conn.close()
    for cmd in (["sessions"], ["export", "--last"], ["search", "pages"], ["where"]):
        code, out, err = run(capsys, monkeypatch, *cmd, "--db", str(db))
        assert code == 1 and "written by a newer tutor" in err and "Upgrade tutor" in err, (cmd, err)
        assert len(err.strip().splitlines()) == 2


@pytest.mark.parametrize("cmd", [("search", "checkpoint"), ("sessions",)])
def test_a_huge_limit_is_capped_not_a_traceback(capsys, monkeypatch, db, cmd):
    """16.5: --limit 99999999999999999999 overflowed SQLite's 64-bit integer."""
    seed(db, n=2)
    code, out, err = run(capsys, monkeypatch, *cmd, "--limit", "99999999999999999999", "--db", str(db))
    assert code == 0 and ("checkpoint" in out if cmd[0] == "search" else "Pages & WAL" in out)
    assert "OverflowError" not in out + err


def test_json_output_escapes_c1_and_bidi_controls(capsys, monkeypatch, db):
    """16.6: `search --json` / `sessions --json` printed U+202E and C1 controls raw."""
    seed(db, n=1, title="T\u202eitle \x9b2J")
    with Store.open(db) as store:
        sid = store.latest_session().id
        store.add_message(sid, "reader", "checkpoint \u202eevil\u202c \x9b31m")
    for args in (["search", "checkpoint", "--json"], ["sessions", "--json"]):
        code, out, _ = run(capsys, monkeypatch, *args, "--db", str(db))
        assert code == 0 and not any(ch in out for ch in "\u202e\u202c\x9b"), args
        json.loads(out)


def test_counts_read_as_words_not_codes():
    """Issue 9.14: "1 turns", "1 problem(s)": one plural helper for every count."""
    from tutor.text import plural

    assert [plural(1, "turn"), plural(2, "turn"), plural(0, "problem"), plural(1200, "query", "queries")] == [
        "1 turn", "2 turns", "0 problems", "1,200 queries"]
