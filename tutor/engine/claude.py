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

import inspect
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tutor.engine.events import TokenUsage
from tutor.errors import TutorError

KEY_ENV = "ANTHROPIC_API_KEY"
MODEL_ENV = "TUTOR_MODEL"
FALLBACK_MODEL = "claude-sonnet-4-6"  # used only if the SDK's model list has no current Sonnet alias

# USD per million tokens: (input, output). Cache writes cost 1.25x input with the 5-minute
# TTL and 2x with the 1-hour TTL, cache reads 0.1x input. Matched by family name in the model id; unknown families are
# priced as Sonnet. Documented in docs/fake-api.md ("Cost").
PRICES: dict[str, tuple[float, float]] = {
    "haiku": (1.0, 5.0),
    "sonnet": (3.0, 15.0),
    "opus": (5.0, 25.0),
}
CACHE_WRITE_FACTOR = 1.25
CACHE_WRITE_1H_FACTOR = 2.0
CACHE_READ_FACTOR = 0.1

TIMEOUT_DEFAULT = 60.0


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


def price_per_mtok(model: str) -> tuple[float, float]:
    for family, price in PRICES.items():
        if family in model:
            return price
    return PRICES["sonnet"]


def cost_usd(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_write: int = 0,
    cache_read: int = 0,
    cache_write_1h: int = 0,
) -> float:
    """``cache_write`` is all cache writes (the usage's total); ``cache_write_1h`` the part of
    them written with the 1-hour TTL, so a caller that only knows the total prices it as 5m."""
    pin, pout = price_per_mtok(model)
    cache_write_1h = min(cache_write_1h, cache_write)
    return (
        input_tokens * pin
        + (cache_write - cache_write_1h) * pin * CACHE_WRITE_FACTOR
        + cache_write_1h * pin * CACHE_WRITE_1H_FACTOR
        + cache_read * pin * CACHE_READ_FACTOR
        + output_tokens * pout
    ) / 1_000_000


# ---------------------------------------------------------------------------
# Results and errors


class StreamResult(TokenUsage):
    text: str
    stop_reason: str | None
    complete: bool  # False when the model hit max_tokens


class BackendError(TutorError):
    """A Claude call failed. ``code`` is one of events.ErrorEvent.code; the partial reply is kept."""

    def __init__(
        self,
        code: str,
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


KEY_HINT = f"Set your key with: export {KEY_ENV}=sk-ant-...  (or run with --offline for the guided mode)."


def missing_key_error() -> BackendError:
    return BackendError("auth", f"No Anthropic API key: {KEY_ENV} is not set.", hint=KEY_HINT, retryable=False)


def _scrub(text: str, key: str | None) -> str:
    """Server text is untrusted: drop the key if echoed, control characters, and keep it short."""
    if key:
        text = text.replace(key, "***")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f\x1b]", "", text)
    return text[:200]


