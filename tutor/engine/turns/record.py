"""What both kinds of turn write to the store for one session: the reader's messages, the
tutor's replies, concept states and usage. One object, so the offline guide and the Claude
turn persist the same way and a strategy can be swapped mid-session (``go_offline``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tutor.engine.events import StateChanged, TokenUsage
from tutor.engine.reader_model import STATES, ReaderModel, State
from tutor.explainer import Explainer

if TYPE_CHECKING:
    from tutor.store import MessageRow, SessionRow, Store


@dataclass
class SessionRecord:
    explainer: Explainer
    store: Store
    session_id: str
    model: ReaderModel
    resumed: bool = False
    explainer_changed: bool = False
    created_mode: str = "offline"
    has_messages: bool = False
    messages: list[MessageRow] = field(default_factory=list)  # as stored when the session opened

    def load_states(self) -> None:
        """The store is the authority on states: load them into the reader model."""
        for cid, row in self.store.concept_states(self.session_id).items():
            if cid in self.model and row.state in STATES:
                self.model.set(cid, row.state, row.evidence, row.message_seq)

    def add_reader(self, text: str, raw: str | None, pending_id: int | None = None) -> int:
        """Commit the reader's message (before any answer is made); returns its seq."""
        mid = self.store.add_message(self.session_id, "reader", text, raw=raw, pending_id=pending_id)
        self.has_messages = True
        row = self.store.get_message(mid)
        return row.seq if row is not None else 0

    def set_state(self, cid: str, state: State | str, evidence: str, seq: int | None) -> StateChanged | None:
        """Set and store one concept's state; the event when it changed, else None."""
        if not self.model.set(cid, state, evidence, seq):
            return None
        self.store.set_concept_state(self.session_id, cid, state, evidence, message_seq=seq)
        return StateChanged(concept_id=cid, state=State(state), evidence=evidence)

    def bill(self, u: TokenUsage) -> SessionRow:
        """Add one call's usage to the session's totals; returns the session row."""
        return self.store.add_usage(self.session_id, u)
