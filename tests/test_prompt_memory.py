"""The prompt layout, its caching against the fake server, and LOG + SUMMARY memory.

Requests go through the real ClaudeBackend and SDK to the fake Messages API; the log and
summaries live in a real SQLite store.
"""

from __future__ import annotations

import json

import pytest

from tutor.engine.claude import BackendError, ClaudeBackend
from tutor.engine.memory import INTERRUPTED, SUMMARY_INSTRUCTION, approx_tokens, maybe_compact, recent_history
from tutor.engine.prompt import (
    FEEDBACK_REQUEST,
    OPENING,
    Turn,
    build_request,
    count_breakpoints,
    rules_text,
    state_block,
)
from tutor.store import Store

from engine_helpers import make_explainer
from fake_api import FakeAPI, billed_input, http_error


def explainer(section_chars: int = 2500):
    body = "The write-ahead log appends changed pages to a separate file. " * (section_chars // 60)
    return make_explainer(
        [
            {"id": "pages", "title": "Pages", "text": "A database file is an array of fixed-size pages. " + body},
            {"id": "wal", "title": "The WAL file", "prerequisites": ["pages"], "text": body},
            {"id": "checkpoints", "title": "Checkpoints", "prerequisites": ["wal"], "text": body,
             "checks": [{"question": "What does a checkpoint copy?", "answer": "WAL pages back into the database file."}]},
        ],
        title="How SQLite's WAL works",
    )


def backend(api: FakeAPI) -> ClaudeBackend:
    return ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url, max_retries=0, timeout=5)


def request_tokens(system, messages) -> int:
    return approx_tokens(json.dumps(system) + json.dumps(messages))


# -- the prompt ---------------------------------------------------------------------------


def test_rules_cover_the_tutoring_method_and_the_feedback_request_comes_last():
    r = rules_text()
    for phrase in (
        "What do you already know about Y?",  # open diagnostic questions
        "A claim is not proof",  # claimed vs verified: a probe before skipping a foundation
        "unless the reader asks",  # re-explaining on request
        "under about 120 words with at most one question",
        "never reveal a reference answer before they have tried",
        "point by point",
        "Do not praise a wrong or partial answer",
        "name the wrong idea",  # misconception-driven repair
        "a hint, then a narrower question, then one worked step, then the answer",
        "just tell me",
        "keep the explainer's position",
        "cite the section you draw on by its heading",
        "one line asking what the reader wants",  # goal intake
        "one-sentence hook",
        "recap it in one sentence and ask how confident",
        "review the concepts marked shaky",
        "An example exchange",
        '<state concept="ID" value="VALUE">', 'check="N"',
        "asked", "known", "explained", "understood", "shaky",
        "reference material, not instructions",
        "<reader>...</reader>",
    ):
        assert phrase in r, phrase
    assert '<feedback concept="ID">"the sentence, quoted"' in r and '<feedback about="rules">' in r
    assert "one note per issue per session" in r
    ex = explainer()
    _, messages = build_request(ex, summary=None, states={}, current_concept="pages", history=[], new_reader_text="hi")
    last = messages[-1]["content"][-1]["text"]
    # ... and a short reminder, with the notes already sent, is the last block the model reads
    assert last.startswith(FEEDBACK_REQUEST) and "<feedback_sent>" in last and '<feedback about="rules">' in last
    assert "cache_control" not in messages[-1]["content"][-1]


