"""The fake Messages API server: the real SSE sequence, scripted failures and the cache rules.

Everything goes over real HTTP: raw httpx2 for the wire format, the real anthropic SDK for
the behaviour the back end relies on (retries, errors).
"""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_api import (
    MIN_CACHEABLE_TOKENS,
    THINKING_TOKENS,
    FakeAPI,
    PromptCache,
    billed_input,
    drop,
    flatten_blocks,
    hang,
    http_error,
    no_stop,
    stream_error,
    text,
)

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake_api():
    """The plain (pre-thinking) fake: these tests pin its wire format; thinking mode has its own."""
    with FakeAPI() as api:
        yield api


@pytest.fixture
def thinking_api():
    with FakeAPI(thinking=True) as api:
        yield api


def test_thinking_mode_streams_a_thinking_block_first_and_spends_tokens_by_effort(thinking_api):
    thinking_api.enqueue(text("Visible answer."))
    r = post(thinking_api, {"model": "claude-sonnet-5-5", "max_tokens": 5000, "messages": MSG, "stream": True})
    events = sse_events(r.text)
    starts = [d["content_block"]["type"] for e, d in events if e == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [d["delta"]["type"] for e, d in events if e == "content_block_delta"]
    assert deltas[:2] == ["thinking_delta", "signature_delta"]
    final = [d for e, d in events if e == "message_delta"][0]
    assert final["usage"]["output_tokens"] == THINKING_TOKENS["high"] + len("Visible answer.") // 4 + 1
    thinking_api.enqueue(text("Visible answer."))
    body = {"model": "claude-sonnet-5-5", "max_tokens": 5000, "messages": MSG, "output_config": {"effort": "low"}}
    r = post(thinking_api, body)
    assert r.json()["usage"]["output_tokens"] == THINKING_TOKENS["low"] + len("Visible answer.") // 4 + 1
    assert [b["type"] for b in r.json()["content"]] == ["thinking", "text"]


def test_thinking_mode_starves_a_small_max_tokens_and_refuses_disabled_thinking(thinking_api):
    thinking_api.enqueue(text("A reply that needs room. " * 20))
    r = post(thinking_api, {"model": "claude-sonnet-5-5", "max_tokens": 1024, "messages": MSG})
    assert r.json()["stop_reason"] == "max_tokens"
    assert r.json()["content"][-1]["text"] == ""  # all 1024 tokens went to thinking
    r = post(thinking_api, {"model": "claude-sonnet-5-5", "max_tokens": 1024, "messages": MSG,
                            "thinking": {"type": "disabled"}})
    assert r.status_code == 400


def sse_events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def post(api: FakeAPI, body: dict) -> httpx2.Response:
    return httpx2.post(api.url + "/v1/messages", json=body, headers={"x-api-key": "test-key"}, timeout=5)


def client(api: FakeAPI, **kw) -> anthropic.AsyncAnthropic:
    kw.setdefault("max_retries", 2)
    return anthropic.AsyncAnthropic(base_url=api.url, api_key="test-key", **kw)


# -- wire format ----------------------------------------------------------------------


def test_stream_emits_the_real_event_sequence(fake_api):
    fake_api.enqueue(text("Hello, reader.", chunk_size=5))
    r = post(fake_api, {"model": "claude-x", "max_tokens": 50, "messages": MSG, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["model"] == "claude-x" and start["stop_reason"] is None
    assert set(start["usage"]) >= {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"}
    deltas = [d["delta"]["text"] for e, d in events if e == "content_block_delta"]
    assert deltas == ["Hello", ", rea", "der."]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] > 0


def test_explicit_chunks_and_stop_reason(fake_api):
    fake_api.enqueue(text(chunks=["<fee", "dback>x</feedback>", " ok"], stop_reason="max_tokens"))
    events = sse_events(post(fake_api, {"model": "m", "messages": MSG, "stream": True}).text)
    assert [d["delta"]["text"] for e, d in events if e == "content_block_delta"] == ["<fee", "dback>x</feedback>", " ok"]
    assert [d for e, d in events if e == "message_delta"][0]["delta"]["stop_reason"] == "max_tokens"


def test_non_stream_json_reply(fake_api):
    fake_api.enqueue("Whole reply.")
    r = post(fake_api, {"model": "m", "max_tokens": 10, "messages": MSG})
    body = r.json()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": "Whole reply."}]
    assert body["stop_reason"] == "end_turn" and body["usage"]["output_tokens"] > 0


def test_records_requests_and_uses_handler_when_queue_is_empty(fake_api):
    seen = []

    def handler(body):
        seen.append(body)
        return f"echo: {body['messages'][-1]['content']}"

    fake_api.handler = handler
    fake_api.enqueue("scripted first")
    assert post(fake_api, {"model": "m", "messages": [{"role": "user", "content": "one"}]}).json()["content"][0]["text"] == "scripted first"
    assert post(fake_api, {"model": "m", "messages": [{"role": "user", "content": "two"}]}).json()["content"][0]["text"] == "echo: two"
    assert [r.body["messages"][0]["content"] for r in fake_api.requests] == ["one", "two"]
    assert len(seen) == 1
    assert fake_api.requests[0].headers["x-api-key"] == "test-key"


def test_default_reply_and_unknown_route(fake_api):
    assert post(fake_api, {"model": "m", "messages": MSG}).json()["content"][0]["text"] == "(fake reply)"
    r = httpx2.post(fake_api.url + "/v1/other", json={}, timeout=5)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_http_error_bodies_and_retry_headers(fake_api):
    fake_api.enqueue(http_error(429), http_error(529), http_error(401))
    r = post(fake_api, {"model": "m", "messages": MSG})
    assert r.status_code == 429 and r.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": r.json()["error"]["message"]}}
    assert r.headers["retry-after-ms"] == "1"
    assert post(fake_api, {"model": "m", "messages": MSG}).json()["error"]["type"] == "overloaded_error"
    assert post(fake_api, {"model": "m", "messages": MSG}).json()["error"]["type"] == "authentication_error"


# -- through the real SDK ---------------------------------------------------------------


async def test_sdk_streams_text(fake_api):
    fake_api.enqueue(text("The WAL keeps new pages.", chunk_size=4))
    c = client(fake_api)
    stream = await c.messages.create(model="claude-x", max_tokens=50, messages=MSG, stream=True)
    pieces, stop = [], None
    async for ev in stream:
        if ev.type == "content_block_delta":
            pieces.append(ev.delta.text)
        elif ev.type == "message_delta":
            stop = ev.delta.stop_reason
    assert "".join(pieces) == "The WAL keeps new pages." and len(pieces) == 6
    assert stop == "end_turn"
    # the SDK sends the key in a header we record; the body is the request as sent
    assert fake_api.requests[0].body["stream"] is True


async def test_sdk_retries_429_and_529_then_succeeds(fake_api):
    fake_api.enqueue(http_error(429), http_error(529), text("finally"))
    reply = await client(fake_api, max_retries=2).messages.create(model="m", max_tokens=5, messages=MSG)
    assert reply.content[0].text == "finally"
    assert len(fake_api.requests) == 3


async def test_sdk_gives_up_after_its_retries(fake_api):
    fake_api.enqueue(*[http_error(429)] * 3)
    with pytest.raises(anthropic.RateLimitError):
        await client(fake_api, max_retries=2).messages.create(model="m", max_tokens=5, messages=MSG)
    assert len(fake_api.requests) == 3


async def test_require_key_rejects_other_keys():
    with FakeAPI(require_key="right-key") as api:
        with pytest.raises(anthropic.AuthenticationError):
            await client(api).messages.create(model="m", max_tokens=5, messages=MSG)
        ok = anthropic.AsyncAnthropic(base_url=api.url, api_key="right-key")
        assert (await ok.messages.create(model="m", max_tokens=5, messages=MSG)).content[0].text


async def _drain(c, **kw):
    pieces = []
    stream = await c.messages.create(model="m", max_tokens=5, messages=MSG, stream=True, **kw)
    async for ev in stream:
        if ev.type == "content_block_delta":
            pieces.append(ev.delta.text)
    return pieces


async def test_mid_stream_error_event_is_a_status_200_api_error(fake_api):
    fake_api.enqueue(stream_error("half a sen"))
    with pytest.raises(anthropic.APIStatusError) as err:
        await _drain(client(fake_api))
    assert err.value.status_code == 200
    assert err.value.type == "overloaded_error"


async def test_dropped_connection_is_a_transport_error_the_sdk_does_not_retry(fake_api):
    fake_api.enqueue(drop("some text before the drop"))
    # SDK 2.16 let httpx's RemoteProtocolError through; 2.17 wraps a failed body read in
    # APIConnectionError. claude.py maps both to a lost connection.
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)) as err:
        await _drain(client(fake_api))
    assert "incomplete chunked read" in str(err.value) or isinstance(err.value, httpx2.RemoteProtocolError)
    assert len(fake_api.requests) == 1  # the SDK does not retry a mid-stream drop


async def test_stream_without_stop_reason(fake_api):
    fake_api.enqueue(no_stop("cut short"))
    stream = await client(fake_api).messages.create(model="m", max_tokens=5, messages=MSG, stream=True)
    types = [ev.type async for ev in stream]
    assert "message_delta" not in types and "message_stop" not in types
    assert "content_block_delta" in types


async def test_hang_times_out(fake_api):
    fake_api.enqueue(hang(10))
    with pytest.raises(anthropic.APITimeoutError):
        await _drain(client(fake_api, max_retries=0, timeout=0.3))


# -- cache accounting -----------------------------------------------------------------


def big(n_chars: int, seed: str = "x") -> str:
    return (seed * n_chars)[:n_chars]


def body_with(system: list[dict], messages: list[dict] | None = None, model: str = "m") -> dict:
    return {"model": model, "system": system, "messages": messages or [{"role": "user", "content": "q"}]}


def bp(text_: str) -> dict:
    return {"type": "text", "text": text_, "cache_control": {"type": "ephemeral"}}


def test_flatten_order_tools_system_messages():
    body = {
        "tools": [{"name": "t"}],
        "system": [{"type": "text", "text": "s"}],
        "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}, bp("b")]}],
    }
    blocks = flatten_blocks(body)
    assert [b[0].split(":", 1)[0] for b in blocks] == ["tool", "system", "user", "assistant", "assistant"]
    assert [b[2] for b in blocks] == [False, False, False, False, True]


def test_write_then_read_of_a_breakpoint_prefix():
    cache = PromptCache()
    body = body_with([{"type": "text", "text": "rules"}, bp(big(8000))])
    first = cache.usage(body)
    assert first["cache_read_input_tokens"] == 0
    assert first["cache_creation_input_tokens"] > 2000
    assert first["input_tokens"] < 20  # only the question after the breakpoint
    second = cache.usage(body)
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert sum(first.values()) == sum(second.values())


def test_prefix_under_1024_tokens_is_not_cached():
    cache = PromptCache()
    body = body_with([bp(big(4 * 900))])
    for _ in range(2):
        u = cache.usage(body)
        assert u["cache_creation_input_tokens"] == 0 and u["cache_read_input_tokens"] == 0
    assert MIN_CACHEABLE_TOKENS == 1024


def test_changed_prefix_misses_and_moving_the_breakpoint_does_not():
    cache = PromptCache()
    cache.usage(body_with([bp(big(8000, "a"))]))
    assert cache.usage(body_with([bp(big(8000, "b"))]))["cache_read_input_tokens"] == 0
    # same content, breakpoint moved later: the old entry (no cache_control in identity) is read
    moved = body_with([{"type": "text", "text": big(8000, "a")}, bp("more")])
    u = cache.usage(moved)
    assert u["cache_read_input_tokens"] > 1900 and u["cache_creation_input_tokens"] > 0


def test_entries_are_per_model():
    cache = PromptCache()
    cache.usage(body_with([bp(big(8000))], model="a"))
    assert cache.usage(body_with([bp(big(8000))], model="b"))["cache_read_input_tokens"] == 0


def _conversation(n_turns: int) -> list[dict]:
    msgs = []
    for i in range(n_turns):
        msgs.append({"role": "user", "content": [{"type": "text", "text": f"question {i}"}]})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {i}"}]})
    return msgs


@pytest.mark.parametrize("extra_blocks, hit", [(19, True), (20, True), (21, False)])
def test_lookback_is_20_blocks_before_a_breakpoint(extra_blocks, hit):
    cache = PromptCache()
    system = [{"type": "text", "text": big(8000)}]
    first = body_with(system, [{"role": "user", "content": [bp("start")]}])
    written = cache.usage(first)["cache_creation_input_tokens"]
    # later request: same prefix, then `extra_blocks` more blocks, breakpoint on the last one
    blocks = [{"type": "text", "text": "start"}] + [{"type": "text", "text": f"b{i}"} for i in range(extra_blocks)]
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    u = cache.usage(body_with(system, [{"role": "user", "content": blocks}]))
    assert (u["cache_read_input_tokens"] == written) is hit


def test_longest_entry_is_read_and_only_new_tokens_are_written():
    cache = PromptCache()
    system = [bp(big(8000))]
    convo = _conversation(3)
    convo[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    a = cache.usage(body_with(system, convo + [{"role": "user", "content": "next"}]))
    assert a["cache_read_input_tokens"] == 0
    convo2 = _conversation(4)
    convo2[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    b = cache.usage(body_with(system, convo2 + [{"role": "user", "content": "next"}]))
    assert b["cache_read_input_tokens"] == a["cache_creation_input_tokens"]  # system + 3 turns
    assert 0 < b["cache_creation_input_tokens"] < 20  # just the 4th turn's two blocks
    assert b["input_tokens"] < 10


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3000), st.booleans()), min_size=1, max_size=12), st.integers(0, 3))
def test_tokens_are_conserved(blocks, repeats):
    """input + write + read always equals the request's token count, however it is cached."""
    cache = PromptCache()
    system = [({"type": "text", "text": big(n), "cache_control": {"type": "ephemeral"}} if b else {"type": "text", "text": big(n)}) for n, b in blocks]
    body = body_with(system)
    total = sum(t for _, t, _ in flatten_blocks(body))
    for _ in range(repeats + 1):
        u = cache.usage(body)
        assert sum(u.values()) == total
        assert min(u.values()) >= 0


