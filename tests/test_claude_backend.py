"""The Claude back end against the fake Messages API, through the real anthropic SDK.

Each failure the issue lists is scripted on the server and must come back as a
BackendError with the right code, a message that says what to do, the partial text, and
never the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import typing

import anthropic
import pytest

from tutor.engine import claude
from tutor.engine.claude import (
    BackendError,
    ClaudeBackend,
    StreamResult,
    has_api_key,
    newest_sonnet,
    resolve_model,
)
from tutor.engine.events import ErrorEvent
from tutor.engine.models import CallKind, Effort, call_params, cost_usd, profile_for
from tutor.errors import TutorError

from conftest import ROOT
from fake_api import FakeAPI, drop, hang, http_error, no_stop, prompt_too_long, stream_error, text

SECRET = "sk-ant-api03-SECRET-do-not-print-0123456789"
SYSTEM = [{"type": "text", "text": "You are a tutor."}]
MSGS = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
ERROR_CODES = ("auth", "rate_limit", "overloaded", "stream_error", "connection", "no_stop_reason", "timeout", "context", "other")


def backend(api: FakeAPI, **kw) -> ClaudeBackend:
    kw.setdefault("api_key", "test-key")
    kw.setdefault("max_retries", 2)
    kw.setdefault("timeout", 5.0)
    return ClaudeBackend("claude-sonnet-test", base_url=api.url, **kw)


async def run(b: ClaudeBackend, **kw) -> tuple[list[str], StreamResult | BackendError]:
    got: list[str] = []
    try:
        result = await b.stream(system=SYSTEM, messages=MSGS, on_text=got.append, **kw)
    except BackendError as e:
        return got, e
    return got, result


# -- model choice ----------------------------------------------------------------------


def test_default_model_is_newest_sonnet_alias_from_the_sdk():
    names = [a for arg in typing.get_args(anthropic.types.Model) for a in typing.get_args(arg)]
    assert claude.DEFAULT_MODEL in names
    assert claude.DEFAULT_MODEL.startswith("claude-sonnet-")
    assert not any(len(p) >= 8 and p.isdigit() for p in claude.DEFAULT_MODEL.split("-"))


def test_newest_sonnet_orders_by_version_and_skips_dates():
    assert newest_sonnet(["claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-opus-9"]) == "claude-sonnet-4-6"
    assert newest_sonnet(["claude-sonnet-5", "claude-sonnet-4-6"]) == "claude-sonnet-5"
    assert newest_sonnet(["claude-sonnet-5", "claude-sonnet-5-5"]) == "claude-sonnet-5-5"
    assert newest_sonnet(["claude-haiku-4-5"]) == claude.FALLBACK_MODEL
    assert newest_sonnet(["claude-sonnet-4-5", "claude-sonnet-4-6"], deprecated={"claude-sonnet-4-6"}) == "claude-sonnet-4-5"


def test_default_model_is_not_one_the_sdk_deprecates():
    assert claude.DEFAULT_MODEL not in claude.sdk_deprecated_models()
    assert claude.FALLBACK_MODEL not in claude.sdk_deprecated_models()


def test_resolve_model_order(monkeypatch):
    assert resolve_model(None) == claude.DEFAULT_MODEL
    monkeypatch.setenv("TUTOR_MODEL", "claude-from-env")
    assert resolve_model(None) == "claude-from-env"
    assert resolve_model("claude-from-cli") == "claude-from-cli"
    monkeypatch.setenv("TUTOR_MODEL", "  ")
    assert resolve_model(None) == claude.DEFAULT_MODEL


def test_importing_the_backend_and_cli_help_do_not_import_anthropic():
    code = (
        "import sys; import tutor.engine.claude, tutor.engine.prompt, tutor.engine.memory;"
        "from click.testing import CliRunner; from tutor.cli import cli;"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
        "print('anthropic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_has_api_key(monkeypatch):
    assert not has_api_key()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "  ")
    assert not has_api_key()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert has_api_key()


def test_cost_uses_the_model_table_prices():
    # claude-sonnet-5-5 (docs/models.md): $2 in, $10 out, $2.50 5m write, $4 1h write, $0.20 read
    assert cost_usd("claude-sonnet-5-5", 1_000_000, 0) == pytest.approx(2.0)
    assert cost_usd("claude-sonnet-5-5", 0, 1_000_000) == pytest.approx(10.0)
    assert cost_usd("claude-sonnet-5-5", 0, 0, cache_write=1_000_000) == pytest.approx(2.5)
    assert cost_usd("claude-sonnet-5-5", 0, 0, cache_read=1_000_000) == pytest.approx(0.2)
    assert cost_usd("claude-sonnet-4-6", 1_000_000, 1_000_000) == pytest.approx(18.0)
    assert cost_usd("claude-haiku-4-5", 1_000_000, 1_000_000) == pytest.approx(6.0)
    assert cost_usd("claude-opus-4-6", 1_000_000, 0) == pytest.approx(5.0)
    with pytest.warns(UserWarning, match="unknown model"):
        assert cost_usd("some-new-model", 1_000_000, 0) == pytest.approx(3.0)  # never understated


def test_1h_cache_writes_are_priced_apart_from_5m_writes():
    # cache_write stays the total, so callers that know only the total price it all as 5m
    assert cost_usd("claude-sonnet-5-5", 0, 0, cache_write=1_000_000, cache_write_1h=1_000_000) == pytest.approx(4.0)
    assert cost_usd("claude-sonnet-5-5", 0, 0, 1_000_000, 0, 400_000) == pytest.approx(0.6 * 2.5 + 0.4 * 4.0)
    assert cost_usd("claude-haiku-4-5", 0, 0, cache_write=2_000_000, cache_write_1h=1_000_000) == pytest.approx(1.25 + 2.0)


def test_call_params_give_thinking_room_and_effort_only_where_accepted():
    turn = CallKind.TUTOR_TURN
    p = call_params(profile_for("claude-sonnet-5-5"), turn)
    assert p["output_config"] == {"effort": "low"} and p["max_tokens"] > 1024 + 1000
    assert p["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert call_params(profile_for("claude-sonnet-5-5"), turn, Effort.HIGH)["output_config"] == {"effort": "high"}
    assert call_params(profile_for("claude-haiku-4-5"), turn) == {"max_tokens": 1024}  # no thinking, no effort sent
    with pytest.warns(UserWarning, match="unknown model"):
        unknown = call_params(profile_for("claude-made-up-9"), turn)
    assert set(unknown) == {"max_tokens"} and unknown["max_tokens"] > 1024 + 3000  # room for the API default


async def test_a_tutor_turn_on_a_thinking_model_is_not_starved():
    """Before the model table, a 1,024-token turn with no effort came back empty and cut."""
    from fake_api import THINKING_TEXT

    with FakeAPI(thinking=True) as api:
        api.enqueue(text("A whole reply about pages and frames. " * 20))
        be = ClaudeBackend("claude-sonnet-5-5", api_key="test-key", base_url=api.url, max_retries=0)
        got: list[str] = []
        r = await be.stream(system=[{"type": "text", "text": "s"}], messages=MSGS, on_text=got.append)
        await be.aclose()
    assert r.complete and r.stop_reason == "end_turn"
    assert r.text == "A whole reply about pages and frames. " * 20 == "".join(got)
    assert THINKING_TEXT not in r.text
    assert api.requests[-1].body["output_config"] == {"effort": "low"}
    assert r.output_tokens > api.requests[-1].thinking_tokens > 0  # thinking billed as output
    assert r.cost_usd == pytest.approx(cost_usd("claude-sonnet-5-5", r.input_tokens, r.output_tokens,
                                                r.cache_creation_input_tokens, r.cache_read_input_tokens))


# -- streaming -------------------------------------------------------------------------


async def test_streams_text_deltas_in_order_with_usage_and_cost(fake_api):
    fake_api.enqueue(text("I want to explain pages to you. Do you already know about files?", chunk_size=7))
    b = backend(fake_api)
    assert b.name == "claude:claude-sonnet-test"
    got, result = await run(b)
    assert isinstance(result, StreamResult)
    assert "".join(got) == result.text == "I want to explain pages to you. Do you already know about files?"
    assert len(got) == 10
    assert result.stop_reason == "end_turn" and result.complete
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.cost_usd == pytest.approx(cost_usd(b.profile, result.input_tokens, result.output_tokens))
    body = fake_api.requests[0].body
    assert body["model"] == "claude-sonnet-test" and body["stream"] is True
    assert body["max_tokens"] == call_params(b.profile, CallKind.TUTOR_TURN)["max_tokens"]
    assert body["system"] == SYSTEM and body["messages"] == MSGS
    assert fake_api.requests[0].headers.get("authorization") == "Bearer test-key" or fake_api.requests[0].headers.get("x-api-key") == "test-key"


async def test_async_on_text_callback_and_no_callback(fake_api):
    fake_api.enqueue(text("abc def", chunk_size=2), text("plain"))
    seen = []

    async def cb(t):
        await asyncio.sleep(0)
        seen.append(t)

    b = backend(fake_api)
    r = await b.stream(system=SYSTEM, messages=MSGS, on_text=cb)
    assert "".join(seen) == r.text == "abc def"
    assert (await b.complete(system=SYSTEM, messages=MSGS)).text == "plain"


async def test_cache_usage_is_reported(fake_api):
    big_system = [{"type": "text", "text": "rules"}, {"type": "text", "text": "x" * 10_000, "cache_control": {"type": "ephemeral"}}]
    b = backend(fake_api)
    first = await b.stream(system=big_system, messages=MSGS)
    second = await b.stream(system=big_system, messages=MSGS)
    assert first.cache_creation_input_tokens > 2000 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cost_usd < first.cost_usd


async def test_cost_prices_the_ttl_breakdown_of_cache_writes(fake_api):
    """1h writes at 2x, 5m writes at 1.25x, reads at 0.1x, as the usage's breakdown says."""
    system = [
        {"type": "text", "text": "rules"},
        {"type": "text", "text": "x" * 10_000, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "y" * 8_000, "cache_control": {"type": "ephemeral"}},
    ]
    b = backend(fake_api)
    r = await b.stream(system=system, messages=MSGS)
    split = fake_api.requests[-1].usage["cache_creation"]
    w1, w5 = split["ephemeral_1h_input_tokens"], split["ephemeral_5m_input_tokens"]
    assert w1 > 2000 and w5 > 1500 and r.cache_creation_input_tokens == w1 + w5
    pin, pout = 3.0, 15.0  # claude-sonnet-test is priced as Sonnet
    assert r.cost_usd == pytest.approx((r.input_tokens * pin + w5 * pin * 1.25 + w1 * pin * 2 + r.output_tokens * pout) / 1e6)