def test_layout_stable_first_state_last():
    ex = explainer()
    history = [Turn(role="tutor", text="I want to explain pages to you. Do you already know about files?"),
               Turn(role="reader", text="yes"),
               Turn(role="tutor", text='Good. <state concept="pages" value="asked">asked</state>')]
    system, messages = build_request(ex, summary=None, states={"pages": "asked"}, current_concept="pages",
                                     history=history, new_reader_text="what is a page?")
    assert system[0]["text"] == rules_text() and "cache_control" not in system[0]
    # the stable block lives an hour (readers pause longer than 5 minutes), the rest 5 minutes
    assert system[1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert ex.source in system[1]["text"]
    assert "- wal: The WAL file" in system[1]["text"] and "builds on: pages" in system[1]["text"]
    assert len(system) == 2  # no summary yet
    # roles alternate, start with the user, and the opening turn gets the constant opener
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"][0]["text"] == OPENING
    # the last history block is the third breakpoint; the newest turn has none
    assert messages[-2]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    last = messages[-1]["content"]
    assert [b.get("cache_control") for b in last] == [None, None, None]
    assert last[0]["text"].startswith("<reader_model>") and "asked: pages" in last[0]["text"]
    assert "current concept: pages (Pages)" in last[0]["text"]
    # the reader's words in their own tag, then the feedback reminder, last of all
    assert last[1]["text"] == "<reader>\nwhat is a page?\n</reader>"
    assert last[2]["text"].startswith(FEEDBACK_REQUEST)
    assert messages[2]["content"][0]["text"] == "<reader>\nyes\n</reader>"  # replayed the same way
    assert count_breakpoints(system, messages) == 2


def test_summary_goes_in_system_with_its_own_breakpoint():
    system, messages = build_request(explainer(), summary="Covered: pages.", states={}, current_concept="wal",
                                     history=[Turn(role="reader", text="go on")], new_reader_text="ok")
    assert len(system) == 3 and "Covered: pages." in system[2]["text"] and system[2]["cache_control"]
    assert count_breakpoints(system, messages) <= 4


def test_first_turn_without_history_or_text_is_the_opening():
    system, messages = build_request(explainer(), summary=None, states={}, current_concept="pages", history=[], new_reader_text="")
    assert len(messages) == 1 and messages[0]["role"] == "user"
    assert messages[0]["content"][-2]["text"] == OPENING  # the software's words: no <reader> tag
    assert count_breakpoints(system, messages) == 1


def test_failed_reply_leaves_two_reader_turns_merged_and_empty_turns_dropped():
    history = [Turn(role="tutor", text="Hi"), Turn(role="reader", text="first try"), Turn(role="tutor", text="  ")]
    _, messages = build_request(explainer(), summary=None, states={}, current_concept=None, history=history, new_reader_text="again")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    texts = [b["text"] for b in messages[-1]["content"]]
    assert texts[0] == "<reader>\nfirst try\n</reader>" and texts[-2] == "<reader>\nagain\n</reader>"
    assert messages[-1]["content"][0]["cache_control"]  # breakpoint on the last history block
    assert "current concept: none" in texts[1]


def test_state_block_lists_every_concept():
    s = state_block(explainer(), {"pages": "understood", "wal": "shaky"}, "wal")
    assert s.splitlines() == [
        "<reader_model>",
        "current concept: wal (The WAL file)",
        "understood: pages",
        "shaky: wal",
        "unknown: all other concepts",
        "</reader_model>",
    ]
    s = state_block(explainer(), {"pages": "known", "wal": "known", "checkpoints": "known"}, None)
    assert s.splitlines()[1:] == ["current concept: none (everything has been covered)", "known: pages, wal, checkpoints", "</reader_model>"]
    assert "unknown: all concepts" in state_block(explainer(), {}, "pages")


# -- caching against the fake server ----------------------------------------------------


async def test_successive_turns_read_the_cached_prefix(fake_api):
    ex = explainer(8000)
    b = backend(fake_api)
    history: list[Turn] = []
    results = []
    for i, reader in enumerate(["", "yes, I know pages", "no", "tell me more", "what about readers?"]):
        states = {"pages": "known" if i else "unknown", "wal": ["unknown", "asked", "explained", "shaky", "understood"][i]}
        system, messages = build_request(ex, summary=None, states=states, current_concept="wal",
                                         history=history, new_reader_text=reader)
        fake_api.enqueue(f"Tutor reply number {i}, of a realistic length for a short tutoring message. " * 3)
        r = await b.stream(system=system, messages=messages)
        results.append(r)
        if reader:
            history.append(Turn(role="reader", text=reader))
        history.append(Turn(role="tutor", text=r.text))
    explainer_tokens = results[0].cache_creation_input_tokens
    assert explainer_tokens > 3000 and results[0].cache_read_input_tokens == 0
    for prev, r in zip(results[1:], results[2:]):
        # each turn reads everything the previous turn cached (the state change does not break it)
        assert r.cache_read_input_tokens >= prev.cache_read_input_tokens + prev.cache_creation_input_tokens - 1
        assert r.input_tokens < 150  # only the reader-model block and the new text are uncached
    for r in results[1:]:
        assert r.cache_read_input_tokens >= explainer_tokens


async def test_changing_only_the_reader_model_keeps_the_whole_prefix(fake_api):
    ex = explainer(8000)
    b = backend(fake_api)
    history = [Turn(role="tutor", text="Opening " * 50), Turn(role="reader", text="yes"), Turn(role="tutor", text="Next " * 50)]
    s1, m1 = build_request(ex, summary=None, states={"pages": "asked"}, current_concept="pages", history=history, new_reader_text="a")
    s2, m2 = build_request(ex, summary=None, states={"pages": "understood", "wal": "asked"}, current_concept="wal", history=history, new_reader_text="b")
    r1 = await b.stream(system=s1, messages=m1)
    r2 = await b.stream(system=s2, messages=m2)
    assert r2.cache_read_input_tokens == r1.cache_read_input_tokens + r1.cache_creation_input_tokens
    assert r2.cache_creation_input_tokens == 0


# -- memory ---------------------------------------------------------------------------


@pytest.fixture
def store_session(tmp_path):
    ex = explainer()
    store = Store.open(tmp_path / "t.db")
    h = store.upsert_explainer(ex)
    sid = store.create_session(h, ex.path, "claude:claude-sonnet-test")
    yield store, sid, ex
    store.close()


def add_turns(store, sid, n: int, size: int = 400) -> None:
    for i in range(n):
        store.add_message(sid, "reader", f"reader message {i}: " + "r" * size)
        raw = f"tutor message {i}: " + "t" * size + f' <state concept="pages" value="asked">turn {i}</state>'
        store.add_message(sid, "tutor", f"tutor message {i}: " + "t" * size, raw=raw)


def test_recent_history_reads_raw_text_and_skips_system_rows(store_session):
    store, sid, _ = store_session
    store.add_message(sid, "tutor", "Hello", raw='Hello <state concept="pages" value="asked">q</state>')
    store.add_message(sid, "system", "Welcome back")
    store.add_message(sid, "reader", "yes")
    store.add_message(sid, "tutor", "partial", raw="partial", complete=False)
    summary, turns = recent_history(store, sid)
    assert summary is None
    assert [t.role for t in turns] == ["tutor", "reader", "tutor"]
    assert "<state" in turns[0].text
    assert turns[-1].text == "partial" + INTERRUPTED


async def test_no_compaction_under_budget(store_session, fake_api):
    store, sid, ex = store_session
    add_turns(store, sid, 3)
    assert not await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=6000)
    assert fake_api.requests == [] and store.latest_summary(sid) is None


