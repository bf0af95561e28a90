"""Scripted Claude sessions: the real TutorSession, the real anthropic SDK, a real SQLite
file, and the fake Messages API server (tests/fake_api.py) over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from tutor.engine.claude import ClaudeBackend
from tutor.engine.events import ErrorEvent, FeedbackCaptured, StateChanged, TextDelta, TurnFinished, Usage
from tutor.engine.memory import SUMMARY_INSTRUCTION
from tutor.engine.session import TutorSession
from tutor.explainer import load
from tutor.store import Store

from conftest import EXPLAINERS
from engine_helpers import collect, text_of
from fake_api import drop, hang, http_error, no_stop, stream_error, text

WAL = EXPLAINERS / "sqlite-wal.md"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tutor.db"


@pytest.fixture
def explainer():
    return load(WAL)


def backend(api, **kw):
    kw.setdefault("max_retries", 2)
    kw.setdefault("timeout", 5.0)
    return ClaudeBackend(None, api_key="test-key", base_url=api.url, **kw)


def open_session(explainer, db, api, **kw):
    store = Store.open(db)
    return TutorSession.open(explainer, store, backend=backend(api, **{k: v for k, v in kw.items() if k in ("max_retries", "timeout")}),
                             **{k: v for k, v in kw.items() if k in ("session_id", "new")})


def last_user_text(body) -> str:
    return "\n".join(b["text"] for b in body["messages"][-1]["content"])


def all_text(body) -> str:
    return json.dumps(body)


def is_summary_call(body) -> bool:
    """memory.py's summarisation request ends with its instruction block."""
    return body["messages"][-1]["content"][-1]["text"] == SUMMARY_INSTRUCTION


OPENING = (
    "I want to explain how SQLite's write-ahead log works to you. "
    "Do you already know about pages and the database file?\n"
    '<state concept="pages" value="asked">opening question</state>'
)


async def test_diagnose_first_opening(api, db, explainer):
    api.enqueue(text(OPENING, chunk_size=5))
    s = open_session(explainer, db, api)
    assert not s.resumed and s.mode.startswith("claude:claude-sonnet")
    events = await collect(s.start())
    kinds = [e.kind for e in events]
    assert kinds[-2:] == ["usage", "done"]
    visible = text_of(events)
    assert visible.startswith("I want to explain how SQLite's write-ahead log works to you. Do you already know")
    assert "<state" not in visible
    assert [e for e in events if isinstance(e, StateChanged)] == [
        StateChanged(concept_id="pages", state="asked", evidence="opening question")
    ]
    assert s.states()["pages"] == "asked"
    # Persisted: the tutor message (filtered text + raw), the state, the usage.
    msgs = s.store.messages(s.id)
    assert [m.role for m in msgs] == ["tutor"]
    assert msgs[0].text.strip() == visible.strip() and "<state" in msgs[0].raw and msgs[0].complete
    assert s.store.concept_states(s.id)["pages"].state == "asked"
    assert s.store.get_session(s.id).input_tokens > 0
    # The request: rules + explainer cached in system; the reader model in the newest user turn.
    body = api.bodies[-1]
    assert body["stream"] is True
    assert any("cache_control" in b for b in body["system"])
    assert "How SQLite's write-ahead log works" in all_text(body["system"])
    from tutor.engine.prompt import rules_text

    assert body["system"][0]["text"] == rules_text() and "What do you already know about Y?" in rules_text()
    assert "pages" in last_user_text(body) and "unknown" in last_user_text(body)
    usage = [e for e in events if isinstance(e, Usage)][0]
    assert usage.session_tokens > 0 and usage.cost_usd > 0


