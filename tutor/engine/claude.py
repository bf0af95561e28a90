"""The Claude back end: one streamed Messages API call, its usage and cost, and clear errors.

Why a thin layer: the engine (session.py) owns the dialogue, the tag filter and the store;
this module only talks to the official ``anthropic`` SDK (``AsyncAnthropic``, streaming),
and turns every way a call can fail into a ``BackendError`` whose ``code`` matches
``events.ErrorEvent.code`` and whose message says what to do next. The SDK is imported
lazily, when a backend is created, so ``tutor --help`` and offline runs never load it.

The API key is never put in a message, a log line or the store: errors are built from
our own wording, and any text that comes from the server is scrubbed of the key.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tutor.engine.events import TokenUsage
from tutor.errors import ErrorCode, TutorError

if TYPE_CHECKING:
    from tutor.engine.backend import BackendEvent, Retrying
    from tutor.engine.models import CallKind, Effort, Reported
    from tutor.engine.prices import Prices

KEY_ENV = "ANTHROPIC_API_KEY"
MODEL_ENV = "TUTOR_MODEL"
FALLBACK_MODEL = "claude-sonnet-4-6"  # used only if the SDK's model list has no current Sonnet alias

BASE_URL_ENV = "TUTOR_BASE_URL"  # a local or other Messages-API server: no Anthropic key, cost 0
LOCAL_KEY_ENV = "TUTOR_API_KEY"  # the key such a server wants, if any (never ANTHROPIC_API_KEY)
TIMEOUT_DEFAULT = 60.0  # the SDK's own per-read timeout (connect, each read); Limits bound the whole turn


# ---------------------------------------------------------------------------
# Turn limits and the retry policy (docs/reliability.md)

FIRST_TOKEN_ENV = "TUTOR_FIRST_TOKEN_TIMEOUT"
REPLY_TIMEOUT_ENV = "TUTOR_REPLY_TIMEOUT"
MAX_REPLY_CHARS_ENV = "TUTOR_MAX_REPLY_CHARS"
RETRIES_ENV = "TUTOR_RETRIES"
COMPILE_TIMEOUT_ENV = "TUTOR_COMPILE_TIMEOUT"


@dataclass(frozen=True)
class Limits:
    """What a turn may cost in time and size, whatever the server does.

    Why ours and not the SDK's: the SDK's read timeout restarts with every event, so a
    server that sends pings, or one word a minute, is never timed out, and its hidden
    retries wait in silence. These deadlines are absolute (asyncio.timeout_at), and every
    retry wait is an event the reader sees."""

    first_token: float = 90.0  # connect + headers + the first word (or the start of thinking), per attempt
    reply: float = 300.0  # the whole tutor turn, retries and their waits included
    max_chars: int = 20_000  # a tutor turn asks for ~1,024 tokens (~4,500 characters)
    retries: int = 2  # bounded retries of a failure that happened before the first word
    retry_after_cap: float = 30.0  # a longer retry-after is not waited for: the reader is told when to try
    long_reply: float = 900.0  # the whole of a compile call or summary (long replies by design), retries included

    @classmethod
    def from_env(cls, *, local: bool = False, **given: float | int | None) -> Limits:
        """Options given (not None) win over $TUTOR_FIRST_TOKEN_TIMEOUT, $TUTOR_REPLY_TIMEOUT,
        $TUTOR_MAX_REPLY_CHARS, $TUTOR_RETRIES and $TUTOR_COMPILE_TIMEOUT, which win over the
        defaults: ``LOCAL_LIMITS``' times for a local server, else these."""
        values: dict[str, Any] = {"first_token": LOCAL_LIMITS.first_token, "reply": LOCAL_LIMITS.reply} if local else {}
        for name, env, conv in (
            ("first_token", FIRST_TOKEN_ENV, float),
            ("reply", REPLY_TIMEOUT_ENV, float),
            ("max_chars", MAX_REPLY_CHARS_ENV, int),
            ("retries", RETRIES_ENV, int),
            ("long_reply", COMPILE_TIMEOUT_ENV, float),
        ):
            value = given.get(name)
            if value is None and os.environ.get(env, "").strip():
                try:
                    value = conv(os.environ[env].strip())
                except ValueError:
                    raise TutorError(
                        f"${env} must be a number, not {os.environ[env].strip()[:40]!r}.",
                        hint=f"Unset it or give a number, e.g. export {env}={conv(getattr(cls, name))}",
                    ) from None
            if value is not None:
                if value < 0 or (value == 0 and name != "retries"):
                    raise TutorError(f"{name.replace('_', ' ')} must be above 0 (got {value}).", hint=f"Fix ${env} or the option.")
                values[name] = value
        return cls(**values)


