"""Issue 10: Claude as it is today (adaptive thinking, effort, per-model prices) and local
Messages-API servers, through the real CLI and SDK against the fake in its thinking mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tutor.engine.claude import ClaudeBackend
from tutor.engine.models import PROFILES, CallKind, Effort, call_params, cost_usd, profile_for
from tutor.store import Store

import fake_api as fake
from conftest import EXPLAINERS, ROOT
from fake_api import THINKING_TEXT, FakeAPI, drop, text

WAL = EXPLAINERS / "sqlite-wal.md"
TUTOR = [sys.executable, "-m", "tutor"]
SYSTEM = [{"type": "text", "text": "You are a tutor."}]
MSGS = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
# Sonnet 5.5's published prices per million tokens (docs/models.md), written out here apart
# from the table so a typo there fails this test.
SONNET_5_5 = {"in": 2.0, "out": 10.0, "w5m": 2.5, "w1h": 4.0, "read": 0.2}


def run(args, input_text, env_extra, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "TUTOR_MODEL", "TUTOR_BASE_URL")}
    env.update(env_extra)
    return subprocess.run(TUTOR + args, input=input_text, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def billed(usage: dict) -> float:
    w5, w1 = fake.cache_writes(usage)
    p = SONNET_5_5
    return (usage["input_tokens"] * p["in"] + w5 * p["w5m"] + w1 * p["w1h"] + usage["cache_read_input_tokens"] * p["read"]) / 1e6


def test_the_table_has_one_row_per_family_and_sane_figures():
    families = [p.family for p in PROFILES]
    assert len(families) == len(set(families))
    for p in PROFILES:
        assert p.context_window >= 200_000 and p.max_output >= 8_192
        assert p.price_output > p.price_input > 0 and p.price_cache_read < p.price_input < p.price_cache_write_5m < p.price_cache_write_1h
    s = profile_for("claude-sonnet-5-5")
    assert (s.price_input, s.price_output, s.price_cache_write_5m, s.price_cache_write_1h, s.price_cache_read) == (2.0, 10.0, 2.5, 4.0, 0.2)
    assert s.min_cache_tokens == 512 and s.accepts_effort
    assert profile_for("claude-sonnet-5-5-20260901").family == "claude-sonnet-5-5"  # a dated snapshot


def test_every_kind_of_call_leaves_room_for_thinking_on_adaptive_models():
    prof = profile_for("claude-sonnet-5-5")
    for kind in CallKind:
        for effort in Effort:
            p = call_params(prof, kind, effort)
            assert p["max_tokens"] >= fake.THINKING_TOKENS[effort.value] + 1024
            assert p["output_config"] == {"effort": effort.value}
            assert p["thinking"]["type"] == "adaptive"  # never "disabled": a 400 on this model
            assert "temperature" not in p and "top_p" not in p


def test_effort_comes_from_the_flag_then_the_environment(monkeypatch):
    from tutor.engine.models import effort_for

    assert effort_for(CallKind.TUTOR_TURN) is Effort.LOW
    monkeypatch.setenv("TUTOR_EFFORT", "high")
    assert effort_for(CallKind.TUTOR_TURN) is Effort.HIGH
    assert effort_for(CallKind.TUTOR_TURN, Effort.MEDIUM) is Effort.MEDIUM
    assert effort_for(CallKind.SUMMARY) is Effort.LOW  # the reader's setting is for turns only
    with pytest.raises(ValueError, match="low, medium, high"):
        Effort.parse("extreme")


async def test_thinking_that_uses_up_the_reply_is_retried_once_with_more_room(monkeypatch):
    """Thinking 6,000 tokens at low effort: the first call (5,024) ends empty at max_tokens;
    the retry has room and the reader gets the whole reply. Both calls are billed."""
    monkeypatch.setitem(fake.THINKING_TOKENS, "low", 6000)
    with FakeAPI(thinking=True) as api:
        api.enqueue(text(""), text("The whole answer."))
        be = ClaudeBackend("claude-sonnet-5-5", api_key="k", base_url=api.url, max_retries=0)
        r = await be.stream(system=SYSTEM, messages=MSGS)
        await be.aclose()
    assert r.text == "The whole answer." and r.complete
    first, second = api.requests
    assert second.body["max_tokens"] > first.body["max_tokens"]
    assert r.output_tokens == first.thinking_tokens + second.thinking_tokens + len("The whole answer.") // 4 + 1


async def test_a_dropped_reply_is_still_billed(monkeypatch):
    with FakeAPI(thinking=True) as api:
        api.enqueue(drop("Pages are fixed-size blocks of the file, " * 4))
        be = ClaudeBackend("claude-sonnet-5-5", api_key="k", base_url=api.url, max_retries=0)
        from tutor.engine.claude import BackendError

        with pytest.raises(BackendError) as e:
            await be.stream(system=SYSTEM, messages=MSGS)
        await be.aclose()
    u = e.value.usage
    assert u is not None and u.input_tokens > 0 and u.output_tokens >= 40 and u.cost_usd > 0


def test_30_turns_in_plain_mode_against_a_thinking_model_have_no_empty_or_cut_reply(tmp_path):
    db = tmp_path / "t.db"
    with FakeAPI(thinking=True) as api:
        n = [0]

        def reply(body):
            n[0] += 1
            return text(f"Reply {n[0]}: a page is a fixed-size block of the database file. Shall we go on?", chunk_size=9)

        api.handler = reply
        answers = "".join(f"answer number {i}, I think a page is a block\n" for i in range(29))
        r = run(["open", str(WAL), "--plain", "--db", str(db)], answers + "/quit\n",
                {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}, timeout=300)
        replies = [req for req in api.requests if "output_config" in req.body and req.body["max_tokens"] > 1024]
    assert r.returncode == 0, r.stderr
    assert "cut off" not in r.stdout and THINKING_TEXT not in r.stdout
    assert "(thinking…)" in r.stdout  # one quiet line per turn in plain mode
    with Store.open(db) as store:
        [s] = store.list_sessions()
        tutor = [m for m in store.messages(s.id) if m.role == "tutor"]
        assert len(tutor) == 30
        assert all(m.complete and m.text.strip() for m in tutor)
        assert not any(THINKING_TEXT in (m.raw or "") + m.text for m in tutor)
        # the session's cost is what the published prices make of what the server billed
        expected = sum(billed(req.usage) + req.output_tokens * SONNET_5_5["out"] / 1e6 for req in api.requests)
        assert s.cost_usd == pytest.approx(expected, rel=1e-6)
    assert replies and all(req.body["output_config"] == {"effort": "low"} for req in replies)
    for fmt in ("md", "json", "html"):
        out = tmp_path / f"t.{fmt}"
        e = run(["export", "--last", "--format", fmt, "-o", str(out), "--db", str(db)], "", {})
        assert e.returncode == 0, e.stderr
        assert THINKING_TEXT not in out.read_text()


def test_a_local_server_needs_no_key_picks_its_model_and_costs_nothing(tmp_path):
    db = tmp_path / "t.db"
    with FakeAPI(flavor="local") as api:
        api.enqueue(text("I want to explain the WAL to you. Do you already know about pages?"), text("Good. Next: the journal."))
        r = run(["open", str(WAL), "--plain", "--db", str(db), "--base-url", api.url], "yes\n/quit\n", {})
        bodies = api.bodies
    assert r.returncode == 0, r.stderr
    assert "Do you already know about pages?" in r.stdout and "Next: the journal." in r.stdout
    assert "thinking" not in r.stdout.lower()
    assert all(b["model"] == "llama3.2" for b in bodies)
    assert not any(k in b for b in bodies for k in ("thinking", "output_config", "temperature"))
    with Store.open(db) as store:
        [s] = store.list_sessions()
        assert s.mode == "local:llama3.2" and s.cost_usd == 0 and s.total_tokens > 0


def test_a_local_server_with_a_small_context_window_is_named(tmp_path):
    with FakeAPI(flavor="local") as api:
        api.context_window = 2048  # Ollama's default cuts tutor's 6-7k-token opening request
        api.enqueue(text("Hello. Do you know pages?"))
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db"), "--base-url", api.url, "--model", "qwen3"], "/quit\n", {})
    assert r.returncode == 0, r.stderr
    assert "[note] The server read only 2,048 of about" in r.stdout and "OLLAMA_CONTEXT_LENGTH" in r.stdout


def test_a_local_server_with_no_models_says_to_name_one(tmp_path):
    with FakeAPI(flavor="local") as api:
        api.models = []
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db"), "--base-url", api.url], "/quit\n", {})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--model" in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_a_bad_effort_is_a_usage_error(tmp_path):
    r = run(["open", str(WAL), "--plain", "--effort", "extreme"], "", {"ANTHROPIC_API_KEY": "k"})
    assert r.returncode == 2 and "low" in r.stderr and "Traceback" not in r.stderr


def test_effort_flag_reaches_the_request(tmp_path):
    with FakeAPI(thinking=True) as api:
        api.enqueue(text("Hello. Do you know pages?"))
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db"), "--effort", "high"], "/quit\n",
                {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"})
        body = api.bodies[0]
    assert r.returncode == 0, r.stderr
    assert body["output_config"] == {"effort": "high"} and body["max_tokens"] >= 3000 + 1024


def test_cost_of_a_thinking_turn_matches_the_published_prices():
    usage = {"input_tokens": 1000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert cost_usd("claude-sonnet-5-5", 1000, 3300) == pytest.approx(billed(usage) + 3300 * 10 / 1e6)
    assert profile_for("claude-sonnet-5-5").price_output == SONNET_5_5["out"]


async def test_the_app_shows_that_the_model_is_thinking_and_then_only_the_reply(tmp_path, api):
    from textual.widgets import Static

    from tutor.app.app import TutorApp
    from tutor.app.widgets import ThinkingNote, TutorMessage

    from app_helpers import claude_backend, idle, open_session, screen_text, wait_until

    api.thinking_seconds_per_ktok = 6.0  # 300 low-effort thinking tokens: 1.8 s before the first word
    api.enqueue(text("I want to explain the WAL to you. Do you already know about pages?"))
    app = TutorApp(open_session(WAL, tmp_path / "t.db", backend=claude_backend(api, model="claude-sonnet-5-5")))
    async with app.run_test(size=(80, 24)) as pilot:
        note = await wait_until(pilot, lambda: next(iter(app.query(ThinkingNote)), None), what="a thinking note")
        await wait_until(pilot, lambda: "Thinking… 1 s" in str(note.render()), timeout=4, what="elapsed seconds")
        await wait_until(pilot, lambda: "I want to explain the WAL" in screen_text(app) and not app.query(ThinkingNote),
                         timeout=8, what="the reply")
        await idle(pilot, app)
        assert app.query(TutorMessage)
        shown = screen_text(app)
        assert "I want to explain the WAL" in shown and THINKING_TEXT not in shown and "Thinking" not in shown
        assert isinstance(note, Static)


async def test_a_memory_summary_that_fails_mid_stream_is_still_billed(tmp_path):
    """The turn goes on with the longer history, and the summary call's tokens are counted."""
    from tutor.engine.session import TutorSession
    from tutor.explainer import load

    from engine_helpers import collect

    with FakeAPI(thinking=True) as api:
        api.enqueue(text("Hello. Do you know pages?"), text("Pages are blocks. " * 40))
        store = Store.open(tmp_path / "t.db")
        be = ClaudeBackend("claude-sonnet-5-5", api_key="k", base_url=api.url, max_retries=0)
        s = TutorSession.open(load(WAL), store, backend=be, new=True)
        s.memory_budget_tokens, s.memory_keep_recent = 10, 1
        await collect(s.start())
        await collect(s.reply("no, what is a page?"))
        before = store.get_session(s.id).cost_usd
        api.enqueue(drop("The reader asked about pages and " * 3), text("Next: the journal."))
        events = await collect(s.reply("got it"))
        summary_req, turn_req = api.requests[-2:]
        await s.aclose()
    assert summary_req.reply_kind == "drop" and any(getattr(e, "kind", "") == "done" for e in events)
    turn_cost = billed(turn_req.usage) + turn_req.output_tokens * SONNET_5_5["out"] / 1e6
    after = store.get_session(s.id).cost_usd
    assert after - before > turn_cost  # the dropped summary's input was counted too
    assert after - before == pytest.approx(turn_cost + billed(summary_req.usage) + (len("The reader asked about pages and " * 3) // 4) * SONNET_5_5["out"] / 1e6)
    store.close()


async def test_30_turns_in_the_app_against_a_thinking_model_have_no_empty_or_cut_reply(tmp_path, api):
    """Issue 10's done-when for the Textual app: every reply whole, no thinking text on screen
    or in the store, and the header's cost what the published prices make of the bill."""
    from tutor.app.app import TutorApp
    from tutor.app.widgets import HeaderBar

    from app_helpers import claude_backend, dialogue, idle, open_session, screen_text, send

    n = [0]

    def reply(body):
        n[0] += 1
        return text(f"Reply {n[0]}: a page is a fixed-size block of the file. Shall we go on?", chunk_size=9)

    api.handler = reply
    db = tmp_path / "t.db"
    session = open_session(WAL, db, backend=claude_backend(api, model="claude-sonnet-5-5"))
    app = TutorApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app, timeout=15)
        for i in range(29):
            await send(pilot, app, f"answer number {i}: a page is a block", timeout=15)
            assert THINKING_TEXT not in screen_text(app)
        tutor_shown = [t for kind, t in dialogue(app) if kind == "tutor"]
        header = app.query_one(HeaderBar)
        shown_cost = header.cost
        assert "cut off" not in screen_text(app)
    assert n[0] == 30 and len(tutor_shown) == 30 and all(t.startswith("Reply ") for t in tutor_shown)
    with Store.open(db) as store:
        [s] = store.list_sessions()
        tutor = [m for m in store.messages(s.id) if m.role == "tutor"]
        assert len(tutor) == 30 and all(m.complete and m.text.strip() for m in tutor)
        assert not any(THINKING_TEXT in (m.raw or "") + m.text for m in tutor)
        expected = sum(billed(req.usage) + req.output_tokens * SONNET_5_5["out"] / 1e6 for req in api.requests)
        assert s.cost_usd == pytest.approx(expected, rel=1e-6)
    assert shown_cost == pytest.approx(expected, rel=1e-6)
    # it really thought on every turn, so thinking tokens were in the bill and the room
    assert all(req.body.get("thinking", {}).get("type") == "adaptive" for req in api.requests)
    assert all(req.output_tokens > fake.THINKING_TOKENS["low"] for req in api.requests)


# -- structured output: output_config.format only where the model takes it (docs/models.md)

SCHEMA = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}}},
    "required": ["questions"],
    "additionalProperties": False,
}