async def test_skipping_a_known_concept(api, db, explainer):
    api.enqueue(
        text(OPENING),
        text(
            "Good, then we skip pages. Next: do you know what the rollback journal does?\n"
            '<state concept="pages" value="known">reader: yes, I know pages</state>\n'
            '<state concept="rollback-journal" value="asked">asked</state>',
            chunk_size=9,
        ),
        text("Great. On to the WAL file (see \"The write-ahead log file\")."),
    )
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("yes, I know pages"))
    assert {(e.concept_id, e.state) for e in events if isinstance(e, StateChanged)} == {
        ("pages", "known"),
        ("rollback-journal", "asked"),
    }
    assert s.states()["pages"] == "known"
    assert s.current_concept == "rollback-journal"
    # The reader's message was committed before the call and is in the request.
    msgs = s.store.messages(s.id)
    assert [m.role for m in msgs] == ["tutor", "reader", "tutor"]
    assert "yes, I know pages" in last_user_text(api.bodies[-1])
    ev = s.store.concept_states(s.id)["pages"]
    assert ev.evidence == "reader: yes, I know pages" and ev.message_seq == msgs[1].seq

    # Reader override: "I already know X" is applied at once, before the model answers.
    events = await collect(s.mark_known("rollback-journal"))
    assert isinstance(events[0], StateChanged) and events[0].state == "known"
    assert s.states()["rollback-journal"] == "known"
    req = last_user_text(api.bodies[-1])
    assert "I already know the rollback journal" in req
    assert "rollback-journal: known" in req or "rollback-journal=known" in req or "known" in req
    assert s.model.next_concept() == "wal-file"


async def test_wrong_check_answer_is_shaky_and_reexplained(api, db, explainer):
    api.enqueue(
        text(OPENING),
        text("Then let's check one thing: you insert one short row into a table with two indexes. How many pages change?"
             '\n<state concept="pages" value="explained">explained pages</state>'),
        text(
            "Not quite: SQLite never writes just the new bytes. It rewrites whole pages -- "
            "here, a table leaf and a leaf in each index (see \"Pages and the database file\"). "
            "Let me put it another way ...\n"
            '<state concept="pages" value="shaky">said only the row\'s bytes are written</state>',
            chunk_size=4,
        ),
    )
    s = open_session(explainer, db, api)
    await collect(s.start())
    await collect(s.reply("no, what are pages?"))
    events = await collect(s.reply("Just the bytes of the new row, appended at the end."))
    changes = [e for e in events if isinstance(e, StateChanged)]
    assert changes == [StateChanged(concept_id="pages", state="shaky", evidence="said only the row's bytes are written")]
    assert "Let me put it another way" in text_of(events)
    assert s.store.concept_states(s.id)["pages"].state == "shaky"
    assert s.model.next_concept() == "pages"  # not done: it comes back
    # The next request tells the model the concept is shaky.
    api.enqueue(text("Try again: ..."))
    await collect(s.reply("ok"))
    assert "shaky" in last_user_text(api.bodies[-1])


async def test_feedback_tags_are_stored_and_hidden(api, db, explainer):
    reply = (
        "A frame is one page plus a 24-byte header.\n"
        '<feedback concept="wal-file">The section says "frame" before defining it; define it in the first paragraph.</feedback>\n'
        "Shall we go on?"
    )
    api.enqueue(text(OPENING), text(reply, chunk_size=3))
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("what is a frame?"))
    for e in events:
        if isinstance(e, TextDelta):
            assert "<feedback" not in e.text and "</feedback" not in e.text and "define it" not in e.text
    assert text_of(events) == "A frame is one page plus a 24-byte header.\nShall we go on?"
    fb = [e for e in events if isinstance(e, FeedbackCaptured)]
    assert fb == [FeedbackCaptured(concept_id="wal-file", text='The section says "frame" before defining it; define it in the first paragraph.', source="model")]
    rows = s.store.feedback(explainer_hash=explainer.content_hash)
    assert [(r.concept_id, r.source) for r in rows] == [("wal-file", "model")]
    m = s.store.messages(s.id)[-1]
    assert "<feedback" not in m.text and "<feedback" in m.raw