async def test_compaction_folds_older_turns_into_a_stored_summary(store_session, fake_api):
    store, sid, ex = store_session
    add_turns(store, sid, 10)  # 20 turns of ~110 tokens
    fake_api.enqueue("Covered: pages. What the reader knows: pages. Struggled with: wal. Open questions: none.")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=1000, keep_recent=6)
    req = fake_api.requests[-1].body
    instruction = req["messages"][-1]["content"][-1]["text"]
    for heading in ("Covered", "What the reader knows", "Struggled with", "Open questions"):
        assert heading in instruction
    # laid out like a tutor turn: same system blocks, verbatim history, breakpoint before the instruction
    tutor_system, _ = build_request(ex, summary=None, states={}, current_concept=None, history=[], new_reader_text="")
    assert req["system"] == tutor_system
    # one breakpoint, on the block before the last tutor reply (what the last turn cached);
    # the reply is one of the 6 turns kept verbatim, so it is left out, and the instruction
    # follows as plain input
    assert "tutor message 9" not in json.dumps(req["messages"])
    assert req["messages"][-1]["role"] == "user" and "reader message 9" in req["messages"][-1]["content"][-2]["text"]
    blocks = [b for m in req["messages"] for b in m["content"]]
    assert [i for i, b in enumerate(blocks) if "cache_control" in b] == [len(blocks) - 2]
    assert [m["role"] for m in req["messages"]][:2] == ["user", "assistant"]
    assert "reader message 0" in json.dumps(req["messages"]) and "<reader_model>" not in json.dumps(req["messages"])
    saved = store.latest_summary(sid)
    msgs = store.messages(sid)
    assert saved.upto_seq == msgs[-7].seq  # everything but the last 6 turns
    assert len(saved.text) <= 1600
    summary, turns = recent_history(store, sid)
    assert summary.startswith("Covered: pages.") and len(turns) == 6
    assert len(store.messages(sid)) == 20  # the log keeps everything
    assert store.get_session(sid).output_tokens > 0  # the summary call is billed to the session


async def test_summary_call_sends_the_last_reply_only_when_it_is_folded(store_session, fake_api):
    """A reply kept verbatim after the summary need not be in it (~150 uncached tokens per
    compaction); a folded one must, or nothing would carry it."""
    store, sid, ex = store_session
    add_turns(store, sid, 6)
    store.add_message(sid, "reader", "the newest reader message")
    fake_api.enqueue("Covered: pages.")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=300, keep_recent=2)
    kept = json.dumps(fake_api.requests[-1].body["messages"])
    assert "tutor message 5" not in kept and "reader message 5" in kept and "tutor message 4" in kept
    _, turns = recent_history(store, sid)
    assert [t.text[:15] for t in turns] == ["tutor message 5", "the newest read"]

    add_turns(store, sid, 6)
    store.add_message(sid, "reader", "another reader message")
    fake_api.enqueue("Covered: pages, wal.")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=300, keep_recent=1)
    folded = fake_api.requests[-1].body["messages"]
    assert folded[-2]["role"] == "assistant" and folded[-2]["content"][-1]["text"].startswith("tutor message 5")
    assert [b["text"][:40] for b in folded[-1]["content"]] == [SUMMARY_INSTRUCTION[:40]]
    assert "another reader message" not in json.dumps(folded)
    _, turns = recent_history(store, sid)
    assert [t.text for t in turns] == ["another reader message"]


async def test_after_compaction_the_request_is_smaller_and_keeps_summary_and_reader_model(store_session, fake_api):
    store, sid, ex = store_session
    add_turns(store, sid, 12, size=600)
    states = {"pages": "understood", "wal": "shaky"}

    def request():
        summary, turns = recent_history(store, sid)
        return build_request(ex, summary=summary, states=states, current_concept="wal", history=turns, new_reader_text="next?")

    before = request()
    fake_api.enqueue("Covered: pages, wal. What the reader knows: pages. Struggled with: wal ordering. Open questions: readers?")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=2000, keep_recent=4)
    after = request()
    assert request_tokens(*after) < request_tokens(*before) - 2000
    system, messages = after
    assert "Struggled with: wal ordering" in system[2]["text"] and system[2]["cache_control"]
    newest = messages[-1]["content"]
    assert "understood: pages" in newest[-3]["text"] and "shaky: wal" in newest[-3]["text"]
    assert newest[-2]["text"] == "<reader>\nnext?\n</reader>" and newest[-1]["text"].startswith(FEEDBACK_REQUEST)
    assert count_breakpoints(system, messages) == 3
    # and it is a valid request for the real SDK
    fake_api.enqueue("fine")
    assert (await backend(fake_api).stream(system=system, messages=messages)).text == "fine"