def test_structured_output_is_sent_only_where_the_table_says_the_model_takes_it():
    from tutor.engine.models import LOCAL, UNKNOWN, Reported, with_reported

    fmt = {"type": "json_schema", "schema": SCHEMA}
    adaptive = call_params(profile_for("claude-opus-4-7"), CallKind.COMPILE_OUTLINE, json_schema=SCHEMA)
    assert adaptive["output_config"] == {"effort": "medium", "format": fmt}
    budget = call_params(profile_for("claude-haiku-4-5"), CallKind.COMPILE_OUTLINE, json_schema=SCHEMA)
    assert budget["output_config"] == {"format": fmt} and "thinking" not in budget
    assert profile_for("claude-sonnet-4-5-20250929").structured_output  # its own row, apart from Sonnet 4
    for prof in (profile_for("claude-sonnet-4-20250514"), LOCAL, UNKNOWN):
        assert "format" not in (call_params(prof, CallKind.COMPILE_OUTLINE, json_schema=SCHEMA).get("output_config") or {})
    assert "format" not in call_params(profile_for("claude-opus-4-7"), CallKind.COMPILE_OUTLINE)["output_config"]  # not asked
    # The Models API's report wins over the table, both ways; a local server never takes it.
    assert with_reported(profile_for("claude-sonnet-5-5"), Reported(structured_output=True)).structured_output
    assert not with_reported(profile_for("claude-opus-4-7"), Reported(structured_output=False)).structured_output
    assert not with_reported(LOCAL, Reported(structured_output=True)).structured_output


