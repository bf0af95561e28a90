"""The session store through a real SQLite file: contract, ids, search, migrations, errors."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from tutor.engine.events import TokenUsage
from tutor.errors import StoreError
from tutor.paths import db_location, db_path
from tutor.store import KNOWN_MIGRATIONS, SCHEMA_VERSION, Store, fts_query, migrations

from store_workers import sample_explainer


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "t.db")
    yield s
    s.close()


def _session(store: Store, path: str = "ex.md", mode: str = "offline") -> str:
    ex = sample_explainer(path)
    return store.create_session(store.upsert_explainer(ex), ex.path, mode)


def _file_digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# -- pragmas and durability -----------------------------------------------------------------


def test_open_sets_wal_busy_timeout_foreign_keys_and_full_sync(store):
    c = store.conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == SCHEMA_VERSION


def test_a_reader_message_is_committed_when_add_message_returns(store):
    sid = _session(store)
    store.add_message(sid, "reader", "my words")
    other = sqlite3.connect(store.path)  # a different connection sees only committed data
    assert other.execute("SELECT text FROM messages").fetchall() == [("my words",)]
    other.close()


def test_streamed_reply_grows_and_is_marked_incomplete_or_complete(store):
    sid = _session(store)
    store.add_message(sid, "reader", "what is a page?")
    mid = store.add_message(sid, "tutor", "", raw="", complete=False)
    store.update_message(mid, text="A page is", raw="A page is")
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT text, complete FROM messages WHERE id = ?", (mid,)).fetchone() == ("A page is", 0)
    other.close()
    store.update_message(
        mid,
        text="A page is a block.",
        raw='A page is a block.<feedback concept="pages">say how big</feedback>',
        complete=True,
        usage=TokenUsage(input_tokens=7, output_tokens=3, cache_creation_input_tokens=2,
                         cache_read_input_tokens=1, cost_usd=0.5),
    )
    m = store.get_message(mid)
    assert (m.text, m.complete, m.seq) == ("A page is a block.", True, 2)
    assert (m.input_tokens, m.output_tokens, m.cache_creation_input_tokens, m.cache_read_input_tokens) == (7, 3, 2, 1)
    assert m.cost_usd == 0.5
    assert "<feedback" in m.raw
    # usage on a message does not move session totals; add_usage does
    assert store.get_session(sid).input_tokens == 0
    row = store.add_usage(sid, TokenUsage(input_tokens=7, output_tokens=3, cache_creation_input_tokens=2,
                                                cache_read_input_tokens=1, cost_usd=0.5))
    assert (row.input_tokens, row.output_tokens, row.cache_write_tokens, row.cache_read_tokens) == (7, 3, 2, 1)
    assert row.total_tokens == 13 and row.cost_usd == 0.5


def test_contract_round(store):
    ex = sample_explainer("docs/x.md")
    h = store.upsert_explainer(ex)
    assert h == ex.content_hash and store.upsert_explainer(ex) == h  # idempotent
    e = store.get_explainer(h)
    assert e.title == "Worker explainer" and [c["id"] for c in e.concepts] == ["pages", "wal", "checkpoint"]
    assert Path(e.path).is_absolute()
    sid = store.create_session(h, "docs/x.md", "claude:claude-sonnet-4-6")
    assert len(sid) == 32 and int(sid, 16) >= 0
    # found again by either spelling of the path
    assert store.latest_open_session(Path("docs/x.md").resolve()).id == sid
    assert store.latest_open_session("docs/x.md").id == sid
    for i in range(3):
        store.add_message(sid, "reader", f"r{i}")
        store.add_message(sid, "tutor", f"t{i}", raw=f"t{i}<state concept=\"pages\" value=\"asked\">x</state>")
    assert store.message_count(sid) == 6
    assert [m.seq for m in store.messages(sid)] == [1, 2, 3, 4, 5, 6]
    assert [m.text for m in store.messages(sid, after_seq=4)] == ["r2", "t2"]
    assert [m.text for m in store.messages(sid, after_seq=1, limit=2)] == ["t0", "r1"]
    row = store.get_session(sid)
    assert (row.message_count, row.turn_count, row.explainer_title) == (6, 3, "Worker explainer")
    store.set_concept_state(sid, "pages", "asked", "asked about it", message_seq=2)
    store.set_concept_state(sid, "pages", "understood", "explained it back", message_seq=6)
    store.set_concept_state(sid, "wal", "known")
    states = store.concept_states(sid)
    assert list(states) == ["pages", "wal"]
    assert (states["pages"].state, states["pages"].evidence, states["pages"].message_seq) == (
        "understood", "explained it back", 6)
    fid = store.add_feedback(sid, h, "pages", "the page size is never given", "model")
    store.add_feedback(sid, h, None, "loved it", "reader")
    fb = store.feedback(explainer_hash=h)
    assert [f.text for f in fb] == ["the page size is never given", "loved it"] and fb[0].id == fid
    assert [f.source for f in store.feedback(explainer_path="docs/x.md")] == ["model", "reader"]
    assert store.feedback(explainer_hash="0" * 64) == []
    assert store.latest_summary(sid) is None
    store.save_summary(sid, 2, "old")
    store.save_summary(sid, 4, "newer")
    assert store.latest_summary(sid).text == "newer" and store.latest_summary(sid).upto_seq == 4
    store.set_status(sid, "finished")
    assert store.latest_open_session("docs/x.md") is None
    assert store.get_session(sid).status == "finished"
    with pytest.raises(ValueError):
        store.set_status(sid, "paused")
    with pytest.raises(ValueError):
        store.add_message(sid, "assistant", "x")


def test_list_sessions_newest_activity_first_with_filters(store):
    a = _session(store, "a.md")
    b = _session(store, "b.md", "claude:m")
    c = _session(store, "a.md")
    store.add_message(a, "reader", "a is active again")  # a becomes the most recent
    ids = [r.id for r in store.list_sessions()]
    assert ids == [a, c, b]
    assert [r.id for r in store.list_sessions(limit=2)] == [a, c]
    assert [r.id for r in store.list_sessions(limit=2, offset=2)] == [b]
    assert {r.id for r in store.list_sessions(explainer_path="a.md")} == {a, c}
    assert store.count_sessions() == 3 and store.count_sessions(explainer_path="b.md") == 1
    assert store.latest_session().id == a
    assert store.latest_open_session("a.md").id == a


def test_unknown_session_errors_are_store_errors(store):
    with pytest.raises(StoreError, match="no session"):
        store.get_session("0" * 32)
    with pytest.raises(StoreError, match="no session"):
        store.add_message("0" * 32, "reader", "hello")
    with pytest.raises(StoreError, match="upsert_explainer"):
        store.create_session("e" * 64, "x.md", "offline")
    with pytest.raises(StoreError, match="no message"):
        store.update_message(12345, text="x")


# -- ids --------------------------------------------------------------------------------------


def test_resolve_session_id_by_unique_prefix(store):
    ids = [_session(store) for _ in range(17)]  # 17 ids: two must share a first hex digit
    for sid in ids:
        assert store.resolve_session_id(sid) == sid
        assert store.resolve_session_id(sid[:12].upper()) == sid
    first = [s[0] for s in ids]
    dup = next(ch for ch in first if first.count(ch) > 1)
    with pytest.raises(StoreError, match="ambiguous") as e:
        store.resolve_session_id(dup)
    assert "more characters" in str(e.value)
    unused = next(ch for ch in "0123456789abcdef" * 2 if not any(s.startswith(ch + ch + ch) for s in ids))
    with pytest.raises(StoreError, match="no session matches") as e:
        store.resolve_session_id(unused * 3)
    assert "tutor sessions" in str(e.value)
    for bad in ("", "   ", "xyz!", "'; drop table sessions; --", "%", "a" * 33):
        with pytest.raises(StoreError):
            store.resolve_session_id(bad)
    assert store.count_sessions() == 17


# -- search -----------------------------------------------------------------------------------


def test_search_finds_words_and_survives_fts_syntax(store):
    sid = _session(store)
    store.add_message(sid, "reader", "How does the write-ahead log (WAL) work? AND what's a checkpoint?")
    mid = store.add_message(sid, "tutor", "Pages are", complete=False)
    store.update_message(mid, text="Pages are fixed-size blocks; a checkpoint copies them back.")
    hits = store.search("checkpoint")
    assert [(h.role, h.seq) for h in hits] == [("reader", 1), ("tutor", 2)] or {h.role for h in hits} == {"reader", "tutor"}
    assert all(h.session_id == sid and h.explainer_title == "Worker explainer" for h in hits)
    assert "\x02checkpoint\x03" in hits[0].snippet.lower()
    assert [h.role for h in store.search("blocks")] == ["tutor"]  # the updated text is indexed
    assert store.search("Pages are") and not store.search("zebra")
    assert len(store.search("check*")) == 2
    assert [h.role for h in store.search("write-ahead (WAL)")] == ["reader"]
    for q in ['"', "AND", "OR NOT", "(", ")", "a:b", "*", "-x", "NEAR(a b", "'", "^", "what's", '"unterminated',
              "col:checkpoint", "{a b}", "checkpoint AND", "+", ";", "\\", "\x00", "    "]:
        store.search(q)  # never raises
    assert store.search("   ") == [] and fts_query("  ") is None
    for i in range(3):
        store.add_message(sid, "reader", f"checkpoint checkpoint checkpoint {i}")
    assert [h.seq for h in store.search("checkpoint")] == [5, 4, 3, 2, 1]  # newest first
    assert [h.seq for h in store.search("checkpoint", limit=2)] == [5, 4]
    assert {h.seq for h in store.search("checkpoint", order="rank")[:3]} == {3, 4, 5}  # denser = better
    assert [h.seq for h in store.search("checkpoint", session_id="0" * 32)] == []
    assert fts_query('a "b" c* NOT') == '"a" "b" "c"* "NOT"'


def test_search_matches_word_forms(store):
    """9.5: the README's `tutor search checkpoint` finds "checkpoints" and "checkpointing" too."""
    sid = _session(store)
    for text in ["one checkpoint", "two checkpoints", "checkpointing now", "Café naïve", "unrelated"]:
        store.add_message(sid, "reader", text)
    assert len(store.search("checkpoint")) == 3
    assert len(store.search("checkpoints")) == 3
    assert len(store.search("cafe naive")) == 1  # diacritics still folded


