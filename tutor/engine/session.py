"""TutorSession: one reader's session over one explainer -- the API the app, ``--plain``
and the tests use.

A façade over a turn strategy (``tutor.engine.turns``): the offline guide or a model back
end. Every method returns the strategy's stream of typed events (``tutor.engine.events``);
each event's effect is persisted as it happens, so a crash, a kill or Esc never loses what
the reader already saw or wrote, and the reader's message is committed before any model
call. Resuming is rebuilding from the store (docs/engine.md).
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from tutor.engine.commands import Command, ReaderCommand
from tutor.engine.events import Event, TextDelta, TurnFinished
from tutor.engine.offline import OfflineGuide
from tutor.engine.reader_model import ReaderModel, State, ending, in_sentence
from tutor.engine.turns import Turns
from tutor.engine.turns.claude import ClaudeTurns, MemorySettings
from tutor.engine.turns.offline import OfflineTurns
from tutor.engine.turns.record import SessionRecord
from tutor.engine.turns.state_policy import RefusedState
from tutor.errors import TutorError
from tutor.explainer import Explainer

if TYPE_CHECKING:
    from tutor.engine.backend import Backend
    from tutor.store import PendingRow, Store


class TutorSession:
    """See the module docstring and docs/engine.md. Create with ``TutorSession.open``."""

    def __init__(
        self,
        explainer: Explainer,
        store: Store,
        *,
        backend: Backend | None = None,
        session_id: str,
        resumed: bool = False,
        explainer_changed: bool = False,
        created_mode: str | None = None,
    ):
        self.explainer = explainer
        self.store = store
        self.id = session_id
        self.resumed = resumed
        self.explainer_changed = explainer_changed
        msgs = store.messages(session_id)
        self.record = SessionRecord(
            explainer,
            store,
            session_id,
            ReaderModel(explainer),
            resumed=resumed,
            explainer_changed=explainer_changed,
            created_mode=created_mode or (backend.name if backend is not None else "offline"),
            has_messages=bool(msgs),
        )
        self.created_mode = self.record.created_mode
        self.memory = MemorySettings()
        self.turns: Turns = self._strategy(backend)
        self.turns.restore(msgs)

    def _strategy(self, backend: Backend | None) -> Turns:
        if backend is None:
            return OfflineTurns(self.record)
        return ClaudeTurns(self.record, backend, self.memory)

    # Memory settings, as tests and benchmarks set them on the session.
    @property
    def memory_budget_tokens(self) -> int:
        return self.memory.budget_tokens

    @memory_budget_tokens.setter
    def memory_budget_tokens(self, tokens: int) -> None:
        self.memory.budget_tokens = tokens

    @property
    def memory_keep_recent(self) -> int:
        return self.memory.keep_recent

    @memory_keep_recent.setter
    def memory_keep_recent(self, turns: int) -> None:
        self.memory.keep_recent = turns

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        explainer: Explainer,
        store: Store,
        *,
        backend: Backend | None = None,
        session_id: str | None = None,
        new: bool = False,
    ) -> TutorSession:
        """Resume ``session_id`` (a unique prefix is enough), else the latest active session
        for this file unless ``new``, else start a new one."""
        from tutor.store import normalise_path

        h = store.upsert_explainer(explainer)
        row = None
        if session_id:
            sid = store.resolve_session_id(session_id)
            row = store.get_session(sid)
            if row.mode == "imported":  # tutor.store.IMPORTED_MODE: a reader's transcript from a bundle
                raise TutorError(
                    f"session {sid[:8]} is a reader's transcript imported from a feedback bundle; it cannot be continued",
                    hint=f"Read it with `tutor export {sid[:8]}`, or start your own with `tutor open {shlex.quote(str(explainer.path))}`.",
                )
            if row.explainer_path != normalise_path(explainer.path) and row.explainer_hash != h:
                raise TutorError(
                    f"session {sid[:8]} is a session of {row.explainer_path}, not of {explainer.path}",
                    hint=f"Run: tutor open {shlex.quote(row.explainer_path)} --resume {sid[:8]}",
                )
        elif not new:
            row = store.latest_open_session(explainer.path)
        if row is not None:
            return cls(
                explainer,
                store,
                backend=backend,
                session_id=row.id,
                resumed=True,
                explainer_changed=row.explainer_hash != h,
                created_mode=row.mode,
            )
        mode = backend.name if backend is not None else "offline"
        sid = store.create_session(h, explainer.path, mode)
        return cls(explainer, store, backend=backend, session_id=sid)

    # -- reading ---------------------------------------------------------------------------
    @property
    def model(self) -> ReaderModel:
        return self.record.model

    @property
    def mode(self) -> str:
        return self.turns.mode

    @property
    def backend(self) -> Backend | None:
        return self.turns.backend if isinstance(self.turns, ClaudeTurns) else None

    @property
    def guide(self) -> OfflineGuide | None:
        """The offline guide, when the session runs offline."""
        return self.turns.guide if isinstance(self.turns, OfflineTurns) else None

    @property
    def refused_states(self) -> list[RefusedState]:
        """<state> tags the session ignored (docs/security.md), for `tutor eval`."""
        return self.turns.policy.refused if isinstance(self.turns, ClaudeTurns) else []

    def states(self) -> dict[str, State]:
        return self.model.states()

    @property
    def current_concept(self) -> str | None:
        return self.turns.current_concept

    def input_hint(self) -> str:
        """A short line for the reader's input box: what typing (or Enter alone) does now."""
        return self.turns.input_hint()

    @property
    def can_retry(self) -> bool:
        return self.turns.can_retry

    def last_tutor_message(self) -> str | None:
        """The last thing the tutor said (for a "welcome back" in --plain)."""
        for m in reversed(self.store.messages(self.id)):
            if m.role == "tutor" and m.text.strip():
                return m.text
        return None

    # -- turns -----------------------------------------------------------------------------
    def start(self) -> AsyncGenerator[Event, None]:
        """The opening turn for a new session; on resume a short "welcome back" (not stored)."""
        return self.turns.start()

    def reply(self, text: str, *, pending_id: int | None = None) -> AsyncGenerator[Event, None]:
        """The reader's message: committed to the store first, then answered. ``pending_id``:
        the row ``keep_pending`` stored when the message was shown; it becomes this message."""
        return self.turns.reply(text.strip(), pending_id=pending_id)

    def retry(self) -> AsyncGenerator[Event, None]:
        """Resend the last reader message whose reply failed or was interrupted."""
        return self.turns.retry()

    def mark_known(self, concept_id: str) -> AsyncGenerator[Event, None]:
        """The reader says "I already know X": recorded at once, then the tutor moves on."""
        c = self.explainer.concept(concept_id)
        text = f"I already know {ending(in_sentence(c.title), '.')}"
        return self.turns.command(text, ReaderCommand(Command.KNOW, c.id))

    def explain(self, concept_id: str) -> AsyncGenerator[Event, None]:
        """The reader asks for X (again)."""
        c = self.explainer.concept(concept_id)
        title = in_sentence(c.title)
        # "again" only when the reader has actually been shown it (not merely asked about it).
        text = f"Please explain {title} again." if self.turns.was_presented(c.id) else f"Please explain {title}."
        return self.turns.command(text, ReaderCommand(Command.EXPLAIN, c.id))

    def skip(self) -> AsyncGenerator[Event, None]:
        """Skip the current concept (it is not marked known; it is just not offered again)."""
        cid = self.current_concept
        if cid is None:
            return _nothing_to_skip()
        text = f"Let's skip {in_sentence(self.explainer.concept(cid).title)} for now."
        return self.turns.command(text, ReaderCommand(Command.SKIP, cid))

    def add_reader_feedback(self, text: str, concept_id: str | None = None) -> None:
        """The reader's own note for the author (stored with source "reader")."""
        text = text.strip()
        if not text:
            raise TutorError("feedback is empty", hint="Write what is unclear or wrong, e.g. /feedback the diagram is missing")
        if concept_id is not None and concept_id not in self.model:
            raise TutorError(f"no concept {concept_id!r} in {self.explainer.path}")
        if concept_id is None:
            concept_id = self.current_concept
        self.store.add_feedback(self.id, self.explainer.content_hash, concept_id, text, "reader")

    async def go_offline(self) -> AsyncGenerator[Event, None]:
        """Carry on in the offline guide after Claude refused the key, in the same session:
        what the reader showed they know stays known, and the guide picks up from there."""
        if isinstance(self.turns, OfflineTurns):
            return
        await self.turns.aclose()
        self.turns = OfflineTurns(self.record)
        async with aclosing(self.turns.start(lead="Carrying on in the offline guided mode (no Claude).")) as opening:
            async for ev in opening:
                yield ev

    async def aclose(self) -> None:
        await self.turns.aclose()

    # -- what the reader sees is saved (issue 15.3; docs/database.md, pending_messages) ----
    def keep_pending(self, text: str) -> int:
        """Store a reader message before the app shows it (queued behind a reply, or about to
        be sent): a kill after this cannot lose it. Returns the id ``reply`` takes."""
        return int(self.store.add_pending(self.id, text.strip()))

    def pending_messages(self) -> list[PendingRow]:
        """Messages shown but never sent (the app was killed first), oldest first."""
        return list(self.store.pending(self.id))

    def drop_pending(self, pending_id: int) -> None:
        """The reader took the message back (it went back to the input, or was printed on quit)."""
        self.store.drop_pending(pending_id)


async def _nothing_to_skip() -> AsyncGenerator[Event, None]:
    yield TextDelta(text="There is nothing left to skip.")
    yield TurnFinished(finished=True)