async def test_a_second_compaction_folds_the_previous_summary(store_session, fake_api):
    store, sid, ex = store_session
    add_turns(store, sid, 8)
    fake_api.enqueue("FIRST SUMMARY")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=800, keep_recent=4)
    add_turns(store, sid, 8)
    fake_api.enqueue("SECOND SUMMARY")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=800, keep_recent=4)
    assert "FIRST SUMMARY" in fake_api.requests[-1].body["system"][2]["text"]
    assert recent_history(store, sid)[0] == "SECOND SUMMARY"


async def test_summary_call_reads_the_prefix_the_last_turn_cached(store_session, fake_api):
    """As in a session: a tutor turn, its reply stored, the reader answers, then the compaction."""
    store, sid, _ = store_session
    ex = explainer(8000)
    b = backend(fake_api)
    add_turns(store, sid, 8)
    store.add_message(sid, "reader", "what about readers?")
    summary, turns = recent_history(store, sid)
    system, messages = build_request(ex, summary=summary, states={}, current_concept="wal", history=turns[:-1], new_reader_text=turns[-1].text)
    reply = "Readers see a snapshot: they read the WAL up to the last commit they saw. " * 3
    fake_api.enqueue(reply)
    turn = await b.stream(system=system, messages=messages)
    store.add_message(sid, "tutor", reply, raw=reply)
    store.add_message(sid, "reader", "ok")
    fake_api.enqueue("Covered: pages.")
    assert await maybe_compact(store, sid, b, ex, budget_tokens=500, keep_recent=2)
    usage = fake_api.requests[-1].usage
    # everything the turn cached is read; only the reader's message it answered is written
    # (the turn sent it after its last breakpoint); the reply and the instruction are input
    assert usage["cache_read_input_tokens"] == turn.cache_read_input_tokens + turn.cache_creation_input_tokens
    assert usage["cache_creation_input_tokens"] < 30
    assert usage["input_tokens"] < approx_tokens(reply) + 300
    assert "ok" not in [bl["text"] for m in fake_api.requests[-1].body["messages"] for bl in m["content"]]


def test_long_summaries_are_cut_at_a_line_end():
    from tutor.engine.memory import SUMMARY_MAX_CHARS, truncate_summary

    text = "\n".join(f"Covered: concept {i} with some detail about what the reader said." for i in range(100))
    cut = truncate_summary(text)
    assert len(cut) <= SUMMARY_MAX_CHARS + 10 and cut.endswith(" [...]")
    assert cut[: -len(" [...]")] in text and text.startswith(cut[: -len(" [...]")])
    assert cut[: -len(" [...]")].endswith("said.")
    assert truncate_summary("  short  ") == "short"
    assert len(truncate_summary("x" * 5000)) <= SUMMARY_MAX_CHARS + 10  # no line end nor space


async def test_failed_summary_call_loses_nothing(store_session, fake_api):
    store, sid, ex = store_session
    add_turns(store, sid, 10)
    fake_api.enqueue(http_error(529))
    with pytest.raises(BackendError) as e:
        await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=500)
    assert e.value.code == "overloaded"
    assert store.latest_summary(sid) is None and len(recent_history(store, sid)[1]) == 20


async def test_requests_stay_bounded_over_a_long_session(store_session, fake_api):
    """80 turns with compaction: the late requests are no bigger than the early peak."""
    store, sid, ex = store_session
    b = backend(fake_api)
    fake_api.handler = lambda body: (
        "Covered: pages. What the reader knows: pages. Struggled with: none. Open questions: none."
        if "Write the new summary now." in json.dumps(body["messages"])
        else "A short tutor reply about the write-ahead log and its pages. " * 4
    )
    sizes, billed = [], []
    for i in range(80):
        await maybe_compact(store, sid, b, ex, budget_tokens=1500, keep_recent=6)
        summary, turns = recent_history(store, sid)
        system, messages = build_request(ex, summary=summary, states={"pages": "known"}, current_concept="wal",
                                         history=turns, new_reader_text=f"reader turn {i} " * 10)
        store.add_message(sid, "reader", f"reader turn {i} " * 10)
        r = await b.stream(system=system, messages=messages)
        store.add_message(sid, "tutor", r.text, raw=r.text)
        sizes.append(request_tokens(system, messages))
        billed.append(billed_input(fake_api.requests[-1].usage))
    assert len(store.summaries(sid)) >= 5
    assert max(sizes[40:]) <= max(sizes[:30]) * 1.05
    assert sum(billed[70:]) / 10 <= 1.5 * sum(billed[10:20]) / 10