def test_m005_rebuilds_an_m004_index_with_stemming(tmp_path):
    path = tmp_path / "m4.db"
    with Store.open(path) as store:
        sid = _session(store)
        store.add_message(sid, "reader", "many checkpoints here")
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE messages_fts; CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
        " content_rowid='id', tokenize='unicode61 remove_diacritics 2');"
        " INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');"
        " DELETE FROM _sqlite_migrations WHERE name = 'm005_fts_stemming'; PRAGMA user_version = 4;"
    )
    assert conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'checkpoint'").fetchone()[0] == 0
    conn.close()
    with Store.open(path) as store:
        assert [h.seq for h in store.search("checkpoint")] == [1]
        store.add_message(sid, "tutor", "a checkpointed page")  # the triggers feed the new index
        assert len(store.search("checkpoint")) == 2


def test_the_same_feedback_note_in_a_session_is_stored_once_with_a_count(store):
    """Issue 9.13: the model repeats one <feedback> note every turn; the author saw N copies."""
    sid, other = _session(store), _session(store)
    h = "f" * 64
    first = store.add_feedback(sid, h, "pages", "The pages section never says how big a page is.", "model")
    assert store.add_feedback(sid, h, "pages", "the pages  section never says how big a page is", "model") == first
    assert store.add_feedback(sid, h, "pages", "THE PAGES SECTION NEVER SAYS HOW BIG A PAGE IS.", "model") == first
    store.add_feedback(sid, h, "wal", "The pages section never says how big a page is.", "model")  # another concept
    store.add_feedback(sid, h, "pages", "The pages section never says how big a page is.", "reader")  # the reader's own
    store.add_feedback(other, h, "pages", "The pages section never says how big a page is.", "model")  # another session
    rows = store.feedback(explainer_hash=h)
    assert [(r.session_id == sid, r.concept_id, r.source, r.count) for r in rows] == [
        (True, "pages", "model", 3), (True, "wal", "model", 1), (True, "pages", "reader", 1), (False, "pages", "model", 1)]
    assert rows[0].text == "The pages section never says how big a page is."  # the first wording stays


