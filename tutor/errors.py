"""Our own error types.

Every error a user can cause (bad file, bad id, no key) is a ``TutorError``. The CLI
prints ``str(error)`` -- one or two lines, ``file:line: message`` where a place is
known -- and exits 1. Anything that is not a ``TutorError`` is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a model call failed; the UI picks its wording and its offer (retry, go offline) by it."""

    AUTH = "auth"  # the key is missing or refused
    CONFIG = "config"  # the server or model setting cannot work (no model listed, bad URL)
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    STREAM_ERROR = "stream_error"  # the server sent an error event mid-reply
    CONNECTION = "connection"
    NO_STOP_REASON = "no_stop_reason"  # the stream ended without saying the reply was done
    TIMEOUT = "timeout"  # no first word within the limit
    DEADLINE = "deadline"  # the whole reply took longer than its limit
    TOO_LONG = "too_long"  # the reply passed the size cap
    CONTEXT = "context"  # the request does not fit the model's window
    OTHER = "other"


@dataclass(frozen=True)
class Problem:
    """One finding about a file: an error or a warning, with its place."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class TutorError(Exception):
    """An error caused by input or environment, shown to the user without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ExplainerError(TutorError):
    """An explainer file could not be loaded. Holds every problem found, each with its line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(TutorError):
    """The session database cannot be used (newer schema, unknown id, ...)."""