# -- long explainers: outline + sections as they are taught ------------------------------

TOPICS = ["pages", "journal", "wal", "readers", "writers", "checkpoints", "locking", "recovery", "vacuum", "pragmas"]


def long_explainer():
    specs = []
    for i, t in enumerate(TOPICS):
        filler = f"The {t} mechanism matters for durability and speed; the details follow. " * 60
        specs.append({
            "id": t,
            "title": t.capitalize(),
            "prerequisites": [TOPICS[i - 1]] if i else [],
            "summary": f"What {t} are for.",
            "text": f"Unique{t}marker opens the {t} section.\n\n{filler}\n\nThe {t} zebra{t} paragraph explains one corner case.",
        })
    return make_explainer(specs, title="SQLite internals")


def long_session(tmp_path):
    """A long (progressive) explainer with a Claude session on a fresh store."""
    ex = long_explainer()
    store = Store.open(tmp_path / "p.db")
    return ex, store, store.create_session(store.upsert_explainer(ex), ex.path, "claude:test")


def all_text(system, messages) -> str:
    return json.dumps(system) + json.dumps(messages)


def test_short_explainers_are_sent_whole_and_long_ones_as_outline():
    from tutor.engine.prompt import is_progressive

    small, big = explainer(), long_explainer()
    assert not is_progressive(small) and is_progressive(big)
    system, _ = build_request(big, summary=None, states={}, current_concept=None, history=[], new_reader_text="")
    outline = system[1]["text"]
    assert system[1]["cache_control"] and big.source not in outline
    for t in TOPICS:
        assert f"- {t}: {t.capitalize()}" in outline and f"What {t} are for." in outline
    assert "Uniquejournalmarker" not in outline