async def test_the_request_carries_the_schema_for_a_supporting_model_only():
    """Through the real SDK: a supporting model gets the schema and a JSON reply that follows
    it; an older model, an unknown id and a local server get none."""
    reply = '{"questions": ["Who reads this?"]}'
    with FakeAPI(thinking=True) as api:
        api.enqueue(reply, "plain text", "plain text")
        results = []
        for model in ("claude-sonnet-4-6", "claude-sonnet-4-20250514", "my-proxy-alias"):
            b = ClaudeBackend(model, api_key="k", base_url=api.url)
            results.append(await b.stream(system=SYSTEM, messages=MSGS, kind=CallKind.COMPILE_OUTLINE, json_schema=SCHEMA))
            await b.aclose()
        sent = [(r.body.get("output_config") or {}).get("format") for r in api.requests]
    assert sent == [{"type": "json_schema", "schema": SCHEMA}, None, None]
    assert [r.structured for r in results] == [True, False, False]
    assert results[0].text == reply
    with FakeAPI(flavor="local") as api:
        b = ClaudeBackend(None, local=True, base_url=api.url)
        r = await b.stream(system=SYSTEM, messages=MSGS, kind=CallKind.COMPILE_OUTLINE, json_schema=SCHEMA)
        await b.aclose()
        assert "output_config" not in api.bodies[0] and not r.structured


