"""Issue 15.2/15.3 in the store and the session: a long reply is saved in linear time
(appended tails, folded once), and a reader message is stored the moment it is shown
(pending rows). The real TutorSession, the real SDK against the fake Messages API, a real
SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from tutor.engine.claude import ClaudeBackend, Limits
from tutor.engine.events import TokenUsage
from tutor.engine.session import TutorSession
from tutor.explainer import load
from tutor.store import Store

from conftest import EXPLAINERS
from engine_helpers import collect
from fake_api import text

WAL = EXPLAINERS / "sqlite-wal.md"


def _reply(n: int) -> str:
    line = "A checkpoint copies pages from the log back into the database file. "
    return (line * (n // len(line) + 1))[: n - 12] + " zebraword."


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "tutor.db")
    yield s
    s.close()


def _session(store, api):
    backend = ClaudeBackend(None, api_key="test-key", base_url=api.url, max_retries=0, timeout=10.0,
                            limits=Limits(max_chars=10_000_000))  # past the reply cap on purpose: the store is measured
    return TutorSession.open(load(WAL), store, backend=backend, new=True)


def _stream_and_measure(store, api, n: int) -> tuple[int, str, str]:
    """Characters of INSERT/UPDATE SQL (parameters expanded) the session sends while one
    reply of ``n`` characters streams."""
    import asyncio

    body = _reply(n)
    api.enqueue(text(body, chunk_size=64, output_tokens=50))  # a small count: not cut at max_tokens
    written = [0]

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            written[0] += len(sql)

    session = _session(store, api)
    store.conn.set_trace_callback(trace)
    try:
        asyncio.run(collect(session.start()))
    finally:
        store.conn.set_trace_callback(None)
    return written[0], body, session.id


def test_a_long_reply_is_written_in_linear_bytes(store, api):
    """Every flush used to rewrite the whole reply (and re-index it): the SQL sent to
    SQLite grew with the square of the reply's length (twice the reply, four times the
    bytes). Now each flush writes its tail only, and the reply is folded once at the end."""
    small, _, _ = _stream_and_measure(store, api, 40_000)
    big, body, sid = _stream_and_measure(store, api, 160_000)
    assert big / small < 4.8, f"4x the reply wrote {big / small:.1f}x the SQL ({small} -> {big} characters)"
    tutor = [m for m in store.messages(sid) if m.role == "tutor"]
    assert tutor[-1].text == body and tutor[-1].raw == body and tutor[-1].complete
    assert store.conn.execute("SELECT count(*) FROM message_parts").fetchone()[0] == 0
    assert store.search("zebraword")


def test_one_append_costs_the_same_work_in_sqlite_however_many_parts_came_before(store):
    """The SQL text sent is not all the work: `UPDATE messages SET id = id` (a touch of the
    row) made SQLite check the foreign key of every part row of the message at each flush,
    O(parts), and a 5 MB reply took 3x as long per MB as a 1 MB one (bench/bench_stream.py).
    Counted in SQLite's own virtual-machine steps (a progress handler), so no timing noise."""
    h = store.upsert_explainer(load(WAL))
    sid = store.create_session(h, WAL, "claude:test")
    mid = store.add_message(sid, "tutor", "x", raw="x", complete=False)
    chunk = "A checkpoint copies pages back. " * 12

    def steps_of_one_append() -> int:
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0

        store.conn.set_progress_handler(tick, 10)
        try:
            store.append_message(mid, chunk, chunk)
        finally:
            store.conn.set_progress_handler(None, 10)
        return steps[0]

    for _ in range(200):
        store.append_message(mid, chunk, chunk)
    early = steps_of_one_append()
    for _ in range(3_000):
        store.append_message(mid, chunk, chunk)
    late = steps_of_one_append()  # 16x the parts before it
    assert late <= early * 1.5 + 5, f"one append after 3,200 parts: {late} steps; after 200: {early}"


def test_parts_of_an_unfinished_reply_read_as_one_text_and_are_folded_on_reopen(tmp_path):
    db = tmp_path / "tutor.db"
    s = Store.open(db)
    h = s.upsert_explainer(load(WAL))
    sid = s.create_session(h, WAL, "claude:test")
    mid = s.add_message(sid, "tutor", "A page ", raw="A page ", complete=False)
    s.append_message(mid, "is a block ", "is a block ")
    s.append_message(mid, "of zebrawords.", 'of zebrawords.<state concept="x" value="asked"/>')
    row = s.get_message(mid)
    assert row is not None and row.text == "A page is a block of zebrawords." and not row.complete
    assert row.raw is not None and row.raw.endswith('value="asked"/>')
    assert [m.text for m in s.messages(sid)] == ["A page is a block of zebrawords."]
    assert s.session_dump(sid)["messages"][0]["text"] == "A page is a block of zebrawords."
    assert not s.search("zebrawords")  # not indexed while it streams ...
    s.conn.close()  # ... and the process dies here: no final save
    with Store.open(db) as again:  # ... indexed at the next open
        assert [h.message_id for h in again.search("zebrawords")] == [mid]
        assert again.get_message(mid).text == "A page is a block of zebrawords."  # type: ignore[union-attr]
        assert again.conn.execute("SELECT count(*) FROM message_parts").fetchone()[0] == 0
        assert again.integrity_check() == "ok"
        again.conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")


def test_final_append_folds_and_a_whole_text_replaces_the_parts(store):
    h = store.upsert_explainer(load(WAL))
    sid = store.create_session(h, WAL, "claude:test")
    mid = store.add_message(sid, "tutor", "one ", raw="one ", complete=False)
    store.append_message(mid, "two ", "two ")
    store.append_message(mid, "three", "three", complete=True, usage=TokenUsage(output_tokens=7))
    row = store.get_message(mid)
    assert row is not None and (row.text, row.raw, row.complete, row.output_tokens) == ("one two three", "one two three", True, 7)
    assert store.search("three")
    mid2 = store.add_message(sid, "tutor", "old ", raw="old ", complete=False)
    store.append_message(mid2, "tail", "tail")
    store.update_message(mid2, text="new whole", raw="new whole", complete=True)
    assert store.get_message(mid2).text == "new whole"  # type: ignore[union-attr]
    assert not store.search("tail")
    with pytest.raises(Exception, match="no message"):
        store.append_message(999_999, "x", "x")


def test_a_pending_message_moves_into_messages_in_one_commit(store):
    h = store.upsert_explainer(load(WAL))
    sid = store.create_session(h, WAL, "offline")
    pid = store.add_pending(sid, "what is a <b>[bold] page?")
    assert [p.text for p in store.pending(sid)] == ["what is a <b>[bold] page?"]
    store.add_message(sid, "reader", "what is a <b>[bold] page?", pending_id=pid)
    assert store.pending(sid) == []
    assert [m.text for m in store.messages(sid)] == ["what is a <b>[bold] page?"]
    pid2 = store.add_pending(sid, "dropped")
    store.drop_pending(pid2)
    assert store.pending(sid) == []
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("SELECT count(*) FROM pending_messages").fetchone()[0] == 0
    finally:
        raw.close()