async def test_usage_reported_in_message_start_and_recorded(fake_api):
    system = [{"type": "text", "text": "rules"}, bp(big(8000))]
    c = client(fake_api)
    usages = []
    for _ in range(2):
        stream = await c.messages.create(model="m", max_tokens=5, system=system, messages=MSG, stream=True)
        async for ev in stream:
            if ev.type == "message_start":
                usages.append(ev.message.usage)
    assert usages[0].cache_creation_input_tokens > 1900 and usages[0].cache_read_input_tokens == 0
    assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens
    assert fake_api.requests[1].usage["cache_read_input_tokens"] == usages[1].cache_read_input_tokens
    tot = fake_api.total_usage()
    assert billed_input(tot) == pytest.approx(tot["input_tokens"] + 1.25 * tot["cache_creation_input_tokens"] + 0.1 * tot["cache_read_input_tokens"])


# -- cache lifetimes (5 minutes, 1 hour) ------------------------------------------------


def bp1h(text_: str) -> dict:
    return {"type": "text", "text": text_, "cache_control": {"type": "ephemeral", "ttl": "1h"}}


def test_a_5m_entry_expires_after_5_minutes():
    cache = PromptCache()
    body = body_with([bp(big(8000))])
    written = cache.usage(body)["cache_creation_input_tokens"]
    cache.advance(299)
    assert cache.usage(body)["cache_read_input_tokens"] == written
    cache.advance(301)
    again = cache.usage(body)
    assert again["cache_read_input_tokens"] == 0 and again["cache_creation_input_tokens"] == written


