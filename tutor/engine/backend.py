"""What a model back end streams to the engine, and the protocol it implements.

A turn is an async iterator of these events, ending with ``Finished`` or raising the back
end's error; the engine never sees SSE events or SDK types. Cancelling the iteration
(``aclose``) closes the connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tutor.engine.claude import StreamResult
    from tutor.engine.models import CallKind, Effort


@dataclass(frozen=True)
class TextPiece:
    """Visible reply text, raw (tags still in it: the engine's TagFilter removes them)."""

    text: str


@dataclass(frozen=True)
class ThinkingStarted:
    """The model began a thinking block. Its content is never passed on."""


@dataclass(frozen=True)
class Retrying:
    """A try failed before the first word; the back end waits ``seconds`` and tries again
    (try ``attempt`` of ``of`` retries). Closing the iterator during the wait stops it."""

    seconds: float
    attempt: int
    of: int
    reason: str


@dataclass(frozen=True)
class Finished:
    result: StreamResult


BackendEvent = TextPiece | ThinkingStarted | Retrying | Finished


class Backend(Protocol):
    name: str
    model: str

    def events(self, *, system: list[dict], messages: list[dict], kind: CallKind, effort: Effort | None = None) -> AsyncGenerator[BackendEvent, None]: ...

    async def complete(self, *, system: list[dict], messages: list[dict], kind: CallKind) -> StreamResult: ...

    async def aclose(self) -> None: ...