def test_m006_folds_the_repeated_feedback_of_each_session(tmp_path):
    path = tmp_path / "m5.db"
    db = Database(path)
    migrations().apply(db, stop_before="m006_feedback_count")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 5
    with db.atomic():
        db.execute("INSERT INTO explainers VALUES ('h1', '/x/a.md', 'A', 1, 0, '[]', 't', 't')")
        for sid in ("a" * 32, "b" * 32):
            db.execute("INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status)"
                       " VALUES (?, 'h1', '/x/a.md', 'offline', 't', 't', 'active')", (sid,))
        notes = [("a" * 32, "pages", "Say how big a page is."), ("a" * 32, "pages", "say how big a page is"),
                 ("a" * 32, "pages", "Say how big a page is."), ("a" * 32, None, "Why WAL?"), ("a" * 32, None, "Why WAL?"),
                 ("b" * 32, "pages", "Say how big a page is."), (None, "pages", "Say how big a page is."),
                 (None, "pages", "Say how big a page is.")]
        for i, (sid, cid, text) in enumerate(notes):
            db.execute("INSERT INTO feedback (session_id, explainer_hash, concept_id, text, source, created, uid)"
                       " VALUES (?, 'h1', ?, ?, 'model', ?, ?)", (sid, cid, text, f"2025-01-0{i + 1}", f"uid{i:013d}"))
    db.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = [(r.session_id and r.session_id[0], r.concept_id, r.count, r.uid) for r in store.feedback(explainer_hash="h1")]
        assert rows == [("a", "pages", 3, "uid0000000000000"), ("a", None, 2, "uid0000000000003"),
                        ("b", "pages", 1, "uid0000000000005"),
                        (None, "pages", 1, "uid0000000000006"), (None, "pages", 1, "uid0000000000007")]  # imported rows keep their uids
        store.add_feedback("a" * 32, "h1", None, "why  WAL?", "model")
        assert [r.count for r in store.feedback(session_id="a" * 32)] == [3, 3]


