"""Cassettes: a live eval run's model calls, saved so CI can replay them without a key.

``tutor eval --live --record DIR`` wraps the real back end in ``Recorder``, which saves each
call's request (system and messages) and the raw reply text, tags included. ``tutor eval
--replay DIR`` plays them back through ``Player``, a back end that answers from the file, so
the tag filter, the trust rules for state tags and the reader model meet real model output
on every CI run. The simulated reader is deterministic, so a replay asks what the recording
asked; a request that differs from the recorded one is counted as divergence.
Format: docs/eval.md ("Cassettes").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor.engine.backend import BackendEvent, Finished, TextPiece, ThinkingStarted
from tutor.engine.models import CallKind, Effort
from tutor.errors import ErrorCode, TutorError

FORMAT = "tutor-eval-cassette/1"


def _last_reader_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
    return ""


async def _last_result(events: AsyncIterator[BackendEvent]) -> Any:
    """``complete()`` for a back end that streams: the result its ``Finished`` carries."""
    result = None
    async for ev in events:
        if isinstance(ev, Finished):
            result = ev.result
    return result


@dataclass
class Recorder:
    """A back end that passes every call to ``inner`` and keeps a copy of it."""

    inner: Any
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def model(self) -> str:
        return str(self.inner.model)

    @property
    def notices(self) -> list[str]:
        return list(getattr(self.inner, "notices", []))

    async def events(self, *, system: list[dict], messages: list[dict], kind: CallKind,
                     effort: Effort | None = None) -> AsyncIterator[BackendEvent]:
        parts: list[str] = []
        entry: dict[str, Any] = {"kind": kind.value, "request": {"system": system, "messages": messages}}
        self.calls.append(entry)
        async for ev in self.inner.events(system=system, messages=messages, kind=kind, effort=effort):
            if isinstance(ev, TextPiece):
                parts.append(ev.text)
            elif isinstance(ev, Finished):
                entry["stop_reason"] = ev.result.stop_reason
                entry["usage"] = ev.result.usage()
            entry["reply"] = "".join(parts)
            yield ev

    async def complete(self, *, system: list[dict], messages: list[dict], kind: CallKind) -> Any:
        return await _last_result(self.events(system=system, messages=messages, kind=kind))

    async def aclose(self) -> None:
        await self.inner.aclose()

    def save(self, path: Path, *, explainer: Any, persona: str, seed: int) -> None:
        from tutor.files import atomic_write

        data = {"format": FORMAT, "explainer": Path(explainer.path).name, "explainer_hash": explainer.content_hash,
                "persona": persona, "seed": seed, "model": self.model, "calls": self.calls}
        atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1))


@dataclass
class Cassette:
    path: Path
    explainer: str
    explainer_hash: str
    persona: str
    seed: int
    model: str
    calls: list[dict[str, Any]]


def read(path: Path) -> Cassette:
    """A cassette file, or a TutorError that names it and says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TutorError(f"{path}: not a readable cassette ({type(exc).__name__.replace('Error', '').lower() or 'unreadable'})",
                         hint="Record it again with: tutor eval FILE --live --record DIR") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("calls"), list):
        raise TutorError(f"{path}: not a {FORMAT} file", hint="Record it again with: tutor eval FILE --live --record DIR")
    try:
        return Cassette(path, str(data["explainer"]), str(data["explainer_hash"]), str(data["persona"]),
                        int(data["seed"]), str(data.get("model", "")), list(data["calls"]))
    except (KeyError, TypeError, ValueError):
        raise TutorError(f"{path}: a cassette needs explainer, explainer_hash, persona and seed") from None


@dataclass
class Player:
    """A back end that answers each call with the next recorded reply."""

    cassette: Cassette
    position: int = 0
    divergent: int = 0  # calls whose reader message differs from the recording
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"replay:{self.cassette.model}"

    @property
    def model(self) -> str:
        return self.cassette.model

    async def events(self, *, system: list[dict], messages: list[dict], kind: CallKind,
                     effort: Effort | None = None) -> AsyncIterator[BackendEvent]:
        from tutor.engine.claude import BackendError, StreamResult

        if self.position >= len(self.cassette.calls):
            raise BackendError(ErrorCode.OTHER, f"{self.cassette.path.name}: no recorded reply left for call {self.position + 1}",
                               retryable=False)
        call = self.cassette.calls[self.position]
        self.position += 1
        recorded = call.get("request", {}).get("messages", [])
        if _last_reader_text(recorded) != _last_reader_text(messages):
            self.divergent += 1
        yield ThinkingStarted()
        reply = str(call.get("reply", ""))
        for i in range(0, len(reply), 40):  # in pieces, as a stream would bring it
            yield TextPiece(reply[i : i + 40])
        # tokens as recorded; a replay itself costs nothing
        got = call.get("usage") or {}

        def n(key: str) -> int:
            return int(got.get(key) or 0)

        stop = call.get("stop_reason") or "end_turn"
        yield Finished(StreamResult(text=reply, stop_reason=stop, complete=stop != "max_tokens",
                                  input_tokens=n("input_tokens"), output_tokens=n("output_tokens"),
                                  cache_creation_input_tokens=n("cache_creation_input_tokens"),
                                  cache_read_input_tokens=n("cache_read_input_tokens")))

    async def complete(self, *, system: list[dict], messages: list[dict], kind: CallKind) -> Any:
        return await _last_result(self.events(system=system, messages=messages, kind=kind))

    async def aclose(self) -> None:
        return None
