"""One table of what each model family accepts and costs, and the settings per kind of call.

The engine asks ``profile_for(model)`` for prices and ``call_params(model, kind)`` for what a
request may send, so a model that thinks adaptively gets an effort and enough ``max_tokens``
that thinking cannot starve the visible reply, and a model that rejects a parameter never
gets it. Where every figure comes from, and when it was read: docs/models.md.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any


class Thinking(Enum):
    ADAPTIVE = "adaptive"  # thinks by default; depth set by output_config.effort
    BUDGET = "budget"  # thinks only when sent thinking={type: enabled, budget_tokens}: tutor never does
    NONE = "none"  # a local or other server: send nothing about thinking
    UNKNOWN = "unknown"  # an id the table does not know: may think, so leave room, send nothing


class Effort(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @classmethod
    def parse(cls, value: str | None) -> Effort | None:
        """``--effort`` / ``TUTOR_EFFORT``: None when unset; ValueError names the choices."""
        if value is None or not value.strip():
            return None
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(f"effort must be one of {', '.join(e.value for e in cls)}, not {value.strip()!r}") from None


class CallKind(Enum):
    TUTOR_TURN = "turn"
    SUMMARY = "summary"
    COMPILE_OUTLINE = "outline"
    COMPILE_WRITE = "write"


@dataclass(frozen=True)
class ModelProfile:
    family: str  # matched as a prefix of the model id; the longest match wins
    context_window: int
    max_output: int
    thinking: Thinking
    accepts_effort: bool
    min_cache_tokens: int
    # USD per million tokens; thinking is billed as output
    price_input: float
    price_output: float
    price_cache_write_5m: float
    price_cache_write_1h: float
    price_cache_read: float
    # Accepts output_config.format (a JSON schema the reply must follow). Off unless the docs
    # say so; the Models API's capabilities, where reported, replace it (with_reported).
    structured_output: bool = False


def _p(
    family: str, ctx: int, out: int, thinking: Thinking, effort: bool, cache_min: int, prices: tuple[float, ...], *, so: bool = False
) -> ModelProfile:
    pin, pout, w5, w1, read = prices
    return ModelProfile(family, ctx, out, thinking, effort, cache_min, pin, pout, w5, w1, read, structured_output=so)


def _std(pin: float, pout: float) -> tuple[float, ...]:
    """Anthropic's usual cache multipliers: 1.25x / 2x input for 5m / 1h writes, 0.1x for reads."""
    return (pin, pout, pin * 1.25, pin * 2.0, pin * 0.1)


A, B = Thinking.ADAPTIVE, Thinking.BUDGET
PROFILES: tuple[ModelProfile, ...] = (
    _p("claude-sonnet-5-5", 1_000_000, 128_000, A, True, 512, (2.0, 10.0, 2.5, 4.0, 0.2)),
    _p("claude-sonnet-5", 1_000_000, 128_000, A, True, 512, (2.0, 10.0, 2.5, 4.0, 0.2), so=True),
    _p("claude-opus-5-5", 1_000_000, 128_000, A, True, 512, _std(4.0, 20.0)),
    _p("claude-opus-5", 1_000_000, 128_000, A, True, 512, _std(5.0, 25.0)),
    _p("claude-haiku-5-5", 1_000_000, 128_000, A, True, 512, _std(0.10, 0.50)),  # prompts up to 100k tokens
    _p("claude-fable-5-2", 1_000_000, 128_000, A, True, 512, _std(8.0, 40.0)),
    _p("claude-fable-5", 1_000_000, 128_000, A, True, 512, _std(10.0, 50.0)),
    _p("claude-mythos-5", 1_000_000, 128_000, A, True, 512, _std(10.0, 50.0)),
    _p("claude-opus-4-8", 1_000_000, 128_000, A, True, 1024, _std(5.0, 25.0), so=True),
    _p("claude-opus-4-7", 1_000_000, 128_000, A, True, 1024, _std(5.0, 25.0), so=True),
    _p("claude-opus-4-6", 1_000_000, 128_000, A, True, 1024, _std(5.0, 25.0), so=True),
    _p("claude-sonnet-4-6", 1_000_000, 64_000, A, True, 1024, _std(3.0, 15.0), so=True),
    _p("claude-opus-4-5", 200_000, 64_000, B, False, 1024, _std(5.0, 25.0), so=True),
    _p("claude-sonnet-4-5", 200_000, 64_000, B, False, 1024, _std(3.0, 15.0), so=True),
    _p("claude-sonnet-4", 200_000, 64_000, B, False, 1024, _std(3.0, 15.0)),
    _p("claude-opus-4", 200_000, 32_000, B, False, 1024, _std(15.0, 75.0)),
    _p("claude-haiku-4-5", 200_000, 64_000, B, False, 2048, _std(1.0, 5.0), so=True),
)

# An id the table does not know (a newer model, a proxy's alias): leave thinking room as if
# it thinks at the API's default effort, send no optional parameter, price as the dearest
# current Sonnet so a cost is never understated.
UNKNOWN = _p("", 200_000, 64_000, Thinking.UNKNOWN, False, 1024, _std(3.0, 15.0))
# A local server (Ollama, llama.cpp, vLLM, LiteLLM): nothing about thinking or effort, cost 0.
LOCAL = ModelProfile("", 32_000, 8_192, Thinking.NONE, False, 1 << 30, 0.0, 0.0, 0.0, 0.0, 0.0)

_warned: set[str] = set()