async def test_usage_without_a_breakdown_prices_writes_as_5m(fake_api):
    fake_api.enqueue(text("ok", input_usage={"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 0}))
    r = await backend(fake_api).stream(system=SYSTEM, messages=MSGS)
    assert r.cost_usd == pytest.approx((10 * 3 + 1000 * 3 * 1.25 + r.output_tokens * 15) / 1e6)


async def test_max_tokens_stop_is_marked_incomplete(fake_api):
    fake_api.enqueue(text("cut at the limit", stop_reason="max_tokens"))
    _, r = await run(backend(fake_api))
    assert r.stop_reason == "max_tokens" and not r.complete


async def test_callback_errors_are_not_disguised_as_claude_failures(fake_api):
    fake_api.enqueue(text("boom"))

    def cb(_):
        raise ValueError("consumer bug")

    with pytest.raises(ValueError, match="consumer bug"):
        await backend(fake_api).stream(system=SYSTEM, messages=MSGS, on_text=cb)


async def test_cancel_mid_stream_keeps_what_arrived_and_backend_stays_usable(fake_api):
    fake_api.enqueue(text("one two three four five six", chunk_size=4, delay=0.05), text("after"))
    b = backend(fake_api)
    got: list[str] = []
    task = asyncio.create_task(b.stream(system=SYSTEM, messages=MSGS, on_text=got.append))
    while not got:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got and "".join(got) != "one two three four five six"
    assert (await b.stream(system=SYSTEM, messages=MSGS)).text == "after"


# -- failures --------------------------------------------------------------------------


def assert_clear(err: BackendError, code: str, *words: str) -> None:
    assert isinstance(err, BackendError) and isinstance(err, TutorError)
    assert err.code == code and code in ERROR_CODES
    msg = str(err)
    assert 1 <= len(msg.splitlines()) <= 2, msg
    assert "Traceback" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    ErrorEvent(code=err.code, message=msg, retryable=err.retryable)  # fits the event contract


def test_missing_key_says_how_to_set_it():
    with pytest.raises(BackendError) as e:
        ClaudeBackend("claude-sonnet-test")
    assert_clear(e.value, "auth", "ANTHROPIC_API_KEY", "--offline")
    assert not e.value.retryable


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    b = ClaudeBackend("claude-sonnet-test")
    assert SECRET not in repr(b)


async def test_rejected_key(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeAPI(require_key="the-right-key") as api:
        _, err = await run(backend(api, api_key=SECRET))
    assert_clear(err, "auth", "ANTHROPIC_API_KEY", "401")
    assert not err.retryable
    assert SECRET not in str(err) and SECRET not in caplog.text


async def test_key_echoed_by_the_server_is_scrubbed(fake_api, caplog):
    caplog.set_level(logging.DEBUG)
    fake_api.enqueue(http_error(400, f"bad request for key {SECRET}"))
    _, err = await run(backend(fake_api, api_key=SECRET))
    assert_clear(err, "other", "400")
    assert SECRET not in str(err) and "***" in str(err)
    assert SECRET not in caplog.text


async def test_rate_limit_after_sdk_retries(fake_api):
    fake_api.enqueue(*[http_error(429)] * 3)
    _, err = await run(backend(fake_api, max_retries=2))
    assert_clear(err, "rate_limit", "429", "retry")
    assert err.retryable and len(fake_api.requests) == 3


async def test_rate_limit_recovers_within_sdk_retries(fake_api):
    fake_api.enqueue(http_error(429), text("recovered"))
    _, r = await run(backend(fake_api, max_retries=2))
    assert r.text == "recovered" and len(fake_api.requests) == 2


async def test_overloaded_after_sdk_retries(fake_api):
    fake_api.enqueue(*[http_error(529)] * 2)
    _, err = await run(backend(fake_api, max_retries=1))
    assert_clear(err, "overloaded", "529")
    assert err.retryable and len(fake_api.requests) == 2


async def test_mid_stream_error_event_keeps_partial(fake_api):
    fake_api.enqueue(stream_error("Pages are fixed-size", chunk_size=5))
    got, err = await run(backend(fake_api))
    assert_clear(err, "stream_error", "overloaded_error")
    assert err.partial_text == "".join(got) == "Pages are fixed-size"
    assert len(fake_api.requests) == 1


async def test_dropped_connection_keeps_partial(fake_api):
    fake_api.enqueue(drop("The WAL file grows until", chunk_size=6))
    got, err = await run(backend(fake_api))
    assert_clear(err, "connection", "network")
    assert err.partial_text == "The WAL file grows until" == "".join(got)
    assert len(fake_api.requests) == 1


async def test_connection_refused(fake_api):
    url = fake_api.url
    fake_api.stop()
    b = ClaudeBackend("m", api_key="test-key", base_url=url, max_retries=0, timeout=2)
    _, err = await run(b)
    assert_clear(err, "connection")
    assert err.partial_text == ""


async def test_no_stop_reason_keeps_partial(fake_api):
    fake_api.enqueue(no_stop("A checkpoint copies"))
    got, err = await run(backend(fake_api))
    assert_clear(err, "no_stop_reason", "partial")
    assert err.partial_text == "A checkpoint copies"


async def test_timeout_before_any_text(fake_api):
    fake_api.enqueue(hang(10))
    _, err = await run(backend(fake_api, max_retries=0, timeout=0.3))
    assert_clear(err, "timeout", "0.3 seconds")
    assert err.retryable and err.partial_text == ""


async def test_timeout_mid_stream_keeps_partial(fake_api):
    # the first two chunks arrive at once, then the stream stalls past the read timeout
    fake_api.enqueue(text(chunks=["slow ", "words ", "arrive"], delay=[0.0, 0.0, 1.5]))
    got, err = await run(backend(fake_api, max_retries=0, timeout=0.4))
    assert_clear(err, "timeout")
    assert err.partial_text == "".join(got) == "slow words "


async def test_prompt_too_long(fake_api):
    fake_api.enqueue(prompt_too_long())
    _, err = await run(backend(fake_api))
    assert_clear(err, "context", "--new")
    assert not err.retryable and len(fake_api.requests) == 1


async def test_server_error_after_retries(fake_api):
    fake_api.enqueue(*[http_error(500)] * 3)
    _, err = await run(backend(fake_api, max_retries=2))
    assert_clear(err, "other", "500")
    assert err.retryable


async def test_server_text_cannot_inject_terminal_escapes(fake_api):
    fake_api.enqueue(http_error(400, "bad \x1b[31mred\x1b[0m [b]markup[/b]"))
    _, err = await run(backend(fake_api))
    assert "\x1b" not in str(err)


async def test_server_text_cannot_send_c1_controls_or_reorder_the_line(fake_api):
    """Issue 11: _scrub had its own set (C0 and DEL): an 8-bit CSI and a bidi override got through."""
    fake_api.enqueue(http_error(400, "bad \x9b2J \u202eevil\u202c \x1b[31mred"))
    _, err = await run(backend(fake_api))
    assert not any(ch in str(err) for ch in "\x9b\u202e\u202c\x1b"), repr(str(err))
    assert "bad  evil red" in str(err)  # the 8-bit CSI sequence goes whole, like the 7-bit one


async def test_base_url_from_environment(fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.url)
    fake_api.enqueue("via env")
    b = ClaudeBackend("claude-sonnet-test", api_key="test-key", max_retries=0)
    assert (await b.stream(system=SYSTEM, messages=MSGS)).text == "via env"


async def test_key_never_reaches_the_database(tmp_path, caplog):
    """A whole Claude session, including a rejected key, leaves no trace of the key on disk."""
    from tutor.engine.session import TutorSession
    from tutor.store import Store

    from engine_helpers import make_explainer

    caplog.set_level(logging.DEBUG)
    ex = make_explainer([{"id": "pages", "title": "Pages"}, {"id": "wal", "title": "WAL", "prerequisites": ["pages"]}])
    db = tmp_path / "k.db"
    with FakeAPI() as api:
        api.enqueue(text('I want to explain WAL to you. Do you already know about pages? <state concept="pages" value="asked">q</state>'))
        api.enqueue(http_error(401, f"invalid x-api-key {SECRET}"))
        store = Store.open(db)
        session = TutorSession.open(ex, store, backend=backend(api, api_key=SECRET))
        events = [e async for e in session.start()]
        events += [e async for e in session.reply("yes")]
        await session.aclose()
        store.close()
    errors = [e for e in events if e.kind == "error"]
    assert errors and errors[0].code == "auth" and SECRET not in errors[0].message
    for f in tmp_path.iterdir():
        assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in caplog.text
    assert len(api.requests) == 2
    assert all(SECRET not in json.dumps(r.body) for r in api.requests)  # only in the auth header