# A model on a local CPU reads tutor's 6-7k-token opening request at tens of tokens a second
# before its first word (minutes, not seconds), then writes a few tokens a second: Anthropic's
# 90 s and 300 s would end such a turn before it began (docs/reliability.md).
LOCAL_LIMITS = Limits(first_token=600.0, reply=1200.0)


def backoff_seconds(failures: int) -> float:
    """The wait before retry number ``failures`` when the server names none: the SDK's
    schedule (0.5 s doubling, at most 8 s, a little jitter)."""
    try:
        from anthropic._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY
    except ImportError:  # a private module: its figures, if it moves
        INITIAL_RETRY_DELAY, MAX_RETRY_DELAY = 0.5, 8.0  # noqa: N806
    return min(INITIAL_RETRY_DELAY * 2.0 ** (failures - 1), MAX_RETRY_DELAY) * (1 - 0.25 * random.random())


# ---------------------------------------------------------------------------
# Model choice


def newest_sonnet(models: Iterable[str], deprecated: Iterable[str] = ()) -> str:
    """The newest ``claude-sonnet-*`` alias without a date suffix, by version number.

    Models the SDK lists as deprecated are skipped: a default that warns on every call,
    and stops working on its end-of-life date, is no default."""
    skip = set(deprecated)
    best: tuple[tuple[int, ...], str] | None = None
    for m in models:
        if m in skip:
            continue
        match = re.fullmatch(r"claude-sonnet-(\d+(?:-\d+)*)", m)
        if not match:
            continue
        parts = tuple(int(p) for p in match.group(1).split("-"))
        if any(p >= 1000 for p in parts):  # a date like 20250929, not a version
            continue
        version = parts + (0,) * (3 - len(parts))
        if best is None or version > best[0]:
            best = (version, m)
    return best[1] if best else FALLBACK_MODEL


def sdk_models() -> list[str]:
    """The literal model ids the installed SDK knows."""
    import typing

    from anthropic.types import Model

    names: list[str] = []
    for arg in typing.get_args(Model):
        names.extend(a for a in typing.get_args(arg) if isinstance(a, str))
    return names


def sdk_deprecated_models() -> set[str]:
    """Ids the installed SDK warns about. ``anthropic._data`` is private, so its absence
    in some SDK version only means nothing is skipped."""
    try:
        from anthropic._data import DEPRECATED_MODELS
    except ImportError:
        return set()
    return set(DEPRECATED_MODELS)


_default_model: str | None = None


def default_model() -> str:
    global _default_model
    if _default_model is None:
        _default_model = newest_sonnet(sdk_models(), sdk_deprecated_models())
    return _default_model


def __getattr__(name: str) -> Any:
    # DEFAULT_MODEL is computed from the SDK's model list on first use, so importing
    # this module does not import anthropic.
    if name == "DEFAULT_MODEL":
        return default_model()
    raise AttributeError(name)


def resolve_model(cli_model: str | None) -> str:
    """--model, then $TUTOR_MODEL, then the newest Sonnet the SDK lists."""
    for value in (cli_model, os.environ.get(MODEL_ENV)):
        if value and value.strip():
            return value.strip()
    return default_model()


def has_api_key() -> bool:
    return bool(os.environ.get(KEY_ENV, "").strip())