# -- delete -----------------------------------------------------------------------------------


def test_delete_sessions_removes_everything_of_those_sessions_only(store):
    keep = _session(store)
    gone = _session(store)
    for sid in (keep, gone):
        store.add_message(sid, "reader", f"zebra words of {sid}")
        store.set_concept_state(sid, "pages", "known")
        store.add_feedback(sid, "f" * 64, "pages", "fb", "model")
        store.save_summary(sid, 1, "sum")
    assert store.delete_sessions([gone, gone]) == 1
    assert store.delete_sessions([gone]) == 0
    c = store.conn
    for table in ("messages", "concept_states", "feedback", "summaries"):
        assert {r[0] for r in c.execute(f"SELECT session_id FROM {table}")} == {keep}, table
    assert [h.session_id for h in store.search("zebra")] == [keep]
    assert [r.id for r in store.list_sessions()] == [keep]


# -- migrations -------------------------------------------------------------------------------


def test_upgrade_from_the_first_schema_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    db = Database(path)
    migrations().apply(db, stop_before=KNOWN_MIGRATIONS[1])
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "messages_fts" not in db.table_names()
    with db.atomic():
        db.execute(
            "INSERT INTO explainers VALUES ('h1', '/x/old.md', 'Old explainer', 1, 0, "
            "'[{\"id\": \"pages\", \"title\": \"Pages\"}]', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')"
        )
        db.execute(
            "INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status,"
            " input_tokens, output_tokens, cost_usd) VALUES ('a' || hex(zeroblob(15)) || '0', 'h1', '/x/old.md',"
            " 'claude:old', '2025-01-01T00:00:00.000Z', '2025-01-02T00:00:00.000Z', 'active', 100, 50, 0.25)"
        )
        sid = db.execute("SELECT id FROM sessions").fetchone()[0]
        for seq, role, text in [(1, "reader", "old question about pelicans"), (2, "tutor", "old answer"),
                                (3, "reader", "follow up")]:
            db.execute(
                "INSERT INTO messages (session_id, seq, role, text, raw, created, input_tokens, output_tokens,"
                " complete) VALUES (?, ?, ?, ?, ?, '2025-01-01T00:00:00.000Z', 3, 4, ?)",
                (sid, seq, role, text, text if role == "tutor" else None, int(seq != 2)),
            )
        db.execute("INSERT INTO concept_states VALUES (?, 'pages', 'shaky', 'mixed up', 2, '2025-01-01T00:00:00.000Z')",
                   (sid,))
        db.execute("INSERT INTO feedback (session_id, explainer_hash, concept_id, text, source, created)"
                   " VALUES (?, 'h1', 'pages', 'old feedback', 'model', '2025-01-01T00:00:00.000Z')", (sid,))
        db.execute("INSERT INTO summaries (session_id, upto_seq, text, created)"
                   " VALUES (?, 2, 'old summary', '2025-01-01T00:00:00.000Z')", (sid,))
    db.close()

    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        applied = [r[0] for r in store.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert applied == KNOWN_MIGRATIONS
        row = store.get_session(sid)
        assert (row.explainer_title, row.mode, row.input_tokens, row.output_tokens, row.cost_usd) == (
            "Old explainer", "claude:old", 100, 50, 0.25)
        assert (row.message_count, row.turn_count, row.cache_read_tokens) == (3, 2, 0)  # backfilled
        msgs = store.messages(sid)
        assert [(m.seq, m.role, m.text, m.complete) for m in msgs] == [
            (1, "reader", "old question about pelicans", True), (2, "tutor", "old answer", False),
            (3, "reader", "follow up", True)]
        assert msgs[1].raw == "old answer" and msgs[0].input_tokens == 3
        assert store.concept_states(sid)["pages"].evidence == "mixed up"
        assert [(f.text, f.count) for f in store.feedback(explainer_hash="h1")] == [("old feedback", 1)]  # m006
        assert store.latest_summary(sid).text == "old summary"
        assert [h.seq for h in store.search("pelicans")] == [1]  # old rows are in the new index
        store.add_message(sid, "tutor", "new reply")  # and the upgraded schema takes new writes
        assert store.get_session(sid).message_count == 4
        assert store.get_setting("theme") is None  # m004: settings start empty, then work
        store.set_setting("theme", "nord")
        store.set_setting("theme", "gruvbox")
        assert store.get_setting("theme") == "gruvbox"
        assert store.integrity_check() == "ok"


def test_database_from_a_newer_tutor_is_refused_untouched(tmp_path):
    path = tmp_path / "new.db"
    with Store.open(path) as store:
        store.conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('tutor', 'm999_future', 'x')"
        )
    before = _file_digest(path)
    with pytest.raises(StoreError, match="newer tutor") as e:
        Store.open(path)
    assert "m999_future" in str(e.value) and "Upgrade tutor" in str(e.value)
    assert _file_digest(path) == before

    path2 = tmp_path / "new2.db"
    Store.open(path2).close()
    conn = sqlite3.connect(path2)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 5}"):
        Store.open(path2)