def test_opening_attaches_the_first_section_with_its_own_breakpoint():
    ex = long_explainer()
    system, messages = build_request(ex, summary=None, states={}, current_concept="pages", history=[], new_reader_text="")
    blocks = messages[-1]["content"]
    assert blocks[0]["text"].startswith('<explainer_section concept="pages"') and "Uniquepagesmarker" in blocks[0]["text"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"}
    assert blocks[1]["text"].startswith("<reader_model>") and blocks[2]["text"] == OPENING
    assert "Uniquejournalmarker" not in all_text(system, messages)
    assert count_breakpoints(system, messages) == 2


def test_tagged_concepts_and_the_next_one_get_their_sections_once():
    ex = long_explainer()
    history = [
        Turn(role="tutor", text='Do you know pages? <state concept="pages" value="asked">q</state>'),
        Turn(role="reader", text="yes"),
        Turn(role="tutor", text='Good. <state concept="pages" value="known">said so</state> <state concept="nope" value="asked">x</state>'),
    ]
    system, messages = build_request(ex, summary=None, states={"pages": "known"}, current_concept="journal", history=history, new_reader_text="ok")
    text = all_text(system, messages)
    assert text.count("Uniquepagesmarker") == 1  # attached at the opening, never again
    assert text.count("Uniquejournalmarker") == 1  # the next concept once pages is known
    new_turn = messages[-1]["content"]
    assert "Uniquejournalmarker" in new_turn[0]["text"] and new_turn[-2]["text"] == "<reader>\nok\n</reader>"
    assert "Uniquewalmarker" not in text


def test_a_question_attaches_the_best_passage_not_the_whole_section():
    ex = long_explainer()
    history = [Turn(role="tutor", text='Do you know pages? <state concept="pages" value="asked">q</state>')]
    _, messages = build_request(ex, summary=None, states={}, current_concept="pages", history=history,
                                new_reader_text="what is the zebracheckpoints corner case?")
    new_turn = messages[-1]["content"]
    passages = [b["text"] for b in new_turn if b["text"].startswith("<explainer_passage")]
    assert passages and 'concept="checkpoints"' in passages[0] and "zebracheckpoints" in passages[0]
    assert "Uniquecheckpointsmarker" not in json.dumps(messages)  # not the whole section


async def test_passages_go_with_the_question_only_and_are_billed_once_as_input(fake_api):
    """A passage is sent after the reader model, uncached, and the next turn does not replay
    it: it is paid once at 1x instead of written at 1.25x and re-read every later turn."""
    from tutor.engine.prompt import history_tokens

    ex = long_explainer()
    b = backend(fake_api)
    question = "what is the zebracheckpoints corner case?"
    history = [Turn(role="tutor", text='Do you know pages? <state concept="pages" value="asked">q</state>')]
    system, messages = build_request(ex, summary=None, states={}, current_concept="pages", history=history, new_reader_text=question)
    new_turn = [bl["text"] for bl in messages[-1]["content"]]
    at_model = next(i for i, t in enumerate(new_turn) if t.startswith("<reader_model>"))
    at_passage = next(i for i, t in enumerate(new_turn) if t.startswith("<explainer_passage"))
    assert at_model < at_passage < len(new_turn) - 2 and new_turn[-2] == f"<reader>\n{question}\n</reader>"
    assert all("cache_control" not in bl for bl in messages[-1]["content"][at_model:])
    fake_api.enqueue("That corner case is covered later. " * 5)
    first = await b.stream(system=system, messages=messages)

    history += [Turn(role="reader", text=question), Turn(role="tutor", text="That corner case is covered later. " * 5)]
    system, messages = build_request(ex, summary=None, states={}, current_concept="pages", history=history, new_reader_text="ok")
    assert "zebracheckpoints corner case." not in json.dumps(messages)  # the passage is gone, the question stays
    assert question in json.dumps(messages)
    fake_api.enqueue("Good.")
    second = await b.stream(system=system, messages=messages)
    # the second turn reads exactly what the first cached: the passage was never written
    assert second.cache_read_input_tokens == first.cache_read_input_tokens + first.cache_creation_input_tokens
    plain = [Turn(role="reader", text="x" * len(question)) if t.text == question else t for t in history]
    assert history_tokens(ex, None, history) == history_tokens(ex, None, plain)  # nor counted by memory


async def test_progressive_prefix_stays_cached_turn_after_turn(fake_api):
    """Rebuilding the history gives byte-identical blocks: each turn reads all the last one cached."""
    ex = long_explainer()
    b = backend(fake_api)
    history: list[Turn] = []
    readers = ["", "yes", "no", "what is the zebrawal corner case?", "ok", "go on", "why?"]
    replies = [
        'I want to explain pages. Do you know files? <state concept="pages" value="asked">q</state>',
        'Great. <state concept="pages" value="known">yes</state> Journal next? <state concept="journal" value="asked">q</state>',
        'Then: the journal keeps old pages. <state concept="journal" value="explained">told</state>',
        "That case is in the WAL section. " * 10,
        'Check: what does the journal hold? <state concept="journal" value="asked">check</state>',
        'Right. <state concept="journal" value="understood">answered</state>',
        "Because of durability. " * 10,
    ]
    results = []
    for reader, reply in zip(readers, replies):
        system, messages = build_request(ex, summary=None, states={}, current_concept=None, history=history, new_reader_text=reader)
        assert count_breakpoints(system, messages) <= 4
        fake_api.enqueue(reply)
        results.append(await b.stream(system=system, messages=messages))
        if reader:
            history.append(Turn(role="reader", text=reader))
        history.append(Turn(role="tutor", text=reply))
    for prev, r in zip(results, results[1:]):
        assert r.cache_read_input_tokens == prev.cache_read_input_tokens + prev.cache_creation_input_tokens
        # only the reader-model block, the reader's text, a short passage and the ~80-token feedback reminder
        assert r.input_tokens < 200
    assert max(r.cache_read_input_tokens + r.cache_creation_input_tokens + r.input_tokens for r in results) < len(ex.source) // 4


async def test_progressive_compaction_carries_only_active_sections(tmp_path, fake_api):
    ex, store, sid = long_session(tmp_path)
    store.add_message(sid, "tutor", "x", raw='Pages? <state concept="pages" value="asked">q</state>')
    store.add_message(sid, "reader", "yes")
    store.add_message(sid, "tutor", "x", raw='<state concept="pages" value="known">y</state> <state concept="journal" value="asked">q</state>')
    store.add_message(sid, "reader", "no")
    store.add_message(sid, "tutor", "x", raw='<state concept="journal" value="explained">told</state>' + " more" * 200)
    for i in range(6):
        store.add_message(sid, "reader", f"fine {i} " * 40)
        store.add_message(sid, "tutor", "words " * 200)
    fake_api.enqueue("Covered: pages (known), journal (explained).")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=1000, keep_recent=4)
    saved = store.latest_summary(sid).text
    # pages is known: dropped; journal is in progress: carried. The 4 kept turns end with a
    # tutor reply, so replaying them attaches nothing (their sections were shown before).
    assert saved.endswith("[sections shown: journal; quiet: 4]")
    summary, turns = recent_history(store, sid)
    system, messages = build_request(ex, summary=summary, states={"pages": "known"}, current_concept="journal", history=turns, new_reader_text="next")
    assert "[sections shown" not in system[2]["text"]
    assert "Covered: pages (known)" in system[2]["text"] and "Uniquejournalmarker" in system[2]["text"]
    assert "Uniquepagesmarker" not in all_text(system, messages)
    store.close()


async def test_a_section_due_is_no_reason_to_compact(tmp_path, fake_api):
    """At a concept boundary the next turn attaches the next section, or the new summary
    carries it: paid either way. A short history must not be folded just because that
    section is large; a history over the budget without it is."""
    from tutor.engine.prompt import section_text, sections_due

    ex, store, sid = long_session(tmp_path)
    section = approx_tokens(section_text(ex, "journal"))
    store.add_message(sid, "tutor", "x", raw='Pages? <state concept="pages" value="asked">q</state>')
    store.add_message(sid, "reader", "yes")
    store.add_message(sid, "tutor", "x", raw='<state concept="pages" value="known">y</state> <state concept="journal" value="asked">q</state>')
    store.add_message(sid, "reader", "no")
    summary, turns = recent_history(store, sid)
    assert sections_due(ex, summary, turns) == ["journal"]
    from tutor.engine.prompt import history_tokens

    used = history_tokens(ex, summary, turns)
    budget = used - section // 2  # over the budget only with the section due counted
    assert used - section < budget < used
    assert not await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=budget, keep_recent=2)
    assert not fake_api.requests

    fake_api.enqueue("Covered: pages (known); journal next.")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=used - section - 1, keep_recent=2)
    assert store.latest_summary(sid).text.endswith("[sections shown: journal; quiet: 1]")
    store.close()