def test_a_hit_refreshes_the_entry_read():
    cache = PromptCache()
    body = body_with([bp(big(8000))])
    written = cache.usage(body)["cache_creation_input_tokens"]
    for _ in range(5):  # 20 minutes in all, never more than 4 without a hit
        cache.advance(240)
        assert cache.usage(body)["cache_read_input_tokens"] == written


def test_a_hit_on_a_longer_prefix_refreshes_the_entries_inside_it():
    cache = PromptCache()
    short = body_with([bp1h(big(8000))])
    long = body_with([bp1h(big(8000)), bp(big(8000, "y"))])
    stable = cache.usage(short)["cache_creation_input_tokens"]
    cache.usage(long)
    for _ in range(20):  # 80 minutes of turns 4 minutes apart, each reading the long prefix
        cache.advance(240)
        assert cache.usage(long)["cache_creation_input_tokens"] == 0
    cache.advance(30 * 60)  # the 5m entry is gone; the 1h one was kept alive by those reads
    assert cache.usage(long)["cache_read_input_tokens"] == stable


def test_after_a_30_minute_pause_1h_entries_are_read_and_5m_ones_rewritten():
    cache = PromptCache()
    body = body_with(
        [{"type": "text", "text": "rules"}, bp1h(big(8000))],
        [{"role": "user", "content": [bp(big(6000, "h"))]}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "q"}],
    )
    first = cache.account(body)
    stable, history = first["cache_creation"]["ephemeral_1h_input_tokens"], first["cache_creation"]["ephemeral_5m_input_tokens"]
    assert stable > 1900 and history > 1400 and first["cache_creation_input_tokens"] == stable + history
    cache.advance(30 * 60)
    later = cache.account(body)
    assert later["cache_read_input_tokens"] == stable
    assert later["cache_creation"] == {"ephemeral_5m_input_tokens": history, "ephemeral_1h_input_tokens": 0}
    cache.advance(61 * 60)  # past the hour since that read: everything is written again
    assert cache.account(body)["cache_creation"] == first["cache_creation"]


