"""The "pasted file" condition: what a reader gets by pasting the explainer into a chatbot.

No tutor rules, no reader model, no memory: the explainer is the first user message and the
dialogue is the plain history. It speaks the same small interface the eval's runner uses on
a TutorSession (``start``, ``reply``, ``states``, ``current_concept``), so the same simulated
readers and metrics measure both, and tutor's teaching is compared with the baseline it must
beat. A chatbot keeps no record of what the reader knows, so every concept stays "unknown".
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from tutor.engine.backend import Finished, TextPiece
from tutor.engine.events import ErrorEvent, Event, TextDelta, TurnFinished, Usage
from tutor.engine.models import CallKind
from tutor.explainer import Explainer

ASK = "Here is a document I want to learn from. Please teach it to me."


class PastedChat:
    def __init__(self, explainer: Explainer, backend: Any):
        self.explainer = explainer
        self.backend = backend
        self.messages: list[dict] = []
        self.cost_usd = 0.0
        self.refused_states: list[Any] = []  # no protocol, nothing to refuse
        self.current_concept: str | None = None  # the runner uses the reader's own view instead

    def states(self) -> dict[str, str]:
        return {c.id: "unknown" for c in self.explainer.concepts}

    async def start(self) -> AsyncGenerator[Event, None]:
        async for ev in self._turn(f"{self.explainer.source}\n\n{ASK}"):
            yield ev

    async def reply(self, text: str) -> AsyncGenerator[Event, None]:
        async for ev in self._turn(text.strip() or "Go on."):
            yield ev

    async def _turn(self, text: str) -> AsyncGenerator[Event, None]:
        from tutor.engine.claude import BackendError

        self.messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
        parts: list[str] = []
        try:
            async for item in self.backend.events(system=[], messages=self.messages, kind=CallKind.TUTOR_TURN):
                if isinstance(item, TextPiece):
                    parts.append(item.text)
                    yield TextDelta(text=item.text)
                elif isinstance(item, Finished):
                    self.cost_usd += item.result.cost_usd
                    yield Usage(**item.result.usage(), session_cost_usd=self.cost_usd)
        except BackendError as exc:
            yield ErrorEvent(code=exc.code, message=str(exc), retryable=exc.retryable)
        self.messages.append({"role": "assistant", "content": [{"type": "text", "text": "".join(parts) or "…"}]})
        yield TurnFinished()

    async def aclose(self) -> None:
        await self.backend.aclose()