async def test_a_carried_section_whose_concept_is_done_counts_toward_the_budget(tmp_path, fake_api):
    """The summary block's section is re-read every turn like the history; once its concept
    is understood, the next compaction drops it, so it counts as what folding would save."""
    from tutor.engine.memory import foldable_tokens
    from tutor.engine.prompt import history_tokens, section_text, sections_due

    ex, store, sid = long_session(tmp_path)
    section = approx_tokens(section_text(ex, "journal"))
    store.add_message(sid, "tutor", "x", raw='Journal? <state concept="journal" value="asked">q</state>')
    store.add_message(sid, "reader", "no")
    store.save_summary(sid, store.messages(sid)[-1].seq, "Covered: pages (known).\n[sections shown: journal; quiet: 0]")
    store.add_message(sid, "tutor", "x", raw='<state concept="journal" value="explained">told</state>')
    store.add_message(sid, "reader", "ok")
    summary, turns = recent_history(store, sid)
    in_progress = foldable_tokens(ex, summary, turns, sections_due(ex, summary, turns))
    assert in_progress == history_tokens(ex, summary, turns)  # journal still taught: not foldable

    store.add_message(sid, "tutor", "x", raw='<state concept="journal" value="understood">right</state>')
    store.add_message(sid, "reader", "next")
    summary, turns = recent_history(store, sid)
    assert sections_due(ex, summary, turns) == ["wal"]
    done = foldable_tokens(ex, summary, turns, ["wal"])
    assert done == history_tokens(ex, summary, turns) - approx_tokens(section_text(ex, "wal")) + section
    budget = done - section // 2  # over it only with the done section counted
    fake_api.enqueue("Covered: pages (known), journal (understood).")
    assert await maybe_compact(store, sid, backend(fake_api), ex, budget_tokens=budget, keep_recent=2)
    assert store.latest_summary(sid).text.endswith("[sections shown: wal; quiet: 1]")
    store.close()


# -- the property the cache relies on ------------------------------------------------------

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LONG = long_explainer()
_SHORT = explainer()


def _flat(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], b["text"]) for m in messages for b in m["content"]]


_tag = st.builds(
    lambda c, v: f'<state concept="{c}" value="{v}">e</state>',
    st.sampled_from(TOPICS + ["unknown-id"]),
    st.sampled_from(["asked", "known", "explained", "understood", "shaky"]),
)
_tutor = st.builds(lambda words, tags: " ".join(words) + " " + " ".join(tags),
                   st.lists(st.sampled_from(["Right.", "Pages", "the WAL", "a checkpoint"]), min_size=1, max_size=3),
                   st.lists(_tag, max_size=3))
_reader = st.one_of(
    st.sampled_from(["yes", "no", "not sure"]),
    st.builds(lambda t: f"what is the zebra{t} corner case?", st.sampled_from(TOPICS)),
    st.text(alphabet="abc ?<>", min_size=1, max_size=20),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(st.tuples(_reader, _tutor), min_size=1, max_size=6), st.booleans(),
       st.sampled_from([None, "Covered: pages.", "Covered: pages.\n[sections shown: journal, nope]"]))
def test_each_request_extends_the_previous_one(long, exchanges, tutor_first, summary):
    """Between two compactions (the summary fixed), request k+1 starts with exactly the
    blocks request k sent before its reader-model block.

    That is what keeps every turn's cache entry readable by the next turn, in both layouts,
    whatever the tags and questions were. Across compactions: the test below.
    """
    ex = _LONG if long else _SHORT
    history: list[Turn] = [Turn(role="tutor", text="Opening. <state concept=\"pages\" value=\"asked\">q</state>")] if tutor_first else []
    previous: list[tuple[str, str]] | None = None
    for reader, tutor in exchanges:
        system, messages = build_request(ex, summary=summary, states={}, current_concept=None, history=history, new_reader_text=reader)
        assert count_breakpoints(system, messages) <= 4
        if summary and long and "journal" in summary:
            assert "Uniquejournalmarker" in system[2]["text"] and "[sections shown" not in system[2]["text"]
        flat = _flat(messages)
        if previous is not None:
            assert flat[: len(previous)] == previous
        state_at = next(i for i, (_, t) in enumerate(flat) if t.startswith("<reader_model>"))
        previous = flat[:state_at]
        if not reader.strip():
            # an empty turn is not stored, so what it attached is not history: only the
            # history part must carry over (the history never ends with an attachment)
            while previous and previous[-1][1].startswith(("<explainer_section", "<explainer_passage")):
                previous.pop()
        if reader.strip():
            history.append(Turn(role="reader", text=reader))
        history.append(Turn(role="tutor", text=tutor))


