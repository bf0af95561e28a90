"""How a session's turns are made: offline (the deterministic guide) or by a model.

``TutorSession`` (engine/session.py) is a façade over one of these strategies; both persist
through one ``SessionRecord``, so a session can switch from Claude to offline mid-way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tutor.engine.commands import ReaderCommand
    from tutor.engine.events import Event
    from tutor.store import MessageRow


class Turns(Protocol):
    """What the session asks of a strategy. Every turn yields events in the order of
    ``tutor.engine.events`` and persists each event's effect as it happens."""

    mode: str
    can_retry: bool

    def restore(self, msgs: list[MessageRow]) -> None: ...

    @property
    def current_concept(self) -> str | None: ...

    def input_hint(self) -> str: ...

    def was_presented(self, concept_id: str) -> bool: ...

    def start(self, *, lead: str = "") -> AsyncGenerator[Event, None]: ...

    def reply(self, text: str, *, pending_id: int | None = None) -> AsyncGenerator[Event, None]: ...

    def command(self, text: str, cmd: ReaderCommand) -> AsyncGenerator[Event, None]: ...

    def retry(self) -> AsyncGenerator[Event, None]: ...

    async def aclose(self) -> None: ...