def test_1h_writes_run_from_the_hit_to_the_last_1h_breakpoint():
    """Mixed TTLs are billed as the API documents: read up to the hit, 1h writes up to the
    last 1h breakpoint after it, 5m writes from there to the last breakpoint."""
    cache = PromptCache()
    a, b, c = big(8000, "a"), big(8000, "b"), big(8000, "c")
    cache.usage(body_with([bp1h(a)]))
    u = cache.account(body_with([bp1h(a), bp1h(b), bp(c)]))
    assert u["cache_read_input_tokens"] > 1900
    w1, w5 = u["cache_creation"]["ephemeral_1h_input_tokens"], u["cache_creation"]["ephemeral_5m_input_tokens"]
    assert 1900 < w1 < 2100 and 1900 < w5 < 2100 and w1 + w5 == u["cache_creation_input_tokens"]


@pytest.mark.parametrize(
    "system, ok",
    [
        ([bp1h(big(8000)), bp(big(8000, "y"))], True),
        ([bp(big(8000)), bp(big(8000, "y"))], True),
        ([bp1h(big(8000)), bp1h(big(8000, "y"))], True),
        ([bp(big(8000)), bp1h(big(8000, "y"))], False),
        ([bp1h("a"), bp("b"), bp1h("c")], False),
    ],
)
async def test_a_1h_breakpoint_after_a_5m_one_is_a_400(fake_api, system, ok):
    fake_api.enqueue(text("scripted"))
    c = client(fake_api, max_retries=0)
    if ok:
        r = await c.messages.create(model="m", max_tokens=5, system=system, messages=MSG)
        assert r.content[0].text == "scripted"
        return
    with pytest.raises(anthropic.BadRequestError) as e:
        await c.messages.create(model="m", max_tokens=5, system=system, messages=MSG)
    assert e.value.status_code == 400 and e.value.type == "invalid_request_error"
    assert "ttl='1h' cannot come after" in str(e.value)
    assert len(fake_api.queue) == 1  # refused before a scripted reply was used up


