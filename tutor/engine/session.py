"""TutorSession: one reader's session over one explainer -- the API the app, ``--plain``
and the tests use.

Why it looks like this:
- Every method yields typed events (``tutor.engine.events``) and persists each event's
  effect through the store as it happens, so a crash, a kill or Esc never loses what the
  reader already saw or wrote. The reader's message is committed before any model call.
- The same interface drives Claude and the offline guide; the UI never needs to know
  which one it talks to.
- Resuming is rebuilding from the store: the reader model from ``concept_states``, the
  offline cursor by replaying the reader's messages through a fresh (deterministic)
  guide, the Claude memory from the summary + recent turns (memory.py).
- Reader overrides (skip, "I already know X", "explain X again") are stored as ordinary
  reader messages whose ``raw`` holds the command (``/skip ID``, ``/know ID``,
  ``/explain ID``), so the transcript reads naturally and a replay is exact.

Details in docs/engine.md.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any

from tutor.engine.backend import Finished, TextPiece, ThinkingStarted
from tutor.engine.backend import Retrying as RetryWait  # the event of the same name is the engine's
from tutor.engine.events import (
    ErrorEvent,
    Event,
    FeedbackCaptured,
    Notice,
    Retrying,
    StateChanged,
    TextDelta,
    Thinking,
    TurnFinished,
    Usage,
)
from tutor.engine.models import CallKind
from tutor.engine.offline import OfflineGuide, Step
from tutor.engine.reader_model import DONE, STATES, ReaderModel, ending, find_concepts, in_sentence
from tutor.engine.search import SectionIndex
from tutor.engine.tagfilter import Tag, TagFilter
from tutor.errors import TutorError
from tutor.explainer import Explainer

FLUSH_SECONDS = 0.2  # a streaming reply is written to the store at least this often ...
FLUSH_CHARS = 400  # ... or after this many new characters, and always at the end
MORE = "/more"


@dataclass(frozen=True)
class RefusedState:
    """A <state> tag the session ignored, and why (docs/security.md, "State tags")."""

    concept_id: str
    value: str
    reason: str  # "unknown concept", "unknown value", "not in play", "no reader message"


class TutorSession:
    """See the module docstring and docs/engine.md. Create with ``TutorSession.open``."""

    # Memory: fold older turns into a summary past this many history tokens (memory.py).
    memory_budget_tokens = 3000  # history tokens a compaction would drop (memory.foldable_tokens) before one (bench/bench_tokens.py)
    memory_keep_recent = 2  # the last tutor reply and the reader's answer to it stay verbatim

    def __init__(
        self,
        explainer: Explainer,
        store: Any,
        *,
        backend: Any = None,
        session_id: str,
        resumed: bool = False,
        explainer_changed: bool = False,
        created_mode: str | None = None,
    ):
        self.explainer = explainer
        self.store = store
        self.backend = backend
        self.id = session_id
        self.mode = backend.name if backend is not None else "offline"
        self.resumed = resumed
        self.explainer_changed = explainer_changed
        self.created_mode = created_mode or self.mode
        self.model = ReaderModel(explainer)
        self.index = SectionIndex(explainer) if backend is None else None
        self.guide = OfflineGuide(explainer, self.model, self.index) if backend is None else None
        self._replayed = False
        self._current: str | None = None  # Claude: the concept the tutor is on, from <state> tags
        self._retry_pending = False
        self._retry_seq: int | None = None  # reader message to resend; None = the opening turn
        self._has_messages = False
        # Trust boundary for <state> tags (docs/security.md): fixed at the start of each
        # Claude turn by _begin_tag_policy; refused tags are counted here for `tutor eval`.
        self._in_play: frozenset[str] = frozenset()
        self._reader_spoke = False
        self.refused_states: list[RefusedState] = []
        self._restore()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        explainer: Explainer,
        store: Any,
        *,
        backend: Any = None,
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
            if row.mode == "imported":  # tutor.feedback.IMPORTED_MODE: a reader's transcript from a bundle
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

    def _restore(self) -> None:
        msgs = self.store.messages(self.id)
        self._has_messages = bool(msgs)
        if not msgs:
            return
        if self.guide is not None and self.created_mode == "offline" and not self.explainer_changed:
            # Replaying over a changed file could drift from the stored states; then the
            # walk restarts from those states instead (start() says so).
            self._replay(msgs)
        # The store is the authority on states (the replay derives the same ones).
        for cid, row in self.store.concept_states(self.id).items():
            if cid in self.model and row.state in STATES:
                self.model.set(cid, row.state, row.evidence, row.message_seq)
        if self.guide is None:
            for m in msgs:
                if m.role == "reader" and m.raw and m.raw.startswith("/"):
                    cmd, _, arg = m.raw.partition(" ")
                    if cmd == "/skip" and arg in self.model:
                        self.model.skipped.add(arg)
                    elif cmd in ("/know", "/explain"):
                        self.model.skipped.discard(arg)
                elif m.role == "tutor" and m.raw:
                    _, tags = TagFilter.filter_all(m.raw)
                    for t in tags:
                        cid = t.attrs.get("concept", "")
                        # only tags that were accepted: a refused one left its concept unknown
                        if t.name == "state" and cid in self.model and self.model.state(cid) != "unknown":
                            self._track_current(cid, t.attrs.get("value", ""))
            # A turn that failed or was interrupted can be retried after a restart.
            last = msgs[-1]
            if last.role == "reader" or (last.role == "tutor" and not last.complete):
                readers = [m for m in msgs if m.role == "reader"]
                self._retry_pending = True
                self._retry_seq = readers[-1].seq if readers else None

    def _replay(self, msgs: list[Any]) -> None:
        """Rebuild the offline cursor: the guide is deterministic, so replaying the reader's
        messages puts it exactly where it was. A changed explainer may not replay cleanly;
        then the walk restarts from the stored states."""
        assert self.guide is not None
        try:
            self.guide.opening()
            for m in msgs:
                if m.role != "reader":
                    continue
                self._guide_input(m.text, m.raw, seq=m.seq)
            self._replayed = True
        except (KeyError, ValueError, IndexError):
            self.model = ReaderModel(self.explainer)  # states are reloaded from the store next
            self.guide = OfflineGuide(self.explainer, self.model, self.index)
            self._replayed = False

    def _guide_input(self, text: str, raw: str | None, seq: int | None) -> Step:
        assert self.guide is not None
        if raw and raw.startswith("/"):
            cmd, _, arg = raw.partition(" ")
            if cmd == "/skip":
                return self.guide.skip(seq=seq)
            if cmd == "/know" and arg in self.model:
                return self.guide.mark_known(arg, evidence=f"reader: {text}", seq=seq)
            if cmd == "/explain" and arg in self.model:
                return self.guide.explain(arg, seq=seq)
            if cmd == MORE:
                return self.guide.step("", seq=seq)
        return self.guide.step(text, seq=seq)

    # -- reading ---------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        return self.model.states()

    @property
    def current_concept(self) -> str | None:
        if self.guide is not None:
            return self.guide.concept
        if self._current is not None and not self.model.is_done(self._current):
            return self._current
        return self.model.next_concept()

    def input_hint(self) -> str:
        """A short line for the reader's input box: what typing (or Enter alone) does now."""
        if self.guide is not None:
            return self.guide.input_hint()
        return "Reply to the tutor, or ask a question"

    @property
    def can_retry(self) -> bool:
        return self._retry_pending

    def last_tutor_message(self) -> str | None:
        """The last thing the tutor said (for a "welcome back" in --plain)."""
        for m in reversed(self.store.messages(self.id)):
            if m.role == "tutor" and m.text.strip():
                return m.text
        return None

    # -- turns -----------------------------------------------------------------------------
    async def start(self) -> AsyncGenerator[Event, None]:
        """The opening turn for a new session; on resume a short "welcome back" (not stored)."""
        if self.guide is not None:
            if self._has_messages and self._replayed:
                step = self.guide.resume_note()
                if step.text:
                    yield TextDelta(text=step.text)
                yield TurnFinished(message_id=None, finished=self.guide.phase == "done")
                return
            step = self.guide.opening()
            if self._has_messages:
                note = "Welcome back."
                if self.explainer_changed:
                    note += f" {self.explainer.path} has changed since your last visit, so we pick up from what you know."
                step = step.model_copy(update={"text": note + " " + step.text})
            async with aclosing(self._emit_offline(step, None)) as inner:
                async for ev in inner:
                    yield ev
            return
        if self._has_messages:
            c = self.current_concept
            where = f" We were on {in_sentence(self.explainer.concept(c).title)}." if c else ""
            note = f"Welcome back.{where}"
            if self._retry_pending:
                note += (
                    " Your last message did not get a complete reply. To retry, send it again, or use"
                    " Retry (Ctrl+R in the app, /retry in --plain)."
                )
            yield TextDelta(text=note)
            yield TurnFinished(message_id=None)
            return
        self._has_messages = True
        async with aclosing(self._claude_turn(None, "")) as inner:
            async for ev in inner:
                yield ev

    async def reply(self, text: str, *, pending_id: int | None = None) -> AsyncGenerator[Event, None]:
        """The reader's message: committed to the store first, then answered. ``pending_id``:
        the row ``keep_pending`` stored when the message was shown; it becomes this message."""
        text = text.strip()
        raw = None if text else (MORE if self.guide is not None else "/continue")
        shown = text or ("(more)" if self.guide is not None else "(continue)")
        async with aclosing(self._reader_turn(shown, raw, model_text=text, pending_id=pending_id)) as inner:
            async for ev in inner:
                yield ev

    async def retry(self) -> AsyncGenerator[Event, None]:
        """Resend the last reader message whose reply failed or was interrupted."""
        if self.guide is not None or not self._retry_pending:
            yield ErrorEvent(code="other", message="There is nothing to retry.", retryable=False)
            yield TurnFinished(complete=False)
            return
        text = ""
        if self._retry_seq is not None:
            rows = [m for m in self.store.messages(self.id, after_seq=self._retry_seq - 1, limit=1)]
            text = rows[0].text if rows and rows[0].raw != "/continue" else ""
        async with aclosing(self._claude_turn(self._retry_seq, text)) as inner:
            async for ev in inner:
                yield ev

    async def mark_known(self, concept_id: str) -> AsyncGenerator[Event, None]:
        """The reader says "I already know X": recorded at once, then the tutor moves on."""
        c = self.explainer.concept(concept_id)
        text = f"I already know {ending(in_sentence(c.title), '.')}"
        if self.guide is not None:
            async with aclosing(self._reader_turn(text, f"/know {c.id}")) as inner:
                async for ev in inner:
                    yield ev
            return
        seq = self._add_reader(text, f"/know {c.id}")
        changed = self._set_state(c.id, "known", f"reader: {text}", seq)
        if changed:
            yield changed
        async with aclosing(self._claude_turn(seq, text)) as inner:
            async for ev in inner:
                yield ev

    async def explain(self, concept_id: str) -> AsyncGenerator[Event, None]:
        """The reader asks for X (again)."""
        c = self.explainer.concept(concept_id)
        title = in_sentence(c.title)
        # "again" only when the reader has actually been shown it (not merely asked about it).
        shown = self.guide.was_presented(c.id) if self.guide is not None else self.model.state(c.id) in ("explained", "understood", "shaky")
        text = f"Please explain {title} again." if shown else f"Please explain {title}."
        self.model.skipped.discard(c.id)
        if self.guide is None:
            self._current = c.id
        async with aclosing(self._reader_turn(text, f"/explain {c.id}")) as inner:
            async for ev in inner:
                yield ev

    async def skip(self) -> AsyncGenerator[Event, None]:
        """Skip the current concept (it is not marked known; it is just not offered again)."""
        cid = self.current_concept
        if cid is None:
            yield TextDelta(text="There is nothing left to skip.")
            yield TurnFinished(finished=True)
            return
        c = self.explainer.concept(cid)
        text = f"Let's skip {in_sentence(c.title)} for now."
        if self.guide is None:
            self.model.skipped.add(cid)
            self._current = None
        async with aclosing(self._reader_turn(text, f"/skip {cid}")) as inner:
            async for ev in inner:
                yield ev

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
        if self.guide is not None:
            return
        backend, self.backend = self.backend, None
        if backend is not None and hasattr(backend, "aclose"):
            with suppress(Exception):
                await backend.aclose()
        self.mode = "offline"
        self._retry_pending = False
        self._retry_seq = None
        self.index = SectionIndex(self.explainer)
        self.guide = OfflineGuide(self.explainer, self.model, self.index)
        step = self.guide.opening()
        step = step.model_copy(update={"text": "Carrying on in the offline guided mode (no Claude). " + step.text})
        async with aclosing(self._emit_offline(step, None)) as inner:
            async for ev in inner:
                yield ev

    async def aclose(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None
        if self.backend is not None and hasattr(self.backend, "aclose"):
            with suppress(Exception):
                await self.backend.aclose()

    # -- shared plumbing -------------------------------------------------------------------
    # -- what the reader sees is saved (issue 15.3; docs/database.md, pending_messages) ----
    def keep_pending(self, text: str) -> int:
        """Store a reader message before the app shows it (queued behind a reply, or about to
        be sent): a kill after this cannot lose it. Returns the id ``reply`` takes."""
        return int(self.store.add_pending(self.id, text.strip()))

    def pending_messages(self) -> list[Any]:
        """Messages shown but never sent (the app was killed first), oldest first."""
        return list(self.store.pending(self.id))

    def drop_pending(self, pending_id: int) -> None:
        """The reader took the message back (it went back to the input, or was printed on quit)."""
        self.store.drop_pending(pending_id)

    def _add_reader(self, text: str, raw: str | None, pending_id: int | None = None) -> int:
        mid = self.store.add_message(self.id, "reader", text, raw=raw, pending_id=pending_id)
        self._has_messages = True
        row = self.store.get_message(mid)
        return row.seq if row is not None else 0

    def _set_state(self, cid: str, state: str, evidence: str, seq: int | None) -> StateChanged | None:
        if not self.model.set(cid, state, evidence, seq):
            return None
        self.store.set_concept_state(self.id, cid, state, evidence, message_seq=seq)
        return StateChanged(concept_id=cid, state=state, evidence=evidence)

    async def _reader_turn(
        self, text: str, raw: str | None, model_text: str | None = None, pending_id: int | None = None
    ) -> AsyncGenerator[Event, None]:
        seq = self._add_reader(text, raw, pending_id)
        if self.guide is not None:
            step = self._guide_input(text, raw, seq)
            async with aclosing(self._emit_offline(step, seq)) as inner:
                async for ev in inner:
                    yield ev
            return
        async with aclosing(self._claude_turn(seq, text if model_text is None else model_text)) as inner:
            async for ev in inner:
                yield ev

    async def _emit_offline(self, step: Step, seq: int | None) -> AsyncGenerator[Event, None]:
        """Persist one guide step (tutor message, then state changes) and yield its events."""
        mid = self.store.add_message(self.id, "tutor", step.text, raw=None, complete=True)
        self._has_messages = True
        self._replayed = True
        for ch in step.changes:  # the guide already updated the model; persist the change
            self.store.set_concept_state(self.id, ch.concept_id, ch.state, ch.evidence, message_seq=seq)
        if step.finished:
            self.store.set_status(self.id, "finished")
        yield TextDelta(text=step.text)
        for ch in step.changes:
            yield StateChanged(concept_id=ch.concept_id, state=ch.state, evidence=ch.evidence)
        yield TurnFinished(message_id=mid, complete=True, finished=step.finished)

    # -- Claude ----------------------------------------------------------------------------
    def _track_current(self, cid: str, value: str) -> None:
        if cid not in self.model:
            return
        if value in ("asked", "explained", "shaky"):
            self._current = cid
        elif value in DONE and self._current == cid:
            self._current = None

    def _begin_tag_policy(self, reader_text: str) -> None:
        """Fix, before the model is called, which concepts this turn's <state> tags may name.

        The model's tags are only as trustworthy as what it read, and it read the explainer:
        a hostile one can make an obedient model tag every concept "understood". So a tag
        counts only for a concept in play: the one in progress, the one due after it, the
        ones the reader has already reached (any state but unknown) and the ones the
        reader's own message names. The set is fixed for the whole reply, so one reply
        cannot walk the outline by chaining tags. "known"/"understood" also need a reader
        message to rest on: a turn the reader did not write (the opening, a continue)
        cannot mark anything done.
        """
        current = self.current_concept
        allowed = {cid for cid, state in self.model.states().items() if state != "unknown"}
        if current is not None:
            allowed.add(current)
            nxt = self.model.next_concept(exclude={current})
            if nxt is not None:
                allowed.add(nxt)
        if reader_text.strip():
            allowed.update(find_concepts(self.explainer, reader_text[:2000]))
        self._in_play = frozenset(allowed)
        self._reader_spoke = bool(reader_text.strip())

    def _state_refusal(self, cid: str, value: str) -> str | None:
        if cid not in self.model:
            return "unknown concept"
        if value not in STATES:
            return "unknown value"
        if cid not in self._in_play:
            return "not in play"
        if value in DONE and not self._reader_spoke:
            return "no reader message"
        return None

    def _apply_tag(self, tag: Tag, seq: int | None) -> list[Event]:
        events: list[Event] = []
        if tag.name == "state":
            cid, value = tag.attrs.get("concept", ""), tag.attrs.get("value", "")
            refusal = self._state_refusal(cid, value)
            if refusal is not None:
                self.refused_states.append(RefusedState(concept_id=cid[:200], value=value[:50], reason=refusal))
            else:
                ev = self._set_state(cid, value, tag.text, seq)
                self._track_current(cid, value)
                if ev:
                    events.append(ev)
        elif tag.name == "feedback":
            text = tag.text.strip()
            if text:
                if not tag.complete:
                    text += " [cut off: the reply ended inside this feedback]"
                named = tag.attrs.get("concept")
                fid = named if named in self.model else None
                self.store.add_feedback(self.id, self.explainer.content_hash, fid, text, "model")
                events.append(FeedbackCaptured(concept_id=fid, text=text, source="model"))
        return events

    def _bill(self, u: Any) -> Any:
        """Add one call's usage to the session's totals; returns the session row."""
        return self.store.add_usage(
            self.id, u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens, u.cost_usd
        )

    def _history(self, before_seq: int | None):
        from tutor.engine.memory import _turn_from_row

        summary = self.store.latest_summary(self.id)
        after = summary.upto_seq if summary else 0
        turns = []
        for row in self.store.messages(self.id, after_seq=after):
            if before_seq is not None and row.seq >= before_seq:
                break
            t = _turn_from_row(row)
            if t is not None:
                turns.append(t)
        return (summary.text if summary else None), turns

    async def _claude_turn(self, reader_seq: int | None, reader_text: str) -> AsyncGenerator[Event, None]:
        from tutor.engine.claude import BackendError
        from tutor.engine.memory import maybe_compact
        from tutor.engine.prompt import build_request

        self._retry_pending = True
        self._retry_seq = reader_seq
        try:
            await maybe_compact(
                self.store,
                self.id,
                self.backend,
                self.explainer,
                budget_tokens=self.memory_budget_tokens,
                keep_recent=self.memory_keep_recent,
            )
        except BackendError as failed:
            # Nothing lost: this turn carries the longer history and the next one tries again.
            # A summary call that failed mid-stream was still billed: count it.
            if failed.usage is not None and (failed.usage.input_tokens or failed.usage.output_tokens):
                self._bill(failed.usage)
        summary, history = self._history(reader_seq)
        system, messages = build_request(
            self.explainer,
            summary=summary,
            states=self.states(),
            current_concept=self.current_concept,
            history=history,
            new_reader_text=reader_text,
        )
        self._begin_tag_policy(reader_text)

        filt = TagFilter()
        raw_parts: list[str] = []
        visible_parts: list[str] = []
        # Where the last flush got to in raw_parts/visible_parts: each flush saves only the
        # tail since then (store.append_message), so a long reply costs O(chunk) per flush.
        msg: dict[str, Any] = {"id": None, "flushed_at": time.monotonic(), "flushed_len": 0, "len": 0, "raw_i": 0, "text_i": 0}
        evidence_seq = reader_seq

        def flush(*, complete: bool = False, usage: Any = None, force: bool = False, final: bool = False) -> None:
            raw = "".join(raw_parts[msg["raw_i"] :])
            text = "".join(visible_parts[msg["text_i"] :])
            if msg["id"] is None:
                if not raw and not force:
                    return
                msg["id"] = self.store.add_message(self.id, "tutor", text, raw=raw, complete=complete, usage=usage)
            else:
                self.store.append_message(msg["id"], text, raw, complete=complete if final else None, usage=usage)
            msg["raw_i"] = len(raw_parts)
            msg["text_i"] = len(visible_parts)
            msg["flushed_at"] = time.monotonic()
            msg["flushed_len"] = msg["len"]

        def handle(visible: str, tags: list[Tag]) -> list[Event]:
            out: list[Event] = []
            if visible:
                visible_parts.append(visible)
                out.append(TextDelta(text=visible))
            for tag in tags:
                out.extend(self._apply_tag(tag, evidence_seq))
            return out

        def take_notices() -> list[Event]:
            notices = getattr(self.backend, "notices", None) or []
            out: list[Event] = [Notice(text=n) for n in notices]
            notices.clear()
            return out

        settled = False
        result: Any = None
        failure: BaseException | None = None
        stream = self.backend.events(system=system, messages=messages, kind=CallKind.TUTOR_TURN)
        thinking_since: float | None = None
        try:
            for ev in take_notices():
                yield ev
            try:
                async for item in stream:
                    if isinstance(item, ThinkingStarted):
                        thinking_since = time.monotonic()
                        yield Thinking()
                    elif isinstance(item, TextPiece):
                        if thinking_since is not None:
                            yield Thinking(done=True, seconds=time.monotonic() - thinking_since)
                            thinking_since = None
                        raw_parts.append(item.text)
                        msg["len"] += len(item.text)
                        shown = handle(*filt.feed(item.text))
                        now = time.monotonic()
                        if msg["id"] is None or now - msg["flushed_at"] >= FLUSH_SECONDS or msg["len"] - msg["flushed_len"] >= FLUSH_CHARS:
                            flush()  # before the text is yielded: the reply's row exists before it is on screen
                        for ev in shown:
                            yield ev
                    elif isinstance(item, RetryWait):
                        yield Retrying(seconds=item.seconds, attempt=item.attempt, of=item.of, reason=item.reason)
                    elif isinstance(item, Finished):
                        result = item.result
            except (BackendError, TutorError) as exc:
                failure = exc
            if thinking_since is not None:
                yield Thinking(done=True, seconds=time.monotonic() - thinking_since)
            for ev in handle(*filt.close()):
                yield ev
            for ev in take_notices():
                yield ev
            if result is not None:
                res = result
                flush(complete=res.complete, usage=res, force=True, final=True)
                settled = True
                self._retry_pending = False
                self._retry_seq = None
                row = self._bill(res)
                yield Usage(
                    **res.usage(),
                    session_tokens=row.total_tokens,
                    session_cost_usd=row.cost_usd,
                )
                yield TurnFinished(
                    message_id=msg["id"],
                    complete=res.complete,
                    stop_reason=res.stop_reason,
                    finished=self.model.next_concept() is None,
                )
                return
            flush(complete=False, final=True)
            settled = True
            spent = getattr(failure, "usage", None)
            if spent is not None and (spent.input_tokens or spent.output_tokens):
                # A cut or failed reply was still billed: count it, so the header's cost is true.
                row = self._bill(spent)
                yield Usage(**spent.usage(), session_tokens=row.total_tokens, session_cost_usd=row.cost_usd)
            if isinstance(failure, BackendError):
                yield ErrorEvent(code=failure.code, message=str(failure), retryable=failure.retryable)
            else:
                yield ErrorEvent(code="other", message=str(failure or "the reply ended early"), retryable=True)
            yield TurnFinished(message_id=msg["id"], complete=False)
        finally:
            with suppress(Exception):
                await stream.aclose()  # Esc or aclose mid-reply: closes the HTTP stream
            if not settled:
                # Interrupted (Esc, aclose, Ctrl-C): keep what arrived, marked incomplete.
                with suppress(Exception):
                    handle(*filt.close())
                with suppress(Exception):
                    flush(complete=False, final=True)