async def test_unterminated_feedback_is_saved_as_cut_off(api, db, explainer):
    api.enqueue(text(OPENING), text('Sure.\n<feedback concept="pages">The example of an index split is', chunk_size=6))
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("go on"))
    assert text_of(events) == "Sure.\n"
    [fb] = s.store.feedback(explainer_hash=explainer.content_hash)
    assert fb.text.startswith("The example of an index split is") and "cut off" in fb.text


FAILURES = [
    ("auth", [http_error(401)], "ANTHROPIC_API_KEY", False),
    ("rate_limit", [http_error(429)] * 3, "", False),
    ("overloaded", [http_error(529)] * 3, "", False),
    ("stream_error", [stream_error("Pages are fixed-size blocks of the ", chunk_size=8)], "", True),
    ("connection", [drop("Pages are fixed-size blocks of the ", chunk_size=8)], "", True),
    ("no_stop_reason", [no_stop("Pages are fixed-size blocks of the ", chunk_size=8)], "", True),
]


@pytest.mark.parametrize("code,replies,mentions,partial", FAILURES, ids=[f[0] for f in FAILURES])
async def test_each_failure_keeps_the_reader_text_and_can_be_retried(api, db, explainer, code, replies, mentions, partial):
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    api.enqueue(*replies)
    events = await collect(s.reply("no, tell me about pages"))
    err = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(err) == 1 and err[0].code == code, events
    assert mentions in err[0].message
    assert isinstance(events[-1], TurnFinished) and events[-1].complete is False
    assert events[-2] is err[0]
    msgs = s.store.messages(s.id)
    # The reader's words are safe; a partial reply is kept and marked incomplete.
    assert msgs[1].role == "reader" and msgs[1].text == "no, tell me about pages"
    if partial:
        assert text_of(events) == "Pages are fixed-size blocks of the "
        assert msgs[-1].role == "tutor" and msgs[-1].complete is False
        assert msgs[-1].text == "Pages are fixed-size blocks of the "
    else:
        assert msgs[-1].role == "reader"
    assert s.can_retry
    # Retry: same reader message, no duplicate, the partial reply is not resent as history.
    api.enqueue(text("Pages are fixed-size blocks of the database file."))
    n_reader = sum(m.role == "reader" for m in msgs)
    events = await collect(s.retry())
    assert isinstance(events[-1], TurnFinished) and events[-1].complete
    assert text_of(events) == "Pages are fixed-size blocks of the database file."
    msgs = s.store.messages(s.id)
    assert sum(m.role == "reader" for m in msgs) == n_reader
    body = api.bodies[-1]
    assert "no, tell me about pages" in last_user_text(body)
    assert "Pages are fixed-size blocks of the \"" not in all_text(body["messages"])
    assert sum(1 for m in body["messages"] if m["role"] == "assistant") == 1  # only the opening
    assert not s.can_retry


async def test_timeout(api, db, explainer):
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api, max_retries=0, timeout=0.5)
    await collect(s.start())
    api.enqueue(hang(3))
    events = await collect(s.reply("no"))
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["timeout"]
    assert events[-1].complete is False
    assert s.store.messages(s.id)[-1].text == "no"


async def test_interrupting_a_reply_keeps_the_partial_marked_incomplete(api, db, explainer):
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    api.enqueue(text("First part. " + "More text. " * 20, chunk_size=12, delay=0.05))
    gen = s.reply("explain pages")
    seen = ""
    async for ev in gen:
        if isinstance(ev, TextDelta):
            seen += ev.text
            if len(seen) > 20:
                break
    await gen.aclose()
    m = s.store.messages(s.id)[-1]
    assert m.role == "tutor" and m.complete is False
    assert m.text.startswith("First part.") and len(m.text) >= len(seen)
    assert s.can_retry