def test_not_a_database_and_foreign_databases_are_refused_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n" * 50)
    before = _file_digest(text)
    with pytest.raises(StoreError, match="not a tutor database") as e:
        Store.open(text)
    assert str(text) in str(e.value)
    assert _file_digest(text) == before

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a tutor one"):
        Store.open(other)

    with pytest.raises(StoreError, match="is a folder"):
        Store.open(tmp_path)
    with pytest.raises(StoreError, match="no tutor database"):
        Store.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_open_creates_missing_parent_folders(tmp_path):
    with Store.open(tmp_path / "a" / "b" / "t.db") as store:
        assert store.count_sessions() == 0


# -- data location ----------------------------------------------------------------------------


def test_db_path_rules_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("TUTOR_HOME", str(home))
    (tmp_path / "sessions").mkdir()
    loc = db_location("my.db")
    assert (loc.path, loc.rule) == (tmp_path / "my.db", "--db")
    assert db_location(str(tmp_path / "sessions")).path == tmp_path / "sessions" / "tutor.db"  # a folder
    loc = db_location(None)
    assert (loc.path, loc.rule) == (home / "tutor.db", "TUTOR_HOME")
    monkeypatch.delenv("TUTOR_HOME")
    loc = db_location(None)
    assert (loc.path, loc.rule) == (tmp_path / "sessions" / "tutor.db", "./sessions/")
    (tmp_path / "sessions").rmdir()
    loc = db_location(None)
    assert loc.rule == "user data dir" and loc.path.name == "tutor.db" and "tutor" in str(loc.path.parent)
    assert db_path(None) == loc.path


