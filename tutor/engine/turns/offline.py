"""The offline turn strategy: the deterministic guide (engine/offline.py), persisted.

Resuming is replaying: the guide has no I/O and every step is deterministic, so feeding it
the reader's stored messages puts it exactly where it was, with no cursor table.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from tutor.engine.commands import Command, ReaderCommand
from tutor.engine.events import ErrorEvent, Event, StateChanged, TextDelta, TurnFinished
from tutor.engine.offline import OfflineGuide, Phase, Step
from tutor.engine.reader_model import ReaderModel
from tutor.engine.search import SectionIndex
from tutor.errors import ErrorCode

if TYPE_CHECKING:
    from tutor.engine.turns.record import SessionRecord
    from tutor.store import MessageRow


class OfflineTurns:
    mode = "offline"
    can_retry = False

    def __init__(self, record: SessionRecord):
        self.record = record
        self.index: SectionIndex | None = SectionIndex(record.explainer)
        self.guide = OfflineGuide(record.explainer, record.model, self.index)
        self._replayed = False

    # -- resuming --------------------------------------------------------------------------
    def restore(self, msgs: list[MessageRow]) -> None:
        r = self.record
        if msgs and r.created_mode == "offline" and not r.explainer_changed:
            # Replaying over a changed file could drift from the stored states; then the
            # walk restarts from those states instead (start() says so).
            self._replay(msgs)
        r.load_states()  # the store is the authority (the replay derives the same states)

    def _replay(self, msgs: list[MessageRow]) -> None:
        try:
            self.guide.opening()
            for m in msgs:
                if m.role == "reader":
                    self._step(m.text, m.raw, seq=m.seq)
            self._replayed = True
        except (KeyError, ValueError, IndexError):
            # A changed explainer may not replay cleanly: restart from the stored states.
            self.record.model = ReaderModel(self.record.explainer)
            self.guide = OfflineGuide(self.record.explainer, self.record.model, self.index)
            self._replayed = False

    def _step(self, text: str, raw: str | None, seq: int | None) -> Step:
        cmd = ReaderCommand.parse(raw)
        model = self.record.model
        if cmd is not None:
            if cmd.command == Command.SKIP:
                return self.guide.skip(seq=seq)
            if cmd.command == Command.KNOW and cmd.concept_id in model:
                return self.guide.mark_known(cmd.concept_id, evidence=f"reader: {text}", seq=seq)
            if cmd.command == Command.EXPLAIN and cmd.concept_id in model:
                return self.guide.explain(cmd.concept_id, seq=seq)
            if cmd.command == Command.MORE:
                return self.guide.step("", seq=seq)
        return self.guide.step(text, seq=seq)

    # -- reading ---------------------------------------------------------------------------
    @property
    def current_concept(self) -> str | None:
        return self.guide.concept

    def input_hint(self) -> str:
        return self.guide.input_hint()

    def was_presented(self, concept_id: str) -> bool:
        return self.guide.was_presented(concept_id)

    # -- turns -----------------------------------------------------------------------------
    async def start(self, *, lead: str = "") -> AsyncGenerator[Event, None]:
        """The opening; on resume the guide's "welcome back" (not stored). ``lead`` comes
        before the opening (a switch from Claude says so)."""
        r = self.record
        if r.has_messages and self._replayed and not lead:
            step = self.guide.resume_note()
            if step.text:
                yield TextDelta(text=step.text)
            yield TurnFinished(message_id=None, finished=self.guide.phase == Phase.DONE)
            return
        step = self.guide.opening()
        if lead:
            step = step.model_copy(update={"text": lead + " " + step.text})
        elif r.has_messages:
            note = "Welcome back."
            if r.explainer_changed:
                note += f" {r.explainer.path} has changed since your last visit, so we pick up from what you know."
            step = step.model_copy(update={"text": note + " " + step.text})
        for ev in self._emit(step, None):
            yield ev

    async def reply(self, text: str, *, pending_id: int | None = None) -> AsyncGenerator[Event, None]:
        raw = None if text else Command.MORE.value
        for ev in self._turn(text or "(more)", raw, pending_id):
            yield ev

    async def command(self, text: str, cmd: ReaderCommand) -> AsyncGenerator[Event, None]:
        """A reader command (skip, know, explain), stored as ``text`` with the command as raw."""
        if cmd.command == Command.EXPLAIN:
            self.record.model.skipped.discard(cmd.concept_id)
        for ev in self._turn(text, cmd.raw, None):
            yield ev

    async def retry(self) -> AsyncGenerator[Event, None]:
        yield ErrorEvent(code=ErrorCode.OTHER, message="There is nothing to retry.", retryable=False)
        yield TurnFinished(complete=False)

    def _turn(self, text: str, raw: str | None, pending_id: int | None) -> list[Event]:
        seq = self.record.add_reader(text, raw, pending_id)
        return self._emit(self._step(text, raw, seq), seq)

    def _emit(self, step: Step, seq: int | None) -> list[Event]:
        """Persist one guide step (tutor message, then state changes); its events."""
        r = self.record
        mid = r.store.add_message(r.session_id, "tutor", step.text, raw=None, complete=True)
        r.has_messages = True
        self._replayed = True
        for ch in step.changes:  # the guide already updated the model; persist the change
            r.store.set_concept_state(r.session_id, ch.concept_id, ch.state, ch.evidence, message_seq=seq)
        if step.finished:
            r.store.set_status(r.session_id, "finished")
        events: list[Event] = [TextDelta(text=step.text)]
        events += [StateChanged(concept_id=ch.concept_id, state=ch.state, evidence=ch.evidence) for ch in step.changes]
        events.append(TurnFinished(message_id=mid, complete=True, finished=step.finished))
        return events

    async def aclose(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None