async def test_cancelling_the_task_like_esc_in_the_app(api, db, explainer):
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    api.enqueue(text("Slow reply. " * 30, chunk_size=6, delay=0.05))
    first = asyncio.Event()

    async def consume():
        async for ev in s.reply("go"):
            if isinstance(ev, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    m = s.store.messages(s.id)[-1]
    assert m.role == "tutor" and not m.complete and m.text.startswith("Slow")


async def test_resume_after_restart(api, db, explainer):
    api.enqueue(
        text(OPENING),
        text('Good.\n<state concept="pages" value="known">yes</state>\nDo you know the rollback journal?'
             '<state concept="rollback-journal" value="asked"/>'),
    )
    s1 = open_session(explainer, db, api)
    await collect(s1.start())
    await collect(s1.reply("yes"))
    sid = s1.id
    s1.store.close()

    # A new process: new Store over the same file, new backend, new session object.
    s2 = open_session(explainer, db, api)
    assert s2.resumed and s2.id == sid and not s2.explainer_changed
    assert s2.states()["pages"] == "known"
    assert s2.current_concept == "rollback-journal"
    n_requests = len(api.requests)
    events = await collect(s2.start())
    assert len(api.requests) == n_requests  # resuming does not call the model
    assert "Welcome back" in text_of(events) and "rollback journal" in text_of(events)
    api.enqueue(text("Fine, then checkpoints next."))
    await collect(s2.reply("no, I don't"))
    body = api.bodies[-1]
    # The old turns are carried as history; the reader model reflects the restored state.
    assert "Do you already know about pages" in all_text(body["messages"])
    assert "yes" in all_text(body["messages"])
    assert "known" in last_user_text(body)

    # --new starts over; --resume by id prefix picks the old one.
    s3 = open_session(explainer, db, api, new=True)
    assert not s3.resumed and s3.id != sid
    s4 = open_session(explainer, db, api, session_id=sid[:8])
    assert s4.id == sid and s4.resumed


async def test_resume_after_a_failed_turn_offers_retry(api, db, explainer):
    api.enqueue(text(OPENING), http_error(401))
    s1 = open_session(explainer, db, api)
    await collect(s1.start())
    await collect(s1.reply("yes I know pages"))
    s1.store.close()
    s2 = open_session(explainer, db, api)
    assert s2.can_retry
    events = await collect(s2.start())
    assert "retry" in text_of(events)
    api.enqueue(text("Good."))
    events = await collect(s2.retry())
    assert events[-1].complete and "yes I know pages" in last_user_text(api.bodies[-1])


async def test_compaction_keeps_requests_bounded(api, db, explainer):
    """After a compaction the request is smaller and still carries the reader model and the summary."""
    long_reply = "This is a long explanation of pages. " * 60  # ~2,200 chars per turn
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    s.memory_budget_tokens = 2500
    s.memory_keep_recent = 4
    await collect(s.start())
    sizes = []
    summary_calls = 0
    for i in range(10):
        def handler(body):
            if is_summary_call(body):
                return text("Covered: pages.\nWhat the reader knows: pages (SUMMARY-MARK).\nStruggled with: none.\nOpen questions: none.")
            return text(long_reply + f'<state concept="pages" value="explained">turn {i}</state>')  # noqa: B023 (called in this iteration)
        api.handler = handler
        await collect(s.reply(f"question {i}: tell me more"))
        body = api.bodies[-1]
        sizes.append(len(json.dumps(body)))
    summary_calls = sum(is_summary_call(b) for b in api.bodies)
    assert summary_calls >= 1
    assert s.store.latest_summary(s.id) is not None
    last = api.bodies[-1]
    assert "SUMMARY-MARK" in all_text(last["system"])  # the summary travels in the system prompt
    assert "pages" in last_user_text(last) and "explained" in last_user_text(last)  # reader model
    # Bounded: the request after compactions is smaller than the largest one before.
    assert sizes[-1] < max(sizes)
    assert max(sizes[5:]) < 2 * min(sizes[5:]) + 20000


async def test_a_failed_summary_call_does_not_cost_the_reader_the_turn(api, db, explainer):
    """The summary call is housekeeping: when it fails (529 after retries) the turn goes on
    with the longer history, and the next turn tries to compact again."""
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    s.memory_budget_tokens = 300
    await collect(s.start())
    for question in ("tell me about pages", "and the journal?"):  # history now over the budget
        api.enqueue(text("A long answer about pages and journals. " * 20))
        await collect(s.reply(question))
    overloaded = {"on": True, "refused": 0}  # every summary call (and the SDK's retries) gets a 529

    def handler(body):
        if is_summary_call(body) and overloaded["on"]:
            overloaded["refused"] += 1
            return http_error(529)
        return text("Covered: pages." if is_summary_call(body) else "Pages are fixed-size blocks.")

    api.handler = handler
    events = await collect(s.reply("and then?"))
    assert overloaded["refused"] >= 1 and not any(isinstance(e, ErrorEvent) for e in events)
    assert events[-1].complete and "fixed-size blocks" in text_of(events)
    assert s.store.latest_summary(s.id) is None  # nothing folded, nothing lost
    overloaded["on"] = False
    await collect(s.reply("go on"))
    assert s.store.latest_summary(s.id) is not None  # the next turn compacted


async def test_a_20_minute_pause_still_reads_the_explainer_from_the_cache(api, db, explainer):
    """Rules + explainer carry a 1-hour breakpoint, the history a 5-minute one: a reader who
    thinks for 20 minutes between turns pays 0.1x for the explainer and rewrites only the
    history; the stored cost prices 1h writes at 2x, 5m writes at 1.25x and reads at 0.1x."""
    from tutor.engine.models import profile_for

    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    opening = api.requests[-1].usage
    stable = opening["cache_creation"]["ephemeral_1h_input_tokens"]
    assert stable > 5000  # rules + the whole sqlite-wal explainer, written once for the hour
    for i in range(3):
        api.advance(20 * 60)
        api.enqueue(text(f"Reply {i}. " + "Pages are the unit of I/O in the database file. " * 30))
        await collect(s.reply(f"answer {i}: a page is a fixed-size block of the file"))
        u = api.requests[-1].usage
        assert u["cache_read_input_tokens"] == stable  # the explainer, read after the pause
        assert u["cache_creation"]["ephemeral_1h_input_tokens"] == 0
        assert u["cache_creation"]["ephemeral_5m_input_tokens"] > 0  # the history, expired, rewritten
    prof = profile_for(s.backend.model)
    pin, pout = prof.price_input, prof.price_output
    tutor = [m for m in s.store.messages(s.id) if m.role == "tutor"]
    assert len(tutor) == len(api.requests) == 4
    for m, req in zip(tutor, api.requests):
        split = req.usage["cache_creation"]
        assert m.cache_creation_input_tokens == split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"]
        expected = (m.input_tokens * pin + split["ephemeral_5m_input_tokens"] * pin * 1.25
                    + split["ephemeral_1h_input_tokens"] * pin * 2 + m.cache_read_input_tokens * pin * 0.1
                    + m.output_tokens * pout) / 1e6
        assert m.cost_usd == pytest.approx(expected)
    assert s.store.get_session(s.id).cost_usd == pytest.approx(sum(m.cost_usd for m in tutor))


async def test_with_5_minute_breakpoints_only_a_20_minute_pause_rewrites_the_explainer(api, db, explainer, monkeypatch):
    """Why the stable block gets the 1-hour TTL: without it the same pause costs a rewrite."""
    import tutor.engine.prompt as prompt

    monkeypatch.setattr(prompt, "CACHE_TTL", {k: "5m" for k in prompt.CACHE_TTL})
    api.enqueue(text(OPENING), text("Reply."))
    s = open_session(explainer, db, api)
    await collect(s.start())
    written = api.requests[-1].usage["cache_creation_input_tokens"]
    api.advance(20 * 60)
    await collect(s.reply("yes"))
    u = api.requests[-1].usage
    assert u["cache_read_input_tokens"] == 0 and u["cache_creation_input_tokens"] >= written


async def test_reader_message_is_durable_before_the_model_is_called(api, db, explainer):
    import sqlite3

    seen = {}

    def handler(body):
        # Runs in the server thread while the SDK waits: read the file with a separate connection.
        con = sqlite3.connect(db)
        seen["rows"] = con.execute("SELECT role, text FROM messages ORDER BY seq").fetchall()
        con.close()
        return text("ok")

    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    api.handler = handler
    await collect(s.reply("my precious words"))
    assert seen["rows"][-1] == ("reader", "my precious words")


async def test_reply_is_persisted_while_it_streams(api, db, explainer):
    api.enqueue(text(OPENING))
    s = open_session(explainer, db, api)
    await collect(s.start())
    api.enqueue(text("word " * 40, chunk_size=10, delay=0.03))
    snapshots = []
    async for ev in s.reply("go"):
        if isinstance(ev, TextDelta):
            m = s.store.messages(s.id)[-1]
            if m.role == "tutor":
                snapshots.append((len(m.text), m.complete))
    assert len({n for n, _ in snapshots}) >= 3  # the stored text grew during the stream
    assert all(not c for _, c in snapshots)  # and was marked incomplete until the end
    m = s.store.messages(s.id)[-1]
    assert m.complete and m.text == "word " * 40 and m.output_tokens > 0


async def test_max_tokens_reply_is_marked_incomplete_without_an_error(api, db, explainer):
    api.enqueue(text(OPENING), text("A long answer that was cut", stop_reason="max_tokens"))
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("tell me everything"))
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert events[-1] == TurnFinished(message_id=events[-1].message_id, complete=False, stop_reason="max_tokens")
    assert s.store.messages(s.id)[-1].complete is False