def test_one_store_shared_by_threads(store):
    """The app streams a reply in a worker thread while the UI thread reads and writes."""
    import threading

    sid = _session(store)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(150):
                mid = store.add_message(sid, "tutor", f"{name} {i}", complete=False)
                store.update_message(mid, text=f"{name} {i} done", complete=True)
                store.messages(sid, after_seq=max(0, store.message_count(sid) - 3))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = store.messages(sid)
    assert [m.seq for m in msgs] == list(range(1, 301))
    assert all(m.complete and m.text.endswith("done") for m in msgs)


def test_docs_describe_every_table_and_column(store):
    """docs/database.md must keep up with the migrations: someone opening the file in
    sqlite3 or Datasette should find every table and column explained there."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "database.md").read_text(encoding="utf-8")
    tables = [
        r[0]
        for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith(("sqlite_", "messages_fts_"))
    ]
    assert {"explainers", "sessions", "messages", "concept_states", "feedback", "summaries", "messages_fts"} <= set(tables)
    for table in tables:
        assert f"`{table}" in doc, f"docs/database.md does not describe table {table}"
        for (name,) in store.conn.execute(f"SELECT name FROM pragma_table_info('{table}')"):
            assert re.search(rf"\b{re.escape(name)}\b", doc), f"docs/database.md does not mention {table}.{name}"
    for (index,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"):
        if not index.startswith(("sqlite_", "_sqlite")) and "migrations" not in index:
            assert index in doc, f"docs/database.md does not mention index {index}"
    for name in KNOWN_MIGRATIONS:
        assert f"`{name}`" in doc, f"docs/database.md does not list migration {name}"


def test_a_lone_surrogate_is_stored_as_one_replacement_character(store):
    """Issue 11: the store's own repair (surrogatepass, then replace) made three U+FFFD of
    one lone surrogate; the bundle importer and compile made one. Now all use text.utf8_text."""
    sid = _session(store)
    store.add_message(sid, "tutor", "bad \ud800 text", raw="bad \udc80 raw", complete=True)
    [m] = [m for m in store.messages(sid) if m.role == "tutor"]
    assert (m.text, m.raw) == ("bad \ufffd text", "bad \ufffd raw")