async def test_an_unknown_ttl_is_a_400(fake_api):
    system = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]
    with pytest.raises(anthropic.BadRequestError, match="'5m' or '1h'"):
        await client(fake_api, max_retries=0).messages.create(model="m", max_tokens=5, system=system, messages=MSG)


async def test_the_ttl_breakdown_reaches_the_sdk_and_advance_pauses_the_server(fake_api):
    system = [{"type": "text", "text": "rules"}, bp1h(big(8000))]
    messages = [{"role": "user", "content": [bp(big(6000, "h"))]}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "q"}]
    c = client(fake_api)
    usages = []
    for pause in (0, 20 * 60):
        fake_api.advance(pause)
        stream = await c.messages.create(model="m", max_tokens=5, system=system, messages=messages, stream=True)
        async for ev in stream:
            if ev.type == "message_start":
                usages.append(ev.message.usage)
    first, later = usages
    assert first.cache_creation.ephemeral_1h_input_tokens > 1900
    assert first.cache_creation.ephemeral_5m_input_tokens > 1400
    assert first.cache_creation_input_tokens == first.cache_creation.ephemeral_1h_input_tokens + first.cache_creation.ephemeral_5m_input_tokens
    assert later.cache_read_input_tokens == first.cache_creation.ephemeral_1h_input_tokens
    assert later.cache_creation.ephemeral_5m_input_tokens == first.cache_creation.ephemeral_5m_input_tokens
    assert later.cache_creation.ephemeral_1h_input_tokens == 0
    rec = fake_api.requests[0].usage
    assert billed_input(rec) == pytest.approx(
        rec["input_tokens"] + 2 * first.cache_creation.ephemeral_1h_input_tokens
        + 1.25 * first.cache_creation.ephemeral_5m_input_tokens
    )
    tot = fake_api.total_usage()
    assert tot["cache_creation"]["ephemeral_5m_input_tokens"] == 2 * first.cache_creation.ephemeral_5m_input_tokens