async def test_failed_opening_can_be_retried(api, db, explainer):
    api.enqueue(http_error(401))
    s = open_session(explainer, db, api)
    events = await collect(s.start())
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["auth"]
    assert s.store.messages(s.id) == []
    api.enqueue(text(OPENING))
    events = await collect(s.retry())
    assert "I want to explain" in text_of(events)
    assert [m.role for m in s.store.messages(s.id)] == ["tutor"]


async def test_invalid_state_tags_are_hidden_and_ignored(api, db, explainer):
    api.enqueue(
        text(OPENING),
        text('Ok.<state concept="no-such-id" value="known"/><state concept="pages" value="brilliant"/> Next.'),
    )
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("hi"))
    assert text_of(events) == "Ok. Next."
    assert not [e for e in events if isinstance(e, StateChanged)]
    assert s.states()["pages"] == "asked"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 50])
async def test_any_chunking_over_http_gives_the_same_stored_reply(api, db, explainer, chunk_size):
    from tutor.engine.tagfilter import TagFilter

    raw = (
        "Pages: `a < b` and <feedbackform>.\n<state concept=\"pages\" value=\"known\">said so</state>\n"
        "```\n<feedback>example only</feedback>\n```\n"
        '<feedback concept="pages">Define page size earlier.</feedback>Done.'
    )
    api.enqueue(text(OPENING), text(raw, chunk_size=chunk_size))
    s = open_session(explainer, db, api)
    await collect(s.start())
    events = await collect(s.reply("go"))
    expected, tags = TagFilter.filter_all(raw)
    assert text_of(events) == expected
    m = s.store.messages(s.id)[-1]
    assert m.text == expected and m.raw == raw
    assert [f.text for f in s.store.feedback(explainer_hash=explainer.content_hash)] == ["Define page size earlier."]
    assert "example only" in expected and "Define page size" not in expected