def resolve_base_url(cli_url: str | None) -> str | None:
    """--base-url, then $TUTOR_BASE_URL: a server that is not Anthropic's API (Ollama,
    llama.cpp, vLLM, LiteLLM). ANTHROPIC_BASE_URL stays the SDK's own setting for a gateway
    to Anthropic's API, priced and configured like it."""
    for value in (cli_url, os.environ.get(BASE_URL_ENV)):
        if value and value.strip():
            return value.strip()
    return None


def is_anthropic_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host == "anthropic.com" or host.endswith(".anthropic.com")


# ---------------------------------------------------------------------------
# Results and errors


class StreamResult(TokenUsage):
    text: str
    stop_reason: str | None
    complete: bool  # False when the model hit max_tokens
    thinking: bool = False  # the model thought before it answered (its text is never kept)
    structured: bool = False  # the request carried output_config.format: the text is JSON of that schema


class BackendError(TutorError):
    """A model call failed, and why (``code``); the partial reply is
    kept, and ``usage`` holds what the failed call was billed for, as far as it is known."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool = True,
        partial_text: str = "",
        status: int | None = None,
    ):
        super().__init__(message, hint=hint)
        self.code = code
        self.retryable = retryable
        self.partial_text = partial_text
        self.status = status
        self.usage: TokenUsage | None = None


KEY_HINT = f"Set your key with: export {KEY_ENV}=sk-ant-...  (or run with --offline for the guided mode)."


def missing_key_error() -> BackendError:
    return BackendError(ErrorCode.AUTH, f"No Anthropic API key: {KEY_ENV} is not set.", hint=KEY_HINT, retryable=False)


def _scrub(text: str, key: str | None) -> str:
    """Server text is untrusted: drop the key if echoed, control characters, and keep it short."""
    if key:
        text = text.replace(key, "***")
    from tutor.text import strip_controls

    return strip_controls(text)[:200]


def map_exception(exc: BaseException, *, partial: str, timeout: float, key: str | None) -> BackendError:
    """Turn an SDK / transport exception into a BackendError with a clear next step."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APITimeoutError) or isinstance(exc, httpx2.TimeoutException):
        return BackendError(
            ErrorCode.TIMEOUT,
            f"Claude did not answer within {timeout:g} seconds.",
            hint="Check your connection, then retry (the reply so far was kept).",
            partial_text=partial,
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        etype = str(exc.type or "") if not isinstance(exc.body, str) else ""
        if not etype and isinstance(exc.body, dict):
            etype = str((exc.body.get("error") or {}).get("type") or "")
        api_msg = _scrub(str(exc.api_message or ""), key)
        if status == 200:  # an `event: error` in the middle of the stream
            kind = re.sub(r"[^a-z_]", "", etype) or "error"
            return BackendError(
                ErrorCode.STREAM_ERROR,
                f"Claude's reply was cut off by an error in the stream ({kind}).",
                hint="The partial reply was kept; retry to ask again.",
                partial_text=partial,
                status=status,
            )
        if status in (401, 403) or isinstance(exc, anthropic.AuthenticationError):
            return BackendError(
                ErrorCode.AUTH,
                f"Claude rejected the API key ({status}).",
                hint=KEY_HINT,
                retryable=False,
                partial_text=partial,
                status=status,
            )
        if status == 429:
            return BackendError(
                ErrorCode.RATE_LIMIT,
                "Claude's rate limit was reached (429), even after retrying.",
                hint="Wait a minute, then retry; your message was kept.",
                partial_text=partial,
                status=status,
            )
        if status == 529 or etype == "overloaded_error":
            return BackendError(
                ErrorCode.OVERLOADED,
                "Claude is overloaded right now (529), even after retrying.",
                hint="Try again in a moment; your message was kept.",
                partial_text=partial,
                status=status,
            )
        if status in (400, 413) and ("too long" in api_msg.lower() or status == 413 or "too large" in api_msg.lower()):
            return BackendError(
                ErrorCode.CONTEXT,
                "The conversation is too long for the model's context window.",
                hint="Start a new session with --new, or use a model with a larger context (--model).",
                retryable=False,
                partial_text=partial,
                status=status,
            )
        if status >= 500 and not isinstance(exc.body, dict):  # a proxy's HTML page, an empty 502: no API error
            return BackendError(
                ErrorCode.OTHER,
                f"Claude's server failed ({status}) and sent no reply, even after retrying.",
                hint="Try again in a minute; your message was kept. If it keeps failing, check the server (--base-url).",
                partial_text=partial,
                status=status,
            )
        return BackendError(
            ErrorCode.OTHER,
            f"Claude returned an error ({status}{': ' + api_msg if api_msg else ''}).",
            hint="Retry; if it keeps failing, check --model and your account.",
            retryable=status >= 500 or status == 408,
            partial_text=partial,
            status=status,
        )
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
        return BackendError(
            ErrorCode.CONNECTION,
            "The connection to Claude was lost" + (" in the middle of the reply." if partial else "."),
            hint="Check your network, then retry (the reply so far was kept).",
            partial_text=partial,
        )
    # Invalid UTF-8 or JSON, an unknown event: say what happened, not the exception's name.
    return BackendError(
        ErrorCode.OTHER,
        "Claude's reply could not be read: the server sent something that is not a valid reply.",
        hint="Retry; if it keeps failing, check the server (--base-url) or run with --offline.",
        partial_text=partial,
    )


class _TooLong(Exception):
    """The reply passed Limits.max_chars (raised inside the stream, mapped to "too_long")."""


def _retry_reason(err: BackendError) -> str:
    """What failed, for "... Retrying in N s": short, and not "even after retrying"."""
    if err.code == ErrorCode.RATE_LIMIT:
        return "Claude's rate limit was reached (429)."
    if err.code == ErrorCode.OVERLOADED:
        return f"Claude is overloaded ({err.status or 529})."
    if err.code == ErrorCode.CONNECTION:
        return "The connection to Claude failed."
    return f"Claude's server failed ({err.status})." if err.status else "Claude did not answer."


def _too_long_a_wait(err: BackendError, wait: float) -> BackendError:
    """The server asks for a longer wait than we hold a reader for: say when to try."""
    when = time.strftime("%H:%M", time.localtime(time.time() + wait))
    code = err.status if err.status is not None else ""
    out = BackendError(
        err.code,
        f"Claude asks to wait {wait:,.0f} seconds before the next try ({code}).".replace(" ()", ""),
        hint=f"Try again after {when} (your message was kept).",
        partial_text=err.partial_text,
        status=err.status,
    )
    out.usage = err.usage
    return out


# ---------------------------------------------------------------------------
# The back end



NO_MODEL_HINT = "Name one with --model (or TUTOR_MODEL); `ollama list` shows what an Ollama server has."
SMALL_CONTEXT = 0.7  # a server that read less than this share of what was sent cut the prompt


def _usage_of(message: Any) -> tuple[dict[str, int], int]:
    """The four token totals of a message snapshot, and its 1-hour cache writes. A server
    without cache fields (a local one) reports them as missing: 0."""
    u = getattr(message, "usage", None)
    out = {
        k: int(getattr(u, k, 0) or 0)
        for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    split = getattr(u, "cache_creation", None)
    return out, int(getattr(split, "ephemeral_1h_input_tokens", 0) or 0)


def _unfinished(text: str, result: StreamResult, spent: TokenUsage) -> BackendError:
    """A stream that ended without a stop_reason, billed for what it and earlier attempts used."""
    err = BackendError(
        ErrorCode.NO_STOP_REASON,
        "Claude's reply ended before it was finished.",
        hint="The partial reply was kept; retry to get a complete one.",
        partial_text=text,
    )
    result.add(spent)
    err.usage = result
    return err


class ClaudeBackend:
    """Streams Messages API replies through the SDK's ``messages.stream`` helper, with our
    bounded, visible retries and deadlines (Limits), settings per kind of call from ``models.py``, and one retry with more room
    when thinking used up a reply before any visible word."""

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        local: bool = False,
        max_retries: int | None = None,
        timeout: float | None = None,
        effort: Effort | None = None,
        limits: Limits | None = None,
        prices: dict[str, Prices] | None = None,
        reported: Reported | None = None,
    ):
        self.prices = prices or {}  # the reader's prices.yaml, over the built-in table
        self.reported = reported  # what the Models API said (model_report), e.g. by an earlier backend
        self.local = local and not (base_url and is_anthropic_url(base_url))
        explicit = model or os.environ.get(MODEL_ENV)
        # A local server's model comes from --model or its own list (resolve_server_model).
        self.model = explicit.strip() if explicit and explicit.strip() else ("" if self.local else default_model())
        self.effort = effort
        self.limits = limits if limits is not None else Limits.from_env(local=self.local)
        # The SDK's per-read timeout is a second bound only: it must not end a try before our
        # first-word limit does (a reader who asked for 300 s got 60), so it ends a little after.
        self.timeout = timeout if timeout is not None else max(TIMEOUT_DEFAULT, self.limits.first_token + 5.0)
        if max_retries is not None:  # our retries (events()); the SDK's own hidden ones are always off
            self.limits = replace(self.limits, retries=max_retries)
        self.notices: list[str] = []  # things the reader should know, taken by the engine
        self._window_warned = False
        if self.local:
            key = api_key if api_key is not None else (os.environ.get(LOCAL_KEY_ENV) or "no-key-needed")
        else:
            key = api_key if api_key is not None else os.environ.get(KEY_ENV, "")
            if not key or not key.strip():
                raise missing_key_error()
        self._key = key.strip()
        self._set_profile()
        import anthropic  # lazy: only a Claude session pays for the import

        url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        try:
            self._client = anthropic.AsyncAnthropic(api_key=self._key, base_url=url, max_retries=0, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - httpx2.InvalidURL and friends: a bad address, not a bug
            where = "the base URL" if base_url else "ANTHROPIC_BASE_URL"
            raise BackendError(
                ErrorCode.CONFIG,
                f"{where} is not a valid server address: {_scrub(str(url), self._key)!r} ({_scrub(str(exc), self._key)}).",
                hint="Fix it (for example http://127.0.0.1:8080), or unset it to use Anthropic's API.",
                retryable=False,
            ) from None

    def _set_profile(self) -> None:
        from tutor.engine.models import LOCAL, UNKNOWN, known_profile, unknown_model_message, with_reported

        self.name = f"local:{self.model}" if self.local else f"claude:{self.model}"
        from tutor.engine.prices import match, priced

        found = LOCAL if self.local else known_profile(self.model)
        own = match(self.prices, self.model) if self.model else None
        if found is None:  # an unknown id: one notice for the reader, not a Python warning
            note = unknown_model_message(self.model)
            if own is not None:
                note = note.replace("and Sonnet prices", f"and your prices ({own.source})")
            self.notices.append(note + ".")
        self.profile = with_reported(priced(found or UNKNOWN, own) if own is not None else (found or UNKNOWN), self.reported)

    def __repr__(self) -> str:  # never show the key
        return f"ClaudeBackend(model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.close()

    async def resolve_server_model(self) -> str:
        """A local server without --model: the first model its list names."""
        if self.model:
            return self.model
        try:
            page = await self._client.models.list(timeout=min(self.timeout, 10.0))
            ids = [m.id for m in page.data if getattr(m, "id", None)]
        except Exception as exc:  # noqa: BLE001 - any failure: ask the reader to name one
            raise BackendError(
                ErrorCode.CONFIG, f"The server did not list its models ({_scrub(type(exc).__name__, self._key)}).", hint=NO_MODEL_HINT, retryable=False
            ) from None
        if not ids:
            raise BackendError(ErrorCode.CONFIG, "The server lists no models.", hint=NO_MODEL_HINT, retryable=False)
        self.model = ids[0]
        self._set_profile()
        return self.model

    async def model_report(self) -> Reported | None:
        """What the Models API says of this model (its window, output limit and whether it takes
        structured output), applied to the profile; None when it cannot be had (an old proxy
        without /v1/models, a network error): the table's figures stay."""
        from tutor.engine.models import Reported

        try:
            info = await self._client.models.retrieve(self.model, timeout=min(self.timeout, 10.0))
        except Exception:  # noqa: BLE001 - a missing number is not worth failing over
            return None
        value, out = getattr(info, "max_input_tokens", None), getattr(info, "max_tokens", None)
        caps = getattr(info, "capabilities", None)
        so = getattr(getattr(caps, "structured_outputs", None), "supported", None)
        self.reported = Reported(
            context_window=value if isinstance(value, int) and value > 0 else None,
            max_output=out if isinstance(out, int) and out > 0 else None,
            structured_output=so if isinstance(so, bool) else None,
        )
        self._set_profile()
        return self.reported

    async def context_tokens(self) -> int | None:
        """The model's input window from the Models API, or None when it cannot be had: callers
        then assume a default. A 1M-token model must not be refused notes a 200k one could not read."""
        report = await self.model_report()
        return report.context_window if report is not None else None

    def _cost(self, usage: dict[str, int], write_1h: int) -> float:
        from tutor.engine.models import cost_usd

        return cost_usd(
            self.profile,
            usage["input_tokens"],
            usage["output_tokens"],
            usage["cache_creation_input_tokens"],
            usage["cache_read_input_tokens"],
            write_1h,
        )

    def _result(self, message: Any, text: str, thinking: bool, *, structured: bool = False) -> StreamResult:
        usage, write_1h = _usage_of(message)
        stop = getattr(message, "stop_reason", None)
        return StreamResult(
            text=text,
            stop_reason=stop,
            complete=stop != "max_tokens",
            thinking=thinking,
            structured=structured,
            cost_usd=self._cost(usage, write_1h),
            **usage,
        )

    def _check_window(self, system: list[dict], messages: list[dict], result: StreamResult) -> None:
        """Ollama's default context is 4k tokens and it cuts a longer prompt silently: when a
        local server read far less than was sent, say so once (the teaching would be blind)."""
        if not self.local or self._window_warned:
            return
        import json

        sent = len(json.dumps([system, messages], ensure_ascii=False)) // 4
        read = result.input_tokens + result.cache_creation_input_tokens + result.cache_read_input_tokens
        if read and sent > 1000 and read < sent * SMALL_CONTEXT:
            self._window_warned = True
            self.notices.append(
                f"The server read only {read:,} of about {sent:,} tokens: its context window is smaller than tutor's "
                "request, so the model does not see the whole explainer. Raise it (Ollama: OLLAMA_CONTEXT_LENGTH=16384; "
                "llama-server: -c 16384)."
            )

    async def events(
        self,
        *,
        system: list[dict],
        messages: list[dict],
        kind: CallKind | None = None,
        effort: Effort | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> AsyncGenerator[BackendEvent, None]:
        """One streamed reply: Retrying (maybe), ThinkingStarted (maybe), TextPiece..., then Finished.

        Raises BackendError with ``partial_text`` and the usage so far on any failure,
        including a stream that ends without a stop_reason and a turn that passes its
        Limits. A failure before the first word is retried (bounded, each wait announced
        by a Retrying event); after it, the reader's retry decides. Closing the iterator
        closes the HTTP stream, also during a retry wait.
        """
        from tutor.engine.backend import Finished, Retrying, TextPiece, ThinkingStarted
        from tutor.engine.models import CallKind, Effort, call_params, effort_for

        kind = kind or CallKind.TUTOR_TURN
        if self.local and not self.model:
            await self.resolve_server_model()
        eff = effort_for(kind, effort or self.effort)
        params = call_params(self.profile, kind, eff, json_schema=json_schema)
        limits = self.limits
        turn = kind == CallKind.TUTOR_TURN  # compile writes long replies: a longer deadline and no size cap
        loop = asyncio.get_running_loop()
        reply_deadline = loop.time() + (limits.reply if turn else limits.long_reply)
        max_chars = limits.max_chars if turn else None
        spent = TokenUsage()  # a first attempt that thinking used up is still billed
        roomier = False
        failures = 0
        while True:
            parts: list[str] = []
            size = 0
            thinking = False
            message: Any = None
            stream: Any = None
            first_deadline = loop.time() + limits.first_token
            try:
                async with AsyncExitStack() as stack:
                    async with asyncio.timeout_at(min(first_deadline, reply_deadline)):
                        stream = await stack.enter_async_context(
                            self._client.messages.stream(
                                model=self.model,
                                system=system,  # type: ignore[arg-type]
                                messages=messages,  # type: ignore[arg-type]
                                **params,
                            )
                        )
                    events = stream.__aiter__()
                    while True:
                        # Absolute deadlines: pings and other events that are not progress do not move them.
                        deadline = reply_deadline if (parts or thinking) else min(first_deadline, reply_deadline)
                        try:
                            async with asyncio.timeout_at(deadline):
                                event = await events.__anext__()
                        except StopAsyncIteration:
                            break
                        etype = event.type
                        if etype == "text":
                            if not event.text:
                                continue
                            size += len(event.text)
                            if max_chars is not None and size > max_chars:
                                raise _TooLong()
                            parts.append(event.text)
                            yield TextPiece(event.text)
                        elif etype == "content_block_start" and event.content_block.type in ("thinking", "redacted_thinking"):
                            if not thinking:
                                thinking = True
                                yield ThinkingStarted()
                    message = stream.current_message_snapshot
            except BackendError:
                raise
            except (TimeoutError, _TooLong) as exc:
                partial = "".join(parts)
                err = self._limit_error(exc, partial, bool(parts or thinking), limits, turn)
                err.usage = self._partial_usage(stream, partial, spent)
                raise err from None
            except Exception as exc:  # noqa: BLE001 - every failure becomes a clear BackendError
                partial = "".join(parts)
                err = map_exception(exc, partial=partial, timeout=self.timeout, key=self._key)
                err.usage = self._partial_usage(stream, partial, spent)
                wait = self._retry_wait(exc, failures) if not parts else None
                if wait is not None and failures < limits.retries:
                    if wait > limits.retry_after_cap:
                        raise _too_long_a_wait(err, wait) from None
                    if loop.time() + wait > reply_deadline:
                        raise err from None  # no time left in this turn for another try
                    failures += 1
                    yield Retrying(seconds=wait, attempt=failures, of=limits.retries, reason=_retry_reason(err))
                    await asyncio.sleep(wait)
                    spent = err.usage or spent
                    continue
                raise err from None
            text = "".join(parts)
            result = self._result(message, text, thinking, structured="format" in (params.get("output_config") or {}))
            if result.stop_reason is None:
                raise _unfinished(text, result, spent)
            if result.stop_reason == "max_tokens" and not text.strip() and not roomier:
                # Thinking used all the room before one visible word: once more, thinking less
                # and with more room, rather than show the reader an empty reply.
                roomier = True
                spent.add(result)
                params = call_params(self.profile, kind, Effort.LOW, extra_room=params["max_tokens"], json_schema=json_schema)
                continue
            result.add(spent)
            self._check_window(system, messages, result)
            yield Finished(result)
            return

    def _retry_wait(self, exc: BaseException, failures: int) -> float | None:
        """Seconds to wait before trying again, or None when a retry cannot help. Which
        failures are worth it is the SDK's policy (``_should_retry``: 408, 409, 429, 5xx,
        x-should-retry; connection errors), as is the wait (retry-after-ms, retry-after)."""
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError):
            return None  # the server took the whole timeout already: the reader decides
        if isinstance(exc, anthropic.APIStatusError):
            if exc.status_code == 200:  # an error event mid-stream
                return None
            should = getattr(self._client, "_should_retry", None)
            ok = should(exc.response) if should is not None else (exc.status_code in (408, 409, 429) or exc.status_code >= 500)
            if not ok:
                return None
            parse = getattr(self._client, "_parse_retry_after_header", None)
            after = parse(exc.response.headers) if parse is not None else None
            if after is not None and after > 0:
                return float(after)
            return backoff_seconds(failures + 1)
        if isinstance(exc, anthropic.APIConnectionError):
            return backoff_seconds(failures + 1)
        return None

    def _limit_error(self, exc: BaseException, partial: str, progress: bool, limits: Limits, turn: bool) -> BackendError:
        hint_kept = "The reply so far was kept (marked unfinished); retry to ask again."
        if isinstance(exc, _TooLong):
            return BackendError(
                ErrorCode.TOO_LONG,
                f"Claude's reply passed {limits.max_chars:,} characters and was stopped there.",
                hint=hint_kept + f" A longer limit: {MAX_REPLY_CHARS_ENV}.",
                partial_text=partial,
            )
        if progress:
            seconds, env = (limits.reply, REPLY_TIMEOUT_ENV) if turn else (limits.long_reply, COMPILE_TIMEOUT_ENV)
            return BackendError(
                ErrorCode.DEADLINE,
                f"Claude's reply took longer than {seconds:g} seconds and was stopped.",
                hint=hint_kept + f" A longer limit: --reply-timeout or {env}.",
                partial_text=partial,
            )
        return BackendError(
            ErrorCode.DEADLINE,
            f"Claude sent no reply within {limits.first_token:g} seconds.",
            hint=f"Your message was kept; check your connection or the server, then retry. A longer limit: --first-token-timeout or {FIRST_TOKEN_ENV}.",
            partial_text=partial,
        )

    def _partial_usage(self, stream: Any, partial: str, spent: TokenUsage) -> TokenUsage:
        """What a call that failed mid-stream was billed: the input the server reported at
        the start, and at least the output that arrived (about 4 characters a token)."""
        snapshot = None
        if stream is not None:
            try:
                snapshot = stream.current_message_snapshot
            except (AssertionError, AttributeError):  # the stream failed before message_start
                snapshot = None
        usage, write_1h = _usage_of(snapshot) if snapshot is not None else ({}, 0)
        if not usage or not any(usage.values()):
            return spent
        usage["output_tokens"] = max(usage["output_tokens"], len(partial) // 4)
        out = TokenUsage(**usage, cost_usd=self._cost(usage, write_1h))
        out.add(spent)
        return out

    async def stream(
        self,
        *,
        system: list[dict],
        messages: list[dict],
        kind: CallKind | None = None,
        effort: Effort | None = None,
        on_text: Callable[[str], Awaitable[None] | None] | None = None,
        on_retry: Callable[[Retrying], None] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> StreamResult:
        """The whole reply, with ``on_text`` called on each raw text piece (compile's progress)
        and ``on_retry`` on each retry wait, so the wait is said, not silent. ``json_schema``
        goes as ``output_config.format`` only where the model takes it (``result.structured``)."""
        from tutor.engine.backend import Finished, Retrying, TextPiece

        events_ = self.events(system=system, messages=messages, kind=kind, effort=effort, json_schema=json_schema)
        async with aclosing(events_) as events:
            async for ev in events:
                if isinstance(ev, TextPiece) and on_text is not None:
                    r = on_text(ev.text)  # its own errors are its own: they pass through as they are
                    if inspect.isawaitable(r):
                        await r
                elif isinstance(ev, Retrying) and on_retry is not None:
                    on_retry(ev)
                elif isinstance(ev, Finished):
                    return ev.result
        raise BackendError(ErrorCode.NO_STOP_REASON, "Claude's reply ended before it was finished.")

    async def complete(self, *, system: list[dict], messages: list[dict], kind: CallKind | None = None) -> StreamResult:
        """A whole reply without a text callback (memory summaries use this)."""
        from tutor.engine.models import CallKind

        return await self.stream(system=system, messages=messages, kind=kind or CallKind.SUMMARY)