def known_profile(model: str) -> ModelProfile | None:
    """The longest matching family, or None for an id the table does not know."""
    best: ModelProfile | None = None
    for p in PROFILES:
        if model.startswith(p.family) and (best is None or len(p.family) > len(best.family)):
            best = p
    return best


def unknown_model_message(model: str) -> str:
    return f"unknown model {model!r}: using conservative settings and Sonnet prices"


def profile_for(model: str, *, local: bool = False) -> ModelProfile:
    """The row for ``model``; an unknown model warns once and gets UNKNOWN."""
    if local:
        return LOCAL
    best = known_profile(model)
    if best is None:
        if model not in _warned:
            _warned.add(model)
            warnings.warn(unknown_model_message(model), stacklevel=2)
        return UNKNOWN
    return best


@dataclass(frozen=True)
class Reported:
    """What the Models API (``GET /v1/models/{id}``) said about a model; None where it did not say."""

    context_window: int | None = None
    max_output: int | None = None
    structured_output: bool | None = None  # capabilities.structured_outputs.supported


def with_reported(profile: ModelProfile, reported: Reported | None) -> ModelProfile:
    """The profile with what the Models API reported for this model, where it said."""
    if reported is None:
        return profile
    changes: dict[str, Any] = {}
    if reported.context_window:
        changes["context_window"] = reported.context_window
    if reported.max_output:
        changes["max_output"] = reported.max_output
    if reported.structured_output is not None and profile.thinking is not Thinking.NONE:  # a local server: never
        changes["structured_output"] = reported.structured_output
    return replace(profile, **changes) if changes else profile


# Visible-reply room per kind of call. On a thinking model max_tokens is this plus the thinking
# room for the effort: thinking counts against max_tokens. max_tokens is a cap, not a charge,
# so generous room costs nothing unless used. Figures and reasons: docs/models.md.
REPLY_TOKENS: dict[CallKind, int] = {
    CallKind.TUTOR_TURN: 1024,
    CallKind.SUMMARY: 600,
    CallKind.COMPILE_OUTLINE: 4_000,
    CallKind.COMPILE_WRITE: 16_000,
}
DEFAULT_EFFORT: dict[CallKind, Effort] = {
    CallKind.TUTOR_TURN: Effort.LOW,  # a chat turn: the first word soon, bench_tokens.py
    CallKind.SUMMARY: Effort.LOW,
    CallKind.COMPILE_OUTLINE: Effort.MEDIUM,
    CallKind.COMPILE_WRITE: Effort.MEDIUM,
}
THINKING_ROOM: dict[Effort, int] = {Effort.LOW: 4_000, Effort.MEDIUM: 8_000, Effort.HIGH: 16_000}
EFFORT_ENV = "TUTOR_EFFORT"


def effort_for(kind: CallKind, override: Effort | None = None) -> Effort:
    """--effort (passed in), then $TUTOR_EFFORT, then the default for this kind of call.
    The reader's setting applies to tutor turns only: summaries and compile keep theirs."""
    if kind is CallKind.TUTOR_TURN:
        if override is not None:
            return override
        try:
            env = Effort.parse(os.environ.get(EFFORT_ENV))
        except ValueError:
            env = None  # the CLI reports a bad value before any call; here it just does not apply
        if env is not None:
            return env
    return DEFAULT_EFFORT[kind]


def call_params(
    profile: ModelProfile,
    kind: CallKind,
    effort: Effort | None = None,
    *,
    extra_room: int = 0,
    json_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``max_tokens`` and, only where the model accepts them, ``thinking`` and ``output_config``
    (``effort``; ``format`` for ``json_schema``, so a caller asks and the table decides)."""
    reply = REPLY_TOKENS[kind] + extra_room
    params: dict[str, Any]
    if profile.thinking in (Thinking.NONE, Thinking.BUDGET):
        params = {"max_tokens": min(reply, profile.max_output)}
    elif profile.thinking is Thinking.UNKNOWN:  # may think at the API default (high): leave that room
        params = {"max_tokens": min(reply + THINKING_ROOM[Effort.HIGH], profile.max_output)}
    else:
        eff = effort or DEFAULT_EFFORT[kind]
        params = {
            "max_tokens": min(reply + THINKING_ROOM[eff], profile.max_output),
            # Thinking text is never shown or stored, so ask for none: the reply starts sooner.
            "thinking": {"type": "adaptive", "display": "omitted"},
        }
        if profile.accepts_effort:
            params["output_config"] = {"effort": eff.value}
    if json_schema is not None and profile.structured_output:
        params["output_config"] = {**params.get("output_config", {}), "format": {"type": "json_schema", "schema": json_schema}}
    return params


def cost_usd(
    profile: ModelProfile | str,
    input_tokens: int,
    output_tokens: int,
    cache_write: int = 0,
    cache_read: int = 0,
    cache_write_1h: int = 0,
) -> float:
    """``cache_write`` is all cache writes; ``cache_write_1h`` the part written with the 1h TTL.
    ``output_tokens`` includes thinking: the API counts and bills it as output."""
    p = profile_for(profile) if isinstance(profile, str) else profile
    cache_write_1h = min(cache_write_1h, cache_write)
    return (
        input_tokens * p.price_input
        + (cache_write - cache_write_1h) * p.price_cache_write_5m
        + cache_write_1h * p.price_cache_write_1h
        + cache_read * p.price_cache_read
        + output_tokens * p.price_output
    ) / 1_000_000