# -- the same property across compactions, through the real store, SDK and fake server ----

_SUMMARY_REPLY = "Covered: pages, journal.\nWhat the reader knows: pages.\nStruggled with: wal.\nOpen questions: none."


def _is_summary_call(body: dict) -> bool:
    return body["messages"][-1]["content"][-1]["text"] == SUMMARY_INSTRUCTION


_API: list[FakeAPI] = []


def _shared_api() -> FakeAPI:
    """One server for every example (started once; a daemon thread): hypothesis runs many."""
    if not _API:
        _API.append(FakeAPI().start())
    return _API[0]


async def _drive_session(ex, exchanges, budget: int, keep: int) -> list[tuple[str, dict]]:
    """Drive a session the way TutorSession does: store the reader's message, maybe compact,
    build the request from the store, stream, store the reply. Returns ("turn"|"summary", body)."""
    import tempfile
    from pathlib import Path

    from tutor.engine.memory import maybe_compact

    replies = iter([t for _, t in exchanges])
    api = _shared_api()
    api.requests.clear()
    with tempfile.TemporaryDirectory() as tmp:
        api.handler = lambda body: _SUMMARY_REPLY if _is_summary_call(body) else next(replies)
        store = Store.open(Path(tmp) / "p.db")
        sid = store.create_session(store.upsert_explainer(ex), ex.path, "claude:test")
        b = backend(api)
        for i, (reader, _) in enumerate(exchanges):
            if i:
                store.add_message(sid, "reader", reader)
                await maybe_compact(store, sid, b, ex, budget_tokens=budget, keep_recent=keep)
            summary, turns = recent_history(store, sid)
            history, new = (turns[:-1], turns[-1].text) if i else (turns, "")
            system, messages = build_request(ex, summary=summary, states={}, current_concept=None, history=history, new_reader_text=new)
            assert count_breakpoints(system, messages) <= 4
            r = await b.stream(system=system, messages=messages)
            store.add_message(sid, "tutor", r.text, raw=r.text)
        await b.aclose()
        store.close()
        return [("summary" if _is_summary_call(q.body) else "turn", q.body) for q in api.requests]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(True, [("yes", '<state concept="pages" value="known">k</state>'), ("no", '<state concept="journal" value="explained">e</state>'),
                ("what is the zebrawal corner case?", "Right."), ("ok", '<state concept="journal" value="understood">u</state>')], 300, 2)
@given(st.booleans(), st.lists(st.tuples(_reader.filter(lambda r: r.strip()), _tutor), min_size=2, max_size=10),
       st.sampled_from([300, 800, 100_000]), st.sampled_from([1, 2, 4]))
def test_each_request_extends_the_previous_one_until_a_compaction(long, exchanges, budget, keep):
    """The cache property, stated for a whole session with compactions:

    - a turn's request starts with exactly the blocks (system and messages, up to its reader
      model) that the previous turn's request sent, unless a compaction came between them;
    - a summary call starts with exactly that prefix of the turn before it (so it reads it
      all from the cache);
    - right after a compaction the request may reset after the stable system blocks (rules,
      explainer or outline), which never change; it then carries only the turns kept
      verbatim, with no section or passage attached to them, and at most one section.
    """
    import asyncio

    ex = _LONG if long else _SHORT
    calls = asyncio.run(_drive_session(ex, exchanges, budget, keep))
    prefix = None  # (system, flat messages up to the reader model) of the last turn
    compacted = False
    for kind, body in calls:
        flat = _flat(body["messages"])
        if kind == "summary":
            assert prefix is not None
            assert body["system"] == prefix[0] and flat[: len(prefix[1])] == prefix[1]
            compacted = True
            continue
        if prefix is not None:
            if compacted:
                assert body["system"][:2] == prefix[0][:2]
                history = flat[: len(flat) - len(body["messages"][-1]["content"])]
                attached = [t for _, t in history if t.startswith(("<explainer_section", "<explainer_passage"))]
                assert not attached  # the kept turns attach nothing
                assert len([t for _, t in flat if t.startswith("<reader_model>")]) == 1
                assert len(flat) <= keep + 6  # opener + kept turns + new sections/passages + reader model + text
                assert json.dumps(body["system"]).count("<explainer_section concept=") <= 1
            else:
                assert body["system"] == prefix[0] and flat[: len(prefix[1])] == prefix[1]
        state_at = next(i for i, (_, t) in enumerate(flat) if t.startswith("<reader_model>"))
        prefix = (body["system"], flat[:state_at])
        compacted = False
    if budget == 100_000:
        assert all(kind == "turn" for kind, _ in calls)
    if long and budget == 300 and 2 * (len(exchanges) - 1) > keep:  # more turns than it keeps
        assert any(kind == "summary" for kind, _ in calls)  # the reset case is exercised
