"""Which <state> tags a Claude reply may set (docs/security.md, "State tags").

The model's tags are only as trustworthy as what it read, and it read the explainer: a
hostile one can make an obedient model tag every concept "understood". So a tag counts only
for a concept in play: the one in progress, the one due after it, the ones the reader has
already reached (any state but unknown) and the ones the reader's own message names. The
set is fixed before the call, for the whole reply, so one reply cannot walk the outline by
chaining tags. "known"/"understood" also need a reader message to rest on: a turn the reader
did not write (the opening, a continue) cannot mark anything done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tutor.engine.reader_model import DONE, STATES, ReaderModel, State, find_concepts
from tutor.explainer import Explainer


class Refusal(StrEnum):
    UNKNOWN_CONCEPT = "unknown concept"
    UNKNOWN_VALUE = "unknown value"
    NOT_IN_PLAY = "not in play"
    NO_READER_MESSAGE = "no reader message"


@dataclass(frozen=True)
class RefusedState:
    """A <state> tag the session ignored, and why (counted for `tutor eval`)."""

    concept_id: str
    value: str
    reason: Refusal


@dataclass
class StatePolicy:
    explainer: Explainer
    in_play: frozenset[str] = frozenset()
    reader_spoke: bool = False
    refused: list[RefusedState] = field(default_factory=list)

    def begin(self, model: ReaderModel, current: str | None, reader_text: str) -> None:
        """Fix, before the model is called, which concepts this turn's tags may name."""
        allowed = {cid for cid, state in model.states().items() if state != State.UNKNOWN}
        if current is not None:
            allowed.add(current)
            nxt = model.next_concept(exclude={current})
            if nxt is not None:
                allowed.add(nxt)
        if reader_text.strip():
            allowed.update(find_concepts(self.explainer, reader_text[:2000]))
        self.in_play = frozenset(allowed)
        self.reader_spoke = bool(reader_text.strip())

    def judge(self, model: ReaderModel, cid: str, value: str) -> bool:
        """True when the tag may set the state; a refused tag is recorded."""
        reason = self._refusal(model, cid, value)
        if reason is None:
            return True
        self.refused.append(RefusedState(concept_id=cid[:200], value=value[:50], reason=reason))
        return False

    def _refusal(self, model: ReaderModel, cid: str, value: str) -> Refusal | None:
        if cid not in model:
            return Refusal.UNKNOWN_CONCEPT
        if value not in STATES:
            return Refusal.UNKNOWN_VALUE
        if cid not in self.in_play:
            return Refusal.NOT_IN_PLAY
        if value in DONE and not self.reader_spoke:
            return Refusal.NO_READER_MESSAGE
        return None
