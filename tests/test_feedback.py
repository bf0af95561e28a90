"""`tutor feedback` end to end: real reader sessions (fake Claude through the real SDK) leave
<feedback> tags, state changes and reader notes in a real SQLite file; the author's report
groups them, flags sections edited since, and bundles move them between databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tutor.engine.claude import ClaudeBackend
from tutor.engine.session import TutorSession
from tutor.explainer import load
from tutor.store import Store, session_key

from compile_helpers import run_cli
from fake_api import FakeAPI, text

EXPLAINER = """\
---
tutor: 1
title: WAL in brief
summary: Pages, the WAL file, checkpoints.
audience: SQLite users.
concepts:
  - id: pages
    title: Pages
    summary: The file is an array of pages.
    prerequisites: []
    checks:
      - question: "What is a page?"
        answer: "A fixed-size block of the database file."
  - id: wal
    title: The WAL file
    summary: Writers append frames.
    prerequisites: [pages]
    checks:
      - question: "Where do writers write?"
        answer: "To the end of the -wal file."
---

## Pages {#pages}

The database file is an array of fixed-size pages.

## The WAL file {#wal}

Writers append frames to the -wal file; readers check it first.
"""


async def _drain(agen) -> list:
    return [ev async for ev in agen]


async def _reader_sessions(api: FakeAPI, path: Path, db: Path) -> list[str]:
    """Two reader sessions with Claude: feedback tags, state changes, a reader note."""
    exp = load(path)
    store = Store.open(db)
    ids = []
    try:
        # Session 1: pages explained, then shaky, then explained again; feedback on pages.
        api.enqueue(
            text('<state concept="pages" value="explained">first pass</state>A database file is made of pages. '
                 '<feedback concept="pages">The pages section never says how big a page is.</feedback>What is a page?'),
            text('<state concept="pages" value="shaky">mixed pages with rows</state>Not quite. Let me try again.'),
            text('<state concept="pages" value="explained">second pass</state>Think of fixed-size blocks.'),
        )
        s1 = TutorSession.open(exp, store, backend=ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url), new=True)
        await _drain(s1.start())
        await _drain(s1.reply("rows?"))
        await _drain(s1.reply("explain again please"))
        s1.add_reader_feedback("A diagram of the file would help.", "pages")
        ids.append(s1.id)
        await s1.aclose()

        # Session 2: general feedback and feedback on the WAL section; wal marked shaky.
        api.enqueue(
            text('<feedback>The intro could say why WAL exists.</feedback>Do you know what a page is?'),
            text('<state concept="pages" value="known">reader knows</state><state concept="wal" value="shaky">unsure</state>'
                 '<feedback concept="wal">Say what a frame is before using the word.</feedback>Frames are page images.'),
        )
        s2 = TutorSession.open(exp, store, backend=ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url), new=True)
        await _drain(s2.start())
        await _drain(s2.reply("yes, pages I know"))
        s2.add_reader_feedback("I got lost at 'frames'.", "wal")
        ids.append(s2.id)
        await s2.aclose()
    finally:
        store.close()
    return ids


def _report(path: Path, db: Path) -> dict:
    r = run_cli(["feedback", str(path), "--json", "--db", str(db)])
    assert r.exit_code == 0, r
    return json.loads(r.stdout)


def _group(rep: dict, cid: str | None) -> dict:
    return next(g for g in rep["groups"] if g["concept_id"] == cid)


def _texts(group: dict) -> list[str]:
    return [i["text"] for i in group["items"]]


async def test_feedback_end_to_end(fake_api, tmp_path):
    path = tmp_path / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    db = tmp_path / "reader.db"
    ids = await _reader_sessions(fake_api, path, db)
    old_hash = load(path).content_hash

    # -- grouped by section, newest first, with counts
    rep = _report(path, db)
    assert rep["total"] == 5 and rep["model"] == 3 and rep["reader"] == 2 and rep["sessions"] == 2
    pages, wal, general = _group(rep, "pages"), _group(rep, "wal"), _group(rep, None)
    assert [g["concept_id"] for g in rep["groups"]] == ["pages", "wal", None]  # teaching order, general last
    assert _texts(pages) == ["A diagram of the file would help.", "The pages section never says how big a page is."]
    assert (pages["count"], pages["model"], pages["reader"]) == (2, 1, 1)
    assert _texts(wal) == ["I got lost at 'frames'.", "Say what a frame is before using the word."]
    assert _texts(general) == ["The intro could say why WAL exists."]
    assert all(i["section_status"] in ("current", "general") for g in rep["groups"] for i in g["items"])
    assert {i["version"] for g in rep["groups"] for i in g["items"]} == {old_hash[:8]}
    # stuck: pages explained twice in session 1 and shaky there; wal shaky in session 2
    assert pages["stuck"] == {"sessions": 2, "shaky": 1, "explained_twice": 1}
    assert wal["stuck"] == {"sessions": 1, "shaky": 1, "explained_twice": 0}
    text_out = run_cli(["feedback", str(path), "--db", str(db)]).stdout
    assert "## Pages {#pages} -- 2 items; 1 tutor, 1 reader" in text_out
    assert "stuck: 1 marked it shaky and 1 needed it explained twice (of 2 sessions that reached it)" in text_out
    assert "<feedback" not in text_out

    # -- the author edits the pages section: feedback on it is flagged, wal's is not
    path.write_text(EXPLAINER.replace("fixed-size pages.", "fixed-size pages of 4096 bytes by default."), encoding="utf-8")
    rep = _report(path, db)
    pages, wal = _group(rep, "pages"), _group(rep, "wal")
    assert [i["section_status"] for i in pages["items"]] == ["changed", "changed"]
    assert [i["section_status"] for i in wal["items"]] == ["unchanged", "unchanged"]
    assert rep["changed_since"] == 2 and pages["changed_since"] == 2
    assert [v["current"] for v in rep["versions"]] == [False]
    text_out = run_cli(["feedback", str(path), "--db", str(db)]).stdout
    assert text_out.count("[SECTION CHANGED SINCE]") == 2
    assert "2 on sections changed since" in text_out

    # -- bundle: feedback + anonymous stats, no transcript, no session ids
    bundle = tmp_path / "wal.feedback.jsonl"
    r = run_cli(["feedback", "export", "--yes", str(path), "-o", str(bundle), "--db", str(db)])
    assert r.exit_code == 0, r
    raw = bundle.read_text()
    lines = [json.loads(x) for x in raw.splitlines()]
    kinds = [x["type"] for x in lines]
    assert kinds[0] == "header" and "transcript" not in kinds
    assert kinds.count("feedback") == 5 and kinds.count("stats") >= 3
    assert not any(sid in raw for sid in ids)  # only session keys
    assert {session_key(s) for s in ids} <= {x.get("session_key") for x in lines}
    assert "rows?" not in raw and "Not quite" not in raw  # no transcript text
    again = tmp_path / "again.jsonl"
    assert run_cli(["feedback", "export", "--yes", str(path), "-o", str(bundle), "--db", str(db)]).exit_code == 1  # no overwrite

    # -- import into a fresh database, twice: nothing doubles
    fresh = tmp_path / "author.db"
    r1 = run_cli(["feedback", "import", str(bundle), "--for", str(path), "--db", str(fresh)])
    assert r1.exit_code == 0, r1
    assert "5 new feedback item(s)" in r1.stdout
    r2 = run_cli(["feedback", "import", str(bundle), str(bundle), "--for", str(path), "--db", str(fresh)])
    assert r2.exit_code == 0, r2
    assert r2.stdout.count("0 new feedback item(s), 5 already here, 0 new concept stat(s)") == 2
    with sqlite3.connect(fresh) as c:
        assert c.execute("SELECT count(*) FROM feedback").fetchone()[0] == 5
        assert c.execute("SELECT count(DISTINCT uid) FROM feedback").fetchone()[0] == 5
    imported = _report(path, fresh)
    assert imported["total"] == 5 and imported["sessions"] == 2
    assert _texts(_group(imported, "pages")) == _texts(_group(rep, "pages"))
    assert [i["section_status"] for i in _group(imported, "pages")["items"]] == ["changed", "changed"]
    assert _group(imported, "pages")["stuck"] == {"sessions": 2, "shaky": 1, "explained_twice": 1}
    assert all(i["imported"] for g in imported["groups"] for i in g["items"])

    # -- with transcripts: the sessions arrive as finished, imported sessions
    r = run_cli(["feedback", "export", "--yes", str(path), "-o", str(again), "--with-transcripts", "--db", str(db)])
    assert r.exit_code == 0 and "2 transcript(s)" in r.stderr
    r = run_cli(["feedback", "import", str(again), "--for", str(path), "--db", str(fresh)])
    assert "2 transcript(s)" in r.stdout and "0 new feedback item(s)" in r.stdout
    with sqlite3.connect(fresh) as c:
        assert c.execute("SELECT count(*), min(mode), min(status) FROM sessions").fetchone() == (2, "imported", "finished")
        assert c.execute("SELECT count(*) FROM messages WHERE text = 'rows?'").fetchone()[0] == 1
    r = run_cli(["feedback", "import", str(again), "--for", str(path), "--db", str(fresh)])
    assert "transcript" not in r.stdout  # twice adds nothing
    assert _report(path, fresh)["sessions"] == 2  # transcripts do not count sessions twice


def test_overview_and_empty(tmp_path):
    path = tmp_path / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    db = tmp_path / "x.db"
    r = run_cli(["feedback", "--db", str(db)])
    assert r.exit_code == 0 and "No feedback yet" in r.stdout
    r = run_cli(["feedback", str(path), "--db", str(db)])
    assert r.exit_code == 0 and "No feedback yet" in r.stdout
    with Store.open(db) as store:
        exp = load(path)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, "wal", "\x1b[31mred\x1b[0m [bold]not markup[/bold]", "reader")
    r = run_cli(["feedback", "--db", str(db)])
    assert "1  (0 tutor, 1 reader)" in r.stdout and "WAL in brief" in r.stdout
    r = run_cli(["feedback", str(path), "--db", str(db)])
    assert "\x1b" not in r.stdout and "red [bold]not markup[/bold]" in r.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json\n", ":1: not JSON"),
        ('{"type": "feedback"}\n', "first line must be the bundle header"),
        ('{"type": "header", "created": "x", "title": "t", "file": "f.md"}\n{"type": "weird"}\n', ":2: unknown line type 'weird'"),
        ('{"type": "header", "created": "x", "title": "t", "file": "f.md"}\n{"type": "feedback", "uid": "short"}\n', ":2: bad feedback line: uid"),
        ('{"type": "header", "version": 9, "created": "x", "title": "t", "file": "f.md"}\n', "bundle version 9 is newer"),
        ("", "empty file"),
        ('{"type": "header", "created": "x", "title": "t", "file": "f.md"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", ":2: not a bundle line (JSON nested too deeply)"),
        ("\x00\xff\xfe garbage", "not JSON"),
        (
            '{"type": "header", "created": "x", "title": "t", "file": "f.md"}\n'
            '{"type": "feedback", "uid": "0123456789abcdef", "explainer_hash": "ffff", "text": "t", "source": "model", "created": "x"}\n',
            "which the bundle does not describe",
        ),
    ],
)
def test_bad_bundles_are_clear_errors_and_change_nothing(tmp_path, content, message):
    b = tmp_path / "b.jsonl"
    b.write_text(content)
    db = tmp_path / "a.db"
    r = run_cli(["feedback", "import", str(b), "--db", str(db)])
    assert r.exit_code == 1 and message in r.stderr and str(b) in r.stderr, r
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0


def test_missing_file_is_a_clear_error(tmp_path):
    r = run_cli(["feedback", str(tmp_path / "nope.md"), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 1 and "nope.md" in r.stderr


def test_feedback_still_readable_while_the_file_is_broken(tmp_path):
    path = tmp_path / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    db = tmp_path / "x.db"
    with Store.open(db) as store:
        exp = load(path)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, "wal", "Frames need a picture.", "model")
    path.write_text(EXPLAINER.replace("prerequisites: [pages]", "prerequisites: [ghost]"), encoding="utf-8")
    r = run_cli(["feedback", str(path), "--db", str(db)])
    assert r.exit_code == 0, r
    assert "tutor: warning:" in r.stderr and "ghost" in r.stderr
    assert "Frames need a picture." in r.stdout and "the file does not load now" in r.stdout
    # A file the database has never seen still fails clearly.
    other = tmp_path / "other.md"
    other.write_text(EXPLAINER.replace("prerequisites: [pages]", "prerequisites: [ghost]"), encoding="utf-8")
    r = run_cli(["feedback", str(other), "--db", str(db)])
    assert r.exit_code == 1 and "ghost" in r.stderr


def test_import_finds_the_explainer_by_name_and_export_to_stdout(tmp_path, monkeypatch):
    reader = tmp_path / "reader"
    reader.mkdir()
    path = reader / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    with Store.open(tmp_path / "r.db") as store:
        exp = load(path)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, "pages", "Say the page size.", "reader")
        store.set_concept_state(sid, "pages", "shaky", "unsure")
    r = run_cli(["feedback", "export", "--yes", str(path), "-o", "-", "--db", str(tmp_path / "r.db")])
    assert r.exit_code == 0, r
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["type"] for x in lines] == ["header", "explainer", "feedback", "stats"]
    assert lines[3] == {"type": "stats", "session_key": session_key(sid), "explainer_hash": h,
                        "concept_id": "pages", "shaky": True, "explained": 0}
    bundle = tmp_path / "b.jsonl"
    bundle.write_text(r.stdout)

    # The author keeps the file at ./explainers/wal.md: found by name, no --for needed.
    author = tmp_path / "author"
    (author / "explainers").mkdir(parents=True)
    (author / "explainers" / "wal.md").write_text(EXPLAINER, encoding="utf-8")
    monkeypatch.chdir(author)
    r = run_cli(["feedback", "import", str(bundle), "--db", "a.db"])
    assert r.exit_code == 0, r
    assert str((author / "explainers" / "wal.md").resolve()) in r.stdout
    rep = _report(Path("explainers/wal.md"), Path("a.db"))
    assert _texts(_group(rep, "pages")) == ["Say the page size."]
    assert _group(rep, "pages")["stuck"] == {"sessions": 1, "shaky": 1, "explained_twice": 0}
    r = run_cli(["feedback", "import", str(bundle), "--for", "missing.md", "--db", "a.db"])
    assert r.exit_code == 1 and "missing.md: no such file" in r.stderr


def test_bundle_with_lone_surrogates_imports_cleanly(tmp_path):
    b = tmp_path / "s.jsonl"
    b.write_text(
        '{"type": "header", "created": "x", "title": "t\\ud800", "file": "f.md"}\n'
        '{"type": "explainer", "hash": "0123456789abcdef0123", "title": "t", "file": "f.md", "sections": []}\n'
        '{"type": "feedback", "uid": "0123456789abcdef", "explainer_hash": "0123456789abcdef0123",'
        ' "text": "bad \\udc80 text", "source": "model", "created": "2026-01-01T00:00:00Z"}\n'
    )
    r = run_cli(["feedback", "import", str(b), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 0, r
    with sqlite3.connect(tmp_path / "a.db") as c:
        assert c.execute("SELECT text FROM feedback").fetchone()[0] == "bad \ufffd text"


async def test_a_repeated_note_is_stored_once_and_grouped_with_a_count(fake_api, tmp_path):
    """Issue 9.13: the model sent the same <feedback> every turn and the author saw N copies."""
    path = tmp_path / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    db = tmp_path / "reader.db"
    exp = load(path)
    note = '<feedback concept="pages">The pages section never says how big a page is.</feedback>'
    store = Store.open(db)
    try:
        fake_api.enqueue(*(text(f"Turn {i}. {note}Go on.") for i in range(3)))
        s1 = TutorSession.open(exp, store, backend=ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=fake_api.url), new=True)
        await _drain(s1.start())
        await _drain(s1.reply("ok"))
        await _drain(s1.reply("and?"))
        await s1.aclose()
        fake_api.enqueue(text('Hello. <feedback concept="pages">the pages section never says how big a page is</feedback>'))
        s2 = TutorSession.open(exp, store, backend=ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=fake_api.url), new=True)
        await _drain(s2.start())
        await s2.aclose()
        assert [(f.session_id, f.count) for f in store.feedback(explainer_hash=exp.content_hash)] == [(s1.id, 3), (s2.id, 1)]
    finally:
        store.close()

    rep = _report(path, db)
    pages = _group(rep, "pages")
    assert [(i["text"], i["count"], i["sessions"]) for i in pages["items"]] == [
        ("the pages section never says how big a page is", 4, 2)]  # newest wording
    assert rep["total"] == 1 and pages["count"] == 1
    out = run_cli(["feedback", str(path), "--db", str(db)]).stdout
    assert out.count("how big a page is") == 1 and "×4 in 2 sessions" in out
    page = tmp_path / "fb.html"
    assert run_cli(["feedback", str(path), "--html", str(page), "--db", str(db)]).exit_code == 0
    assert page.read_text().count("how big a page is") == 1 and ">×4</span>" in page.read_text()

    # bundles carry the count; importing twice adds nothing; a later bundle raises the count
    bundle = tmp_path / "b.jsonl"
    assert run_cli(["feedback", "export", str(path), "-o", str(bundle), "--yes", "--db", str(db)]).exit_code == 0
    lines = [json.loads(x) for x in bundle.read_text().splitlines()]
    assert sorted(x["count"] for x in lines if x["type"] == "feedback") == [1, 3]
    author = tmp_path / "author.db"
    for _ in range(2):
        assert run_cli(["feedback", "import", str(bundle), "--for", str(path), "--db", str(author)]).exit_code == 0
    with sqlite3.connect(author) as c:
        assert c.execute("SELECT count(*), sum(count) FROM feedback").fetchone() == (2, 4)
    with Store.open(db) as store:
        store.add_feedback(s1.id, exp.content_hash, "pages", "The pages section never says how big a page is.", "model")
    r = run_cli(["feedback", "export", str(path), "-o", str(bundle), "--force", "--yes", "--db", str(db)])
    assert r.exit_code == 0, r
    r = run_cli(["feedback", "import", str(bundle), "--for", str(path), "--db", str(author)])
    assert "0 new feedback item(s), 2 already here" in r.stdout
    assert _group(_report(path, author), "pages")["items"][0]["count"] == 5
