"""The Claude turn strategy: one request per reader message, streamed through the back end.

Per turn: fold old turns into the memory summary if due (memory.py), build the request
(prompt.py), fix which <state> tags may count (state_policy.py), stream the reply through the
tag filter while saving it (reply_writer.py), then bill it. A reply that fails or is
interrupted keeps what arrived, marked incomplete, and the turn can be retried, also after a
restart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

from tutor.engine.backend import Backend, Finished, TextPiece, ThinkingStarted
from tutor.engine.backend import Retrying as RetryWait  # the event of the same name is the engine's
from tutor.engine.claude import BackendError, StreamResult
from tutor.engine.commands import Command, ReaderCommand
from tutor.engine.events import (
    ErrorEvent,
    Event,
    FeedbackCaptured,
    Notice,
    Retrying,
    TextDelta,
    Thinking,
    TokenUsage,
    TurnFinished,
    Usage,
)
from tutor.engine.memory import _turn_from_row, maybe_compact, reader_context
from tutor.engine.models import CallKind
from tutor.engine.prompt import Turn, build_request
from tutor.engine.reader_model import ACTIVE, DONE, PRESENTED, State, in_sentence
from tutor.engine.tagfilter import Tag, TagFilter
from tutor.engine.turns.reply_writer import ReplyWriter
from tutor.engine.turns.state_policy import StatePolicy
from tutor.errors import ErrorCode, TutorError

if TYPE_CHECKING:
    from tutor.engine.turns.record import SessionRecord
    from tutor.store import MessageRow


@dataclass
class MemorySettings:
    """When older turns fold into the summary (memory.py; the defaults: bench/bench_tokens.py)."""

    budget_tokens: int = 3000  # history tokens a compaction would drop (memory.foldable_tokens)
    keep_recent: int = 2  # the last tutor reply and the reader's answer to it stay verbatim


class ClaudeTurns:
    can_retry: bool

    def __init__(self, record: SessionRecord, backend: Backend, memory: MemorySettings):
        self.record = record
        self.backend = backend
        self.mode = backend.name
        self.memory = memory
        self.policy = StatePolicy(record.explainer)
        self._current: str | None = None  # the concept the tutor is on, from <state> tags
        self.can_retry = False
        self._retry_seq: int | None = None  # reader message to resend; None = the opening turn

    # -- resuming --------------------------------------------------------------------------
    def restore(self, msgs: list[MessageRow]) -> None:
        r = self.record
        r.load_states()
        model = r.model
        for m in msgs:
            cmd = ReaderCommand.parse(m.raw) if m.role == "reader" else None
            if cmd is not None:
                if cmd.command == Command.SKIP and cmd.concept_id in model:
                    model.skipped.add(cmd.concept_id)
                elif cmd.command in (Command.KNOW, Command.EXPLAIN):
                    model.skipped.discard(cmd.concept_id)
            elif m.role == "tutor" and m.raw:
                _, tags = TagFilter.filter_all(m.raw)
                for t in tags:
                    cid = t.attrs.get("concept", "")
                    # only tags that were accepted: a refused one left its concept unknown
                    if t.name == "state" and cid in model and model.state(cid) != State.UNKNOWN:
                        self._track_current(cid, t.attrs.get("value", ""))
        if msgs:
            # A turn that failed or was interrupted can be retried after a restart.
            last = msgs[-1]
            if last.role == "reader" or (last.role == "tutor" and not last.complete):
                readers = [m for m in msgs if m.role == "reader"]
                self.can_retry = True
                self._retry_seq = readers[-1].seq if readers else None

    # -- reading ---------------------------------------------------------------------------
    @property
    def current_concept(self) -> str | None:
        model = self.record.model
        if self._current is not None and not model.is_done(self._current):
            return self._current
        return model.next_concept()

    def input_hint(self) -> str:
        return "Reply to the tutor, or ask a question"

    def was_presented(self, concept_id: str) -> bool:
        return self.record.model.state(concept_id) in PRESENTED

    # -- turns -----------------------------------------------------------------------------
    # Each returns one generator (_turn), never a relay: closing it (Esc) closes the stream.
    def start(self, *, lead: str = "") -> AsyncGenerator[Event, None]:
        if self.record.has_messages:
            return self._welcome_back()
        self.record.has_messages = True
        return self._turn("")

    def reply(self, text: str, *, pending_id: int | None = None) -> AsyncGenerator[Event, None]:
        raw = None if text else Command.CONTINUE.value
        return self._turn(text, commit=(text or "(continue)", raw, pending_id))

    def command(self, text: str, cmd: ReaderCommand) -> AsyncGenerator[Event, None]:
        return self._turn(text, commit=(text, cmd.raw, None), command=cmd)

    def retry(self) -> AsyncGenerator[Event, None]:
        if not self.can_retry:
            return _nothing_to_retry()
        text = ""
        r = self.record
        if self._retry_seq is not None:
            rows = r.store.messages(r.session_id, after_seq=self._retry_seq - 1, limit=1)
            text = rows[0].text if rows and rows[0].raw != Command.CONTINUE.value else ""
        return self._turn(text, seq=self._retry_seq)

    async def _welcome_back(self) -> AsyncGenerator[Event, None]:
        c = self.current_concept
        where = f" We were on {in_sentence(self.record.explainer.concept(c).title)}." if c else ""
        note = f"Welcome back.{where}"
        if self.can_retry:
            note += (
                " Your last message did not get a complete reply. To retry, send it again, or use"
                " Retry (Ctrl+R in the app, /retry in --plain)."
            )
        yield TextDelta(text=note)
        yield TurnFinished(message_id=None)

    def _command(self, cmd: ReaderCommand) -> None:
        """What a skip or "explain X" changes before the reader's message is stored."""
        model = self.record.model
        if cmd.command == Command.SKIP:
            model.skipped.add(cmd.concept_id)
            self._current = None
        elif cmd.command == Command.EXPLAIN:
            model.skipped.discard(cmd.concept_id)
            self._current = cmd.concept_id

    async def aclose(self) -> None:
        with suppress(Exception):
            await self.backend.aclose()

    # -- one turn --------------------------------------------------------------------------
    def _track_current(self, cid: str, value: str) -> None:
        if cid not in self.record.model:
            return
        if value in ACTIVE:
            self._current = cid
        elif value in DONE and self._current == cid:
            self._current = None

    async def _compact(self) -> None:
        r = self.record
        try:
            await maybe_compact(
                r.store,
                r.session_id,
                self.backend,
                r.explainer,
                budget_tokens=self.memory.budget_tokens,
                keep_recent=self.memory.keep_recent,
            )
        except BackendError as failed:
            # Nothing lost: this turn carries the longer history and the next one tries again.
            # A summary call that failed mid-stream was still billed: count it.
            if _spent(failed.usage):
                r.bill(failed.usage)

    def _request(self, reader_seq: int | None, reader_text: str) -> tuple[list[dict], list[dict]]:
        r = self.record
        summary = r.store.latest_summary(r.session_id)
        history: list[Turn] = []
        for row in r.store.messages(r.session_id, after_seq=summary.upto_seq if summary else 0):
            if reader_seq is not None and row.seq >= reader_seq:
                break
            t = _turn_from_row(row)
            if t is not None:
                history.append(t)
        return build_request(
            r.explainer,
            summary=summary.text if summary else None,
            states=r.model.states(),
            current_concept=self.current_concept,
            history=history,
            new_reader_text=reader_text,
            context=reader_context(r.store, r.session_id, r.model),
        )

    def _apply_tag(self, tag: Tag, seq: int | None) -> list[Event]:
        r = self.record
        if tag.name == "state":
            cid, value = tag.attrs.get("concept", ""), tag.attrs.get("value", "")
            if not self.policy.judge(r.model, cid, value):
                return []
            ev = r.set_state(cid, value, tag.text, seq)
            self._track_current(cid, value)
            return [ev] if ev else []
        if tag.name == "feedback":
            text = tag.text.strip()
            if not text:
                return []
            if not tag.complete:
                text += " [cut off: the reply ended inside this feedback]"
            named = tag.attrs.get("concept")
            fid = named if named in r.model else None
            rules = tag.attrs.get("about", "").strip().lower() == "rules"  # the tutor on its own instructions
            r.store.add_feedback(r.session_id, r.explainer.content_hash, fid, text, "rules" if rules else "model")
            return [FeedbackCaptured(concept_id=fid, text=text, source="rules" if rules else "model")]
        return []

    def _notices(self) -> list[Event]:
        notices: list[str] = getattr(self.backend, "notices", None) or []
        out: list[Event] = [Notice(text=n) for n in notices]
        notices.clear()
        return out

    async def _turn(
        self,
        reader_text: str,
        *,
        seq: int | None = None,
        commit: tuple[str, str | None, int | None] | None = None,
        command: ReaderCommand | None = None,
    ) -> AsyncGenerator[Event, None]:
        """One model turn. ``commit``: the reader's message (shown text, raw, pending id), stored
        first; else ``seq`` names the reader message being answered again (None: the opening)."""
        if command is not None:
            self._command(command)
        reader_seq = self.record.add_reader(*commit) if commit is not None else seq
        if command is not None and command.command == Command.KNOW:
            changed = self.record.set_state(command.concept_id, State.KNOWN, f"reader: {reader_text}", reader_seq)
            if changed:
                yield changed
        self.can_retry = True
        self._retry_seq = reader_seq
        await self._compact()
        system, messages = self._request(reader_seq, reader_text)
        self.policy.begin(self.record.model, self.current_concept, reader_text)
        filt = TagFilter()
        out = ReplyWriter(self.record.store, self.record.session_id)

        def shown(visible: str, tags: list[Tag]) -> list[Event]:
            events: list[Event] = []
            if visible:
                out.add_visible(visible)
                events.append(TextDelta(text=visible))
            for tag in tags:
                events.extend(self._apply_tag(tag, reader_seq))
            return events

        settled = False
        result: StreamResult | None = None
        failure: BaseException | None = None
        stream = self.backend.events(system=system, messages=messages, kind=CallKind.TUTOR_TURN)
        thinking_since: float | None = None
        try:
            for ev in self._notices():
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
                        out.add_raw(item.text)
                        events = shown(*filt.feed(item.text))
                        if out.due():
                            out.flush()  # before the text is yielded: the reply's row exists before it is on screen
                        for ev in events:
                            yield ev
                    elif isinstance(item, RetryWait):
                        yield Retrying(seconds=item.seconds, attempt=item.attempt, of=item.of, reason=item.reason)
                    elif isinstance(item, Finished):
                        result = item.result
            except (BackendError, TutorError) as exc:
                failure = exc
            if thinking_since is not None:
                yield Thinking(done=True, seconds=time.monotonic() - thinking_since)
            for ev in shown(*filt.close()) + self._notices():
                yield ev
            ending = self._finished(result, out) if result is not None else self._failed(failure, out)
            settled = True
            for ev in ending:
                yield ev
        finally:
            with suppress(Exception):
                await stream.aclose()  # Esc or aclose mid-reply: closes the HTTP stream
            if not settled:
                # Interrupted (Esc, aclose, Ctrl-C): keep what arrived, marked incomplete.
                with suppress(Exception):
                    shown(*filt.close())
                with suppress(Exception):
                    out.flush(complete=False, final=True)

    def _finished(self, res: StreamResult, out: ReplyWriter) -> list[Event]:
        out.flush(complete=res.complete, usage=res, force=True, final=True)
        self.can_retry = False
        self._retry_seq = None
        row = self.record.bill(res)
        return [
            Usage(**res.usage(), session_tokens=row.total_tokens, session_cost_usd=row.cost_usd),
            TurnFinished(
                message_id=out.message_id,
                complete=res.complete,
                stop_reason=res.stop_reason,
                finished=self.record.model.next_concept() is None,
            ),
        ]

    def _failed(self, failure: BaseException | None, out: ReplyWriter) -> list[Event]:
        out.flush(complete=False, final=True)
        events: list[Event] = []
        spent = getattr(failure, "usage", None)
        if _spent(spent):
            # A cut or failed reply was still billed: count it, so the header's cost is true.
            row = self.record.bill(spent)
            events.append(Usage(**spent.usage(), session_tokens=row.total_tokens, session_cost_usd=row.cost_usd))
        if isinstance(failure, BackendError):
            events.append(ErrorEvent(code=failure.code, message=str(failure), retryable=failure.retryable))
        else:
            events.append(ErrorEvent(code=ErrorCode.OTHER, message=str(failure or "the reply ended early"), retryable=True))
        events.append(TurnFinished(message_id=out.message_id, complete=False))
        return events


async def _nothing_to_retry() -> AsyncGenerator[Event, None]:
    yield ErrorEvent(code=ErrorCode.OTHER, message="There is nothing to retry.", retryable=False)
    yield TurnFinished(complete=False)


def _spent(usage: TokenUsage | None) -> TypeGuard[TokenUsage]:
    return usage is not None and bool(usage.input_tokens or usage.output_tokens)