async def test_the_models_api_says_whether_a_model_takes_structured_output():
    with FakeAPI(thinking=True) as api:
        api.structured_outputs = True  # reported for a model the table leaves off
        b = ClaudeBackend("claude-sonnet-5-5", api_key="k", base_url=api.url)
        assert not b.profile.structured_output
        report = await b.model_report()
        assert report is not None and report.structured_output is True and b.profile.structured_output
        # A later backend built with the report sends the schema without asking again.
        later = ClaudeBackend("claude-sonnet-5-5", api_key="k", base_url=api.url, reported=report)
        r = await later.stream(system=SYSTEM, messages=MSGS, kind=CallKind.COMPILE_OUTLINE, json_schema=SCHEMA)
        assert r.structured and api.bodies[-1]["output_config"]["format"]["schema"] == SCHEMA
        await b.aclose()
        await later.aclose()
        api.structured_outputs = False  # and turned off for one the table has on
        b = ClaudeBackend("claude-opus-4-7", api_key="k", base_url=api.url)
        await b.model_report()
        r = await b.stream(system=SYSTEM, messages=MSGS, kind=CallKind.COMPILE_OUTLINE, json_schema=SCHEMA)
        await b.aclose()
        assert not r.structured and "format" not in api.bodies[-1]["output_config"]