def map_exception(exc: BaseException, *, partial: str, timeout: float, key: str | None) -> BackendError:
    """Turn an SDK / transport exception into a BackendError with a clear next step."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APITimeoutError) or isinstance(exc, httpx2.TimeoutException):
        return BackendError(
            "timeout",
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
                "stream_error",
                f"Claude's reply was cut off by an error in the stream ({kind}).",
                hint="The partial reply was kept; retry to ask again.",
                partial_text=partial,
                status=status,
            )
        if status in (401, 403) or isinstance(exc, anthropic.AuthenticationError):
            return BackendError(
                "auth",
                f"Claude rejected the API key ({status}).",
                hint=KEY_HINT,
                retryable=False,
                partial_text=partial,
                status=status,
            )
        if status == 429:
            return BackendError(
                "rate_limit",
                "Claude's rate limit was reached (429), even after retrying.",
                hint="Wait a minute, then retry; your message was kept.",
                partial_text=partial,
                status=status,
            )
        if status == 529 or etype == "overloaded_error":
            return BackendError(
                "overloaded",
                "Claude is overloaded right now (529), even after retrying.",
                hint="Try again in a moment; your message was kept.",
                partial_text=partial,
                status=status,
            )
        if status in (400, 413) and ("too long" in api_msg.lower() or status == 413 or "too large" in api_msg.lower()):
            return BackendError(
                "context",
                "The conversation is too long for the model's context window.",
                hint="Start a new session with --new, or use a model with a larger context (--model).",
                retryable=False,
                partial_text=partial,
                status=status,
            )
        return BackendError(
            "other",
            f"Claude returned an error ({status}{': ' + api_msg if api_msg else ''}).",
            hint="Retry; if it keeps failing, check --model and your account.",
            retryable=status >= 500 or status == 408,
            partial_text=partial,
            status=status,
        )
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
        return BackendError(
            "connection",
            "The connection to Claude was lost" + (" in the middle of the reply." if partial else "."),
            hint="Check your network, then retry (the reply so far was kept).",
            partial_text=partial,
        )
    return BackendError(
        "other",
        f"Claude call failed: {type(exc).__name__}.",
        hint="Retry; if it keeps failing, run with --offline.",
        partial_text=partial,
    )


# ---------------------------------------------------------------------------
# The back end


class _CallbackError(Exception):
    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class ClaudeBackend:
    """Streams Messages API replies through ``AsyncAnthropic`` with SDK-level retries."""

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = TIMEOUT_DEFAULT,
    ):
        self.model = resolve_model(model)
        self.name = f"claude:{self.model}"
        key = api_key if api_key is not None else os.environ.get(KEY_ENV, "")
        if not key or not key.strip():
            raise missing_key_error()
        self._key = key.strip()
        self.timeout = timeout
        self.max_retries = max_retries
        import anthropic  # lazy: only a Claude session pays for the import

        url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        try:
            self._client = anthropic.AsyncAnthropic(api_key=self._key, base_url=url, max_retries=max_retries, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - httpx2.InvalidURL and friends: a bad address, not a bug
            where = "the base URL" if base_url else "ANTHROPIC_BASE_URL"
            raise BackendError(
                "config",
                f"{where} is not a valid server address: {_scrub(str(url), self._key)!r} ({_scrub(str(exc), self._key)}).",
                hint="Fix it (for example http://127.0.0.1:8080), or unset ANTHROPIC_BASE_URL to use Anthropic's API.",
                retryable=False,
            ) from None

    def __repr__(self) -> str:  # never show the key
        return f"ClaudeBackend(model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.close()

    async def context_tokens(self) -> int | None:
        """The model's input window from the Models API, or None when it cannot be had
        (an old SDK, a proxy without /v1/models, a network error): callers then assume a
        default. A 1M-token model must not be refused notes a 200k one could not read."""
        try:
            info = await self._client.models.retrieve(self.model, timeout=min(self.timeout, 10.0))
        except Exception:  # noqa: BLE001 - a missing number is not worth failing over
            return None
        value = getattr(info, "max_input_tokens", None)
        return value if isinstance(value, int) and value > 0 else None

    async def stream(
        self,
        *,
        system: list[dict],
        messages: list[dict],
        max_tokens: int = 1024,
        on_text: Callable[[str], Awaitable[None] | None] | None = None,
    ) -> StreamResult:
        """One streamed reply. ``on_text`` gets each raw text delta as it arrives.

        Raises BackendError (with ``partial_text``) on any failure, including a stream
        that ends without a stop_reason. Cancelling the awaiting task closes the HTTP
        stream; the caller already has the partial text through ``on_text``.
        """
        parts: list[str] = []
        usage = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        stop_reason: str | None = None
        write_1h = 0  # the usage's TTL breakdown; absent (older API or SDK) means all writes are 5m
        try:
            # Typed as Any: the SDK's event union makes every attribute access a union error,
            # and the code below already dispatches on ``event.type``.
            stream: Any = await self._client.messages.create(
                model=self.model,
                system=system,  # type: ignore[arg-type]
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                stream=True,
            )
            async with stream:
                async for event in stream:
                    etype = event.type
                    if etype == "message_start":
                        u = event.message.usage
                        for k in usage:
                            usage[k] = int(getattr(u, k, 0) or 0)
                        split = getattr(u, "cache_creation", None)
                        write_1h = int(getattr(split, "ephemeral_1h_input_tokens", 0) or 0)
                    elif etype == "content_block_delta":
                        if getattr(event.delta, "type", "") == "text_delta":
                            piece = event.delta.text
                            parts.append(piece)
                            if on_text is not None:
                                try:
                                    r = on_text(piece)
                                    if inspect.isawaitable(r):
                                        await r
                                except Exception as exc:  # the consumer's bug, not a Claude failure
                                    raise _CallbackError(exc) from exc
                    elif etype == "message_delta":
                        stop_reason = event.delta.stop_reason
                        u = event.usage
                        for k in usage:
                            v = getattr(u, k, None)
                            if v is not None:
                                usage[k] = int(v)
        except BackendError:
            raise
        except _CallbackError as wrapped:
            raise wrapped.error from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a clear BackendError
            raise map_exception(exc, partial="".join(parts), timeout=self.timeout, key=self._key) from None
        text = "".join(parts)
        if stop_reason is None:
            raise BackendError(
                "no_stop_reason",
                "Claude's reply ended before it was finished (no stop reason).",
                hint="The partial reply was kept; retry to get a complete one.",
                partial_text=text,
            )
        return StreamResult(
            text=text,
            stop_reason=stop_reason,
            complete=stop_reason != "max_tokens",
            cost_usd=cost_usd(
                self.model,
                usage["input_tokens"],
                usage["output_tokens"],
                usage["cache_creation_input_tokens"],
                usage["cache_read_input_tokens"],
                write_1h,
            ),
            **usage,
        )

    async def complete(self, *, system: list[dict], messages: list[dict], max_tokens: int = 1024) -> StreamResult:
        """A whole reply without a text callback (memory summaries use this)."""
        return await self.stream(system=system, messages=messages, max_tokens=max_tokens, on_text=None)
