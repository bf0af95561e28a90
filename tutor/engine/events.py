"""Typed events the engine emits. The app, ``--plain`` and tests all consume these.

CONTRACT: ``TutorSession.start()`` / ``.reply(text)`` / ``.retry()`` / commands yield
these, in this order per turn: any number of TextDelta / StateChanged /
FeedbackCaptured / Thinking / Notice / Retrying, then Usage (Claude only), then exactly one
TurnFinished -- or (Usage, when the failed call was billed) an ErrorEvent followed by
TurnFinished(complete=False).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tutor.engine.reader_model import State
from tutor.errors import ErrorCode


class TextDelta(BaseModel):
    kind: Literal["text"] = "text"
    text: str  # already filtered: never contains <feedback> or protocol tags


class StateChanged(BaseModel):
    kind: Literal["state"] = "state"
    concept_id: str
    state: State
    evidence: str = ""


class FeedbackCaptured(BaseModel):
    kind: Literal["feedback"] = "feedback"
    concept_id: str | None = None
    text: str
    source: Literal["model", "reader", "rules"] = "model"  # rules: the tutor on its own instructions


class Thinking(BaseModel):
    """The model is thinking before it answers (``done``: it has started the reply). The
    thinking itself is never shown or stored; the reader sees that it happens, and how long."""

    kind: Literal["thinking"] = "thinking"
    done: bool = False
    seconds: float = 0.0


class Notice(BaseModel):
    """Something the reader should know that is not an error (an unknown model, a server
    whose context window is too small). Shown once, as a lasting note."""

    kind: Literal["notice"] = "notice"
    text: str


class Retrying(BaseModel):
    """A try failed before the first word (429, 5xx, a lost connection): the engine waits
    ``seconds`` and tries again, retry ``attempt`` of ``of``. Shown as "retrying in N s";
    stopping the turn (Esc, Ctrl-C) during the wait stops the retry (docs/reliability.md)."""

    kind: Literal["retrying"] = "retrying"
    seconds: float
    attempt: int = 1
    of: int = 1
    reason: str = ""  # what failed, in the reader's words


class TokenUsage(BaseModel):
    """One model call's usage and cost: what the back end reports and the Usage event carries."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    def usage(self) -> dict:
        """Just these fields, to pass on to another TokenUsage or to the store."""
        return {name: getattr(self, name) for name in TokenUsage.model_fields}

    def add(self, other: TokenUsage) -> None:
        """Count another call's usage into this one (a running total over several calls)."""
        for name in TokenUsage.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Usage(TokenUsage):
    kind: Literal["usage"] = "usage"
    # session totals after this turn, for the header
    session_tokens: int = 0
    session_cost_usd: float = 0.0


class TurnFinished(BaseModel):
    kind: Literal["done"] = "done"
    message_id: int | None = None  # store row id of the tutor message
    complete: bool = True
    stop_reason: str | None = None
    finished: bool = False  # True when the outline is done (offline: nothing left to teach)


class ErrorEvent(BaseModel):
    kind: Literal["error"] = "error"
    code: ErrorCode
    message: str  # one or two lines that say what to do next
    retryable: bool = True


Event = Annotated[
    TextDelta | StateChanged | FeedbackCaptured | Thinking | Notice | Retrying | Usage | TurnFinished | ErrorEvent,
    Field(discriminator="kind"),
]