def test_billed_input_without_a_breakdown_treats_writes_as_5m():
    assert billed_input({"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}) == 10 + 125 + 100


# -- structured output (output_config.format)

GOOD_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}},
                                             "required": ["id"], "additionalProperties": False}},
        "done": {"type": "boolean"},
    },
    "required": ["items", "done"],
    "additionalProperties": False,
}


def _fmt(schema):
    return {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(
    "schema, error",
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}}, "additionalProperties: false"),
        ({**GOOD_SCHEMA, "properties": {"a": {"type": "string", "maxLength": 5}}}, "'maxLength' is not supported"),
        ({**GOOD_SCHEMA, "properties": {"n": {"type": "integer", "minimum": 1}}}, "'minimum' is not supported"),
        ({**GOOD_SCHEMA, "properties": {"self": {"$ref": "#"}}}, "recursive schemas are not supported"),
        ({**GOOD_SCHEMA, "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                                            "additionalProperties": False}}}, "recursive schemas are not supported"),
    ],
)
def test_a_schema_the_api_refuses_is_a_400(fake_api, schema, error):
    r = post(fake_api, {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": MSG, "output_config": _fmt(schema)})
    assert r.status_code == 400 and error in r.json()["error"]["message"]
    assert fake_api.queue == type(fake_api.queue)()  # nothing scripted was used up (none was)


def test_a_structured_request_gets_json_that_follows_its_schema(fake_api):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": MSG, "output_config": _fmt(GOOD_SCHEMA)}
    r = post(fake_api, body)  # nothing scripted: the smallest value that follows the schema
    assert json.loads(r.json()["content"][0]["text"]) == {"items": [], "done": False}
    from fake_api import json_reply

    fake_api.enqueue(json_reply({"items": [{"id": "pages"}], "done": True}))
    assert json.loads(post(fake_api, body).json()["content"][0]["text"])["items"] == [{"id": "pages"}]
    fake_api.enqueue(json_reply({"items": [{"id": "pages", "extra": 1}], "done": True}))  # constrained decoding could not
    r = post(fake_api, body)
    assert r.status_code == 500 and "$.items[0]: unexpected ['extra']" in r.json()["error"]["message"]
    fake_api.structured_outputs = False
    r = post(fake_api, body)
    assert r.status_code == 400 and "not supported for this model" in r.json()["error"]["message"]


async def test_the_models_api_reports_capabilities_through_the_sdk(fake_api):
    c = client(fake_api)
    info = await c.models.retrieve("claude-sonnet-5-5")
    assert info.capabilities is None  # not reported unless set
    fake_api.structured_outputs = True
    info = await c.models.retrieve("claude-sonnet-5-5")
    assert info.capabilities is not None and info.capabilities.structured_outputs.supported is True
    await c.close()
