"""The fault suite: every way a misbehaving server can stall or garble a turn ends within
the turn's Limits, with reader wording (never an exception name), the reader's text kept
and the partial reply kept and marked unfinished (docs/reliability.md).

Small limits keep the suite fast; each test also has a wall-clock guard well above them,
so a mode that hangs fails instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tutor.engine.backend import Retrying as RetryWait
from tutor.engine.claude import BackendError, ClaudeBackend, Limits
from tutor.engine.events import ErrorEvent, Retrying, TextDelta, TurnFinished
from tutor.engine.session import TutorSession
from tutor.store import Store

from engine_helpers import make_explainer
from fake_api import (
    FakeAPI,
    drop,
    empty_502,
    html_500,
    http_error,
    huge,
    invalid_json,
    invalid_utf8,
    long_retry_after,
    ping_forever,
    stalled_body,
    stalled_headers,
    text,
    trickle,
    unknown_block,
)

SYSTEM = [{"type": "text", "text": "You are a tutor."}]
MSGS = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
FAST = Limits(first_token=0.6, reply=1.5, max_chars=5_000, retries=2, retry_after_cap=1.0)
GUARD = 15.0  # seconds: far above FAST, far below "forever"
EXCEPTION_NAME = re.compile(r"\b\w*(Error|Exception|Timeout)\b|Traceback|httpx|anthropic\.")

# mode -> (scripted replies, expected ErrorEvent code or None for a good reply, text that must have arrived)
MODES = {
    "ping_forever": (lambda: [ping_forever(30)], "deadline", ""),
    "trickle": (lambda: [trickle(every=0.05)], "deadline", "word"),
    "huge_reply": (lambda: [huge(200_000)], "too_long", "blah"),
    "stalled_headers": (lambda: [stalled_headers(30)], "deadline", ""),
    "stalled_body": (lambda: [stalled_body(30)], "deadline", ""),
    "long_retry_after": (lambda: [long_retry_after(600)], "rate_limit", ""),
    "invalid_utf8": (lambda: [invalid_utf8()], "other", ""),
    "invalid_json": (lambda: [invalid_json()], "other", ""),
    "html_500": (lambda: [html_500()] * 3, "other", ""),
    "empty_502": (lambda: [empty_502()] * 3, "other", ""),
    "unknown_block": (lambda: [unknown_block()], None, "After the unknown block."),
    "dropped": (lambda: [drop("Half a reply")], "connection", "Half a reply"),
}


def backend(api: FakeAPI, limits: Limits = FAST) -> ClaudeBackend:
    return ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url, timeout=5.0, limits=limits)


async def drain(b: ClaudeBackend) -> tuple[list[object], BackendError | None]:
    got: list[object] = []
    try:
        async for ev in b.events(system=SYSTEM, messages=MSGS):
            got.append(ev)
    except BackendError as e:
        return got, e
    return got, None


def reader_words(err: BackendError) -> str:
    return str(err)


@pytest.mark.parametrize("mode", list(MODES))
async def test_backend_mode_ends_in_time_with_reader_wording(mode):
    make, code, arrived = MODES[mode]
    with FakeAPI() as api:
        api.enqueue(*make())
        b = backend(api)
        t0 = time.monotonic()
        got, err = await asyncio.wait_for(drain(b), GUARD)
        took = time.monotonic() - t0
        await b.aclose()
    assert took < FAST.reply + FAST.retry_after_cap * FAST.retries + 2.0, f"{mode} took {took:.1f} s"
    pieces = "".join(getattr(e, "text", "") for e in got)
    assert arrived in pieces
    if code is None:
        assert err is None
        return
    assert err is not None and err.code == code, (mode, err and err.code, err and str(err))
    assert err.partial_text == pieces  # what the reader saw is what is kept
    words = reader_words(err)
    assert not EXCEPTION_NAME.search(words), words
    assert "<html" not in words.lower() and "[bold]" not in words
    assert len(words.splitlines()) <= 2


async def test_long_retry_after_is_not_waited_for_and_names_when():
    with FakeAPI() as api:
        api.enqueue(long_retry_after(600))
        b = backend(api)
        t0 = time.monotonic()
        got, err = await drain(b)
        await b.aclose()
    assert time.monotonic() - t0 < 2
    assert err is not None and err.code == "rate_limit"
    assert "600 seconds" in err.message and re.search(r"after \d\d:\d\d", err.hint or "")
    assert not any(isinstance(e, RetryWait) for e in got)
    assert len(api.requests) == 1


async def test_retries_are_ours_bounded_and_announced():
    with FakeAPI() as api:
        api.enqueue(http_error(529, retry_after_ms=300), http_error(529, retry_after_ms=300), text("at last"))
        b = backend(api)
        got, err = await drain(b)
        await b.aclose()
    waits = [e for e in got if isinstance(e, RetryWait)]
    assert err is None and [w.attempt for w in waits] == [1, 2] and all(w.of == 2 for w in waits)
    assert waits[0].seconds == pytest.approx(0.3) and waits[0].reason == "Claude is overloaded (529)."
    assert len(api.requests) == 3  # no hidden SDK retries on top of ours


async def test_retries_give_up_after_the_limit():
    with FakeAPI() as api:
        api.enqueue(*[http_error(500, retry_after_ms=10)] * 5)
        b = backend(api)
        got, err = await drain(b)
        await b.aclose()
    assert err is not None and err.retryable
    assert len(api.requests) == 1 + FAST.retries


async def test_no_retry_after_the_first_word():
    with FakeAPI() as api:
        api.enqueue(drop("Half a reply"), text("never asked for"))
        b = backend(api)
        got, err = await drain(b)
        await b.aclose()
    assert err is not None and err.code == "connection" and len(api.requests) == 1


def test_limits_from_env(monkeypatch):
    monkeypatch.setenv("TUTOR_REPLY_TIMEOUT", "42")
    monkeypatch.setenv("TUTOR_FIRST_TOKEN_TIMEOUT", "7.5")
    monkeypatch.setenv("TUTOR_MAX_REPLY_CHARS", "999")
    monkeypatch.setenv("TUTOR_RETRIES", "0")
    lim = Limits.from_env(first_token=3)
    assert (lim.first_token, lim.reply, lim.max_chars, lim.retries) == (3, 42.0, 999, 0)
    monkeypatch.setenv("TUTOR_REPLY_TIMEOUT", "soon")
    with pytest.raises(Exception, match="TUTOR_REPLY_TIMEOUT must be a number"):
        Limits.from_env()


def test_default_limits_are_minutes_at_most():
    lim = Limits()
    worst = lim.reply  # the whole turn, retries and waits included
    assert worst <= 5 * 60 and lim.first_token <= lim.reply and lim.retry_after_cap <= 60


# -- through the engine: the partial reply is kept and marked, and retry works ----------


EXPLAINER = [{"id": "wal", "title": "Write-ahead log", "body": "The WAL keeps changes."}]


def open_session(tmp_path, api: FakeAPI, limits: Limits = FAST) -> TutorSession:
    store = Store.open(tmp_path / "t.db")
    return TutorSession.open(make_explainer(EXPLAINER), store, backend=backend(api, limits), new=True)


async def turn(events) -> list[object]:
    return [ev async for ev in events]


@pytest.mark.parametrize("mode", ["trickle", "ping_forever", "huge_reply", "stalled_headers"])
async def test_engine_keeps_partial_reply_marked_and_retry_works(tmp_path, mode):
    make, code, arrived = MODES[mode]
    with FakeAPI() as api:
        api.enqueue(text("Welcome."))
        s = open_session(tmp_path, api)
        await turn(s.start())
        api.enqueue(*make(), text("The full answer."))
        evs = await asyncio.wait_for(turn(s.reply("What is a WAL?")), GUARD)
        errs = [e for e in evs if isinstance(e, ErrorEvent)]
        assert errs and errs[0].code == code and errs[0].retryable
        assert isinstance(evs[-1], TurnFinished) and not evs[-1].complete
        rows = s.store.messages(s.id)
        assert [r.text for r in rows if r.role == "reader"] == ["What is a WAL?"]  # the reader's text stays
        tutor_rows = [r for r in rows if r.role == "tutor"]
        shown = "".join(e.text for e in evs if isinstance(e, TextDelta))
        if arrived:
            assert tutor_rows[-1].text == shown and arrived in shown and not tutor_rows[-1].complete
        again = await asyncio.wait_for(turn(s.retry()), GUARD)
        assert isinstance(again[-1], TurnFinished) and again[-1].complete
        assert "The full answer." in "".join(e.text for e in again if isinstance(e, TextDelta))
        # the retry resends the reader's words (in their own tag, before the feedback reminder)
        assert api.requests[-1].body["messages"][-1]["content"][-2]["text"].endswith("What is a WAL?\n</reader>")
        await s.aclose()
        s.store.close()


async def test_engine_emits_retrying_events(tmp_path):
    with FakeAPI() as api:
        api.enqueue(text("Welcome."))
        s = open_session(tmp_path, api)
        await turn(s.start())
        api.enqueue(http_error(429, retry_after_ms=200), text("Now it works."))
        evs = await turn(s.reply("Hi"))
        waits = [e for e in evs if isinstance(e, Retrying)]
        assert len(waits) == 1 and waits[0].seconds == pytest.approx(0.2) and waits[0].attempt == 1
        assert isinstance(evs[-1], TurnFinished) and evs[-1].complete
        await s.aclose()
        s.store.close()


# -- the reader sees the wait, and can stop it ------------------------------------------


async def test_app_shows_retrying_wait_and_esc_stops_it(tmp_path):
    from tutor.app.app import TutorApp
    from tutor.app.widgets import RetryNote

    from app_helpers import SAMPLE, claude_backend, dialogue, idle, screen_text, wait_until
    from app_helpers import open_session as open_app_session

    with FakeAPI() as api:
        api.enqueue(text("Hello. Do you already know about pages?", chunk_size=10))
        session = open_app_session(SAMPLE, tmp_path / "t.db", backend=claude_backend(api, max_retries=2))
        app = TutorApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await idle(pilot, app)
            api.enqueue(http_error(529, retry_after_ms=20_000), text("never sent"))
            app.input.text = "What is a page?"
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.query(RetryNote), 10, "the retry note")
            screen = screen_text(app)
            assert "Claude is overloaded (529). Retrying in 20 s" in screen and "Esc to stop" in screen
            await pilot.press("escape")
            await idle(pilot, app, 5)
            assert not app.query(RetryNote)
            assert len(api.requests) == 2  # the opening and the one that failed: Esc stopped the retry
            assert any("stopped" in t for k, t in dialogue(app) if k == "note")
            assert app.input.text == "" or "What is a page?" in app.input.text
        rows = session.store.messages(session.id)
        assert [r.text for r in rows if r.role == "reader"] == ["What is a page?"]
        await session.aclose()
        session.store.close()


async def test_app_shows_deadline_error_and_keeps_partial(tmp_path):
    from tutor.app.app import ERROR_TITLES, TutorApp

    from app_helpers import SAMPLE, claude_backend, dialogue, idle, notifications
    from app_helpers import open_session as open_app_session

    with FakeAPI() as api:
        api.enqueue(text("Hello.", chunk_size=10))
        session = open_app_session(SAMPLE, tmp_path / "t.db", backend=claude_backend(api, limits=FAST))
        app = TutorApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await idle(pilot, app)
            api.enqueue(trickle(every=0.05))
            app.input.text = "Tell me all"
            await pilot.press("enter")
            await pilot.pause(0.05)
            await idle(pilot, app, GUARD)
            errs = [n for n in notifications(app) if n.severity == "error"]
            assert errs and errs[-1].title == ERROR_TITLES["deadline"]
            assert "Ctrl+R" in errs[-1].message and not EXCEPTION_NAME.search(errs[-1].message)
            notes = [t for k, t in dialogue(app) if k == "note"]
            assert any("cut off by the time limit" in t for t in notes)
            assert app.input.text == "Tell me all"
        await session.aclose()
        session.store.close()


async def test_plain_prints_the_wait_and_the_deadline(tmp_path):
    import io

    from tutor.plain import PlainUI

    with FakeAPI() as api:
        api.enqueue(text("Hello."))
        s = open_session(tmp_path, api)
        out = io.StringIO()
        plain = PlainUI(s, io.StringIO(), out, io.StringIO())
        await plain.show(s.start())
        api.enqueue(http_error(429, retry_after_ms=100), ping_forever(30))
        await asyncio.wait_for(plain.show(s.reply("Hi")), GUARD)
        await s.aclose()
        s.store.close()
    shown = out.getvalue()
    assert "(Claude's rate limit was reached (429). Retrying in 1 s, retry 1 of 2; Ctrl-C to stop.)" in shown
    assert "[error] Claude sent no reply within 0.6 seconds." in shown
    assert "Type /retry to send your message again." in shown


def test_open_help_names_the_limits_and_their_defaults():
    from click.testing import CliRunner

    from tutor.cli import cli

    out = " ".join(CliRunner().invoke(cli, ["open", "--help"]).output.split())  # unwrapped
    lim = Limits()
    assert "--first-token-timeout SECONDS" in out and f"default {lim.first_token:g};" in out
    assert f"default {lim.reply:g};" in out and f"$TUTOR_MAX_REPLY_CHARS (default {lim.max_chars})" in out
    assert f"$TUTOR_RETRIES (default {lim.retries})" in out


# -- tutor compile: the same Limits, a longer whole-call deadline (docs/reliability.md) ----------


def _compile(api: FakeAPI, tmp_path, *extra: str, env: dict[str, str] | None = None, answers: str = "4096 bytes\nstop\n"):
    from compile_helpers import big_notes, claude_env, run_cli

    notes = tmp_path / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "wal.md").write_text(big_notes(), encoding="utf-8")
    full = claude_env(api, tmp_path / "home") | {"TUTOR_FIRST_TOKEN_TIMEOUT": "0.6", "TUTOR_RETRIES": "2"} | (env or {})
    t0 = time.monotonic()
    r = run_cli(["compile", str(notes), "-o", str(tmp_path / "wal.md"), *extra], input=answers, env=full)
    return r, time.monotonic() - t0


def _compile_rows(tmp_path) -> tuple[list[tuple], list[tuple]]:
    import sqlite3

    with sqlite3.connect(tmp_path / "home" / "tutor.db") as db:
        return (db.execute("SELECT status FROM compiles").fetchall(),
                db.execute("SELECT seq, status, answer FROM compile_questions ORDER BY seq").fetchall())


@pytest.mark.parametrize("stall", ["trickle", "ping_forever", "stalled_headers", "stalled_body"])
def test_a_stalled_compile_write_ends_by_its_deadline_and_resume_keeps_the_answers(tmp_path, stall):
    from compile_helpers import OUTLINE_REPLY, explainer_reply

    make = MODES[stall][0]
    with FakeAPI() as api:
        api.enqueue(OUTLINE_REPLY, *make())
        r, took = _compile(api, tmp_path, env={"TUTOR_COMPILE_TIMEOUT": "1.5"})
        assert r.exit_code == 1, r
        assert took < 1.5 + 5.0, f"{stall}: compile took {took:.1f} s"
        first, hint = [line for line in r.stderr.splitlines() if line.startswith("tutor: ")][0], r.stderr
        if stall == "trickle":  # words arrived: the whole-call deadline tripped
            assert "Claude's reply took longer than 1.5 seconds and was stopped." in first, r
        else:
            assert "Claude sent no reply within 0.6 seconds." in first, r
        assert "--resume" in hint and "--reply-timeout SECONDS" in hint and "message was kept" not in hint
        assert not EXCEPTION_NAME.search(r.stderr), r.stderr
        assert not (tmp_path / "wal.md").exists()  # nothing half-written
        # What the author already gave is kept: the outline and the answer, for --resume.
        status, questions = _compile_rows(tmp_path)
        assert status == [("writing",)] and questions[0] == (1, "answered", "4096 bytes")
        n = len(api.requests)
        api.enqueue(explainer_reply())
        r, _ = _compile(api, tmp_path, "--resume", answers="")
        assert r.exit_code == 0, r
        assert len(api.requests) == n + 1 and "<answer>4096 bytes</answer>" in str(api.bodies[-1])


def test_compile_reply_timeout_option_wins_over_env_and_waits_are_said(tmp_path):
    from compile_helpers import OUTLINE_REPLY

    with FakeAPI() as api:
        api.enqueue(http_error(529, retry_after_ms=200), OUTLINE_REPLY, trickle(every=0.05))
        r, took = _compile(api, tmp_path, "--reply-timeout", "1", env={"TUTOR_COMPILE_TIMEOUT": "600"})
    assert r.exit_code == 1 and took < 1 + 5.0, r
    assert "Claude is overloaded (529). Retrying in 1 s (retry 1 of 2; Ctrl-C to stop)." in r.stderr
    assert "Claude's reply took longer than 1 seconds and was stopped." in r.stderr


def test_compile_limits_default_and_bad_env(tmp_path):
    from compile_helpers import claude_env, run_cli

    assert Limits().long_reply == 15 * 60 and Limits().first_token < Limits().long_reply
    with FakeAPI() as api:
        env = claude_env(api, tmp_path / "home") | {"TUTOR_COMPILE_TIMEOUT": "later"}
        (tmp_path / "n.md").write_text("# Notes\n\nSome text.\n")
        r = run_cli(["compile", str(tmp_path / "n.md"), "-o", str(tmp_path / "x.md")], env=env)
        help_text = " ".join(run_cli(["compile", "--help"]).stdout.split())
    assert r.exit_code == 1 and "$TUTOR_COMPILE_TIMEOUT must be a number, not 'later'." in r.stderr, r
    assert "--reply-timeout SECONDS" in help_text and f"default {Limits().long_reply:g};" in help_text


def test_the_sdks_read_timeout_never_ends_a_try_before_the_first_word_limit(api, monkeypatch):
    """A reader who asks for 300 s to the first word got 60: the SDK's own read timeout came
    first. Without an explicit timeout it now ends a little after the first-word limit."""
    slow = ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url, limits=Limits(first_token=300.0))
    assert slow.timeout == 305.0 and slow._client.timeout == 305.0
    assert ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url).timeout == 95.0
    assert ClaudeBackend("claude-sonnet-test", api_key="test-key", base_url=api.url, limits=Limits(first_token=2.0)).timeout == 60.0
    assert backend(api).timeout == 5.0  # given: kept


def test_a_local_server_gets_minutes_for_the_first_word(api, monkeypatch):
    """A CPU model reads the 6-7k-token opening request for minutes before its first word."""
    for env in ("TUTOR_FIRST_TOKEN_TIMEOUT", "TUTOR_REPLY_TIMEOUT"):
        monkeypatch.delenv(env, raising=False)
    local = Limits.from_env(local=True)
    assert (local.first_token, local.reply) == (600.0, 1200.0)
    assert ClaudeBackend("llama3.2", base_url=api.url, local=True).limits == local
    monkeypatch.setenv("TUTOR_FIRST_TOKEN_TIMEOUT", "120")
    assert Limits.from_env(local=True).first_token == 120.0  # the reader's own setting wins
    assert Limits.from_env(local=True, reply=50.0).reply == 50.0
    assert Limits.from_env().first_token == 120.0 and Limits().first_token == 90.0
