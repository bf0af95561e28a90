"""Opening a file for a reader: everything ``tutor open`` does before the dialogue starts.

One function, so the CLI only parses options and the app and the plain dialogue only show
what it returns: the session, the store it writes to, the lock that keeps a second tutor off
it, and typed notices (the app decides how to show each kind, never by reading the words).
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tutor.engine.claude import ClaudeBackend, Limits, has_api_key, is_anthropic_url
from tutor.engine.models import Effort
from tutor.engine.notices import NoticeKind, StartNotice
from tutor.engine.session import TutorSession
from tutor.errors import TutorError
from tutor.explainer import Explainer, load
from tutor.store import Store
from tutor.store.lock import SessionLock
from tutor.text import plural

if TYPE_CHECKING:
    from tutor.engine.prices import Prices


@dataclass
class Opened:
    """A session ready for a dialogue. A context manager: leaving it closes the store and
    releases the lock, whatever the dialogue did."""

    session: TutorSession
    store: Store
    lock: SessionLock
    notices: list[StartNotice] = field(default_factory=list)

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self.lock.release()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class Choice:
    """What the reader asked for on the command line (or in the environment)."""

    new: bool = False
    resume: str | None = None
    offline: bool = False
    model: str | None = None
    effort: str | None = None
    base_url: str | None = None
    first_token: float | None = None  # --first-token-timeout
    reply_timeout: float | None = None  # --reply-timeout

    @property
    def url(self) -> str:
        """The base URL as given, stripped; "" for none (spaces alone are none)."""
        return (self.base_url or "").strip()

    def limits(self) -> Limits:
        """The turn limits: options over $TUTOR_* over the defaults, a local server's longer ones
        for a base URL that is not Anthropic's. A bad $TUTOR_* value is one clear TutorError."""
        local = not self.offline and bool(self.url) and not is_anthropic_url(self.url)
        return Limits.from_env(first_token=self.first_token, reply=self.reply_timeout, local=local)


def open_for_reader(file: str, db: Path, choice: Choice, *, prices: dict[str, Prices] | None = None) -> Opened:
    """Fetch (for a URL), load, pick the back end, open the store and the session and lock it.

    Raises TutorError with what to do next; nothing is left open when it does."""
    limits = choice.limits()  # before anything is fetched or opened
    notices: list[StartNotice] = []
    shown = file  # a URL is shown as the URL, not as its downloaded copy
    file = _fetched(file, db.parent, notices)
    explainer = load(file, outline_on_error=True)
    shown = shown if shown != file else str(explainer.path)
    notices += _warnings(explainer)
    backend = _backend(choice, limits, prices or {}, notices)
    store = Store.open(db)
    lock: SessionLock | None = None
    try:
        notices += [StartNotice(NoticeKind.SETUP, n) for n in store.notices]  # a repair made at open
        session = TutorSession.open(explainer, store, backend=backend, session_id=choice.resume, new=choice.new)
        lock = SessionLock(db, session.id)
        if not lock.acquire():
            raise TutorError(
                f"session {session.id[:8]} is open in another tutor (another window or terminal)",
                hint="Carry on there, or quit it first; or start a separate session here with --new.",
            )
        notices += _resume_notices(session, store, shown, choice)
        return Opened(session, store, lock, notices)
    except BaseException:
        if lock is not None:
            lock.release()  # nothing to release when it was refused
        store.close()
        raise


def _fetched(file: str, home: Path, notices: list[StartNotice]) -> str:
    if not file.lower().startswith(("http://", "https://")):
        return file
    from tutor.fetch import fetch

    fetched = fetch(file, home)  # kept in the data home by URL
    if fetched.offline:
        notices.append(StartNotice(NoticeKind.SETUP, f"{fetched.url} cannot be reached: using the copy downloaded before."))
    return str(fetched.path)


def _warnings(explainer: Explainer) -> list[StartNotice]:
    """The explainer's warnings are for its author: the first, and where to see the rest."""
    out = [StartNotice(NoticeKind.SETUP, str(w)) for w in explainer.warnings[:1]]
    if len(explainer.warnings) > 1:
        more = len(explainer.warnings) - 1
        out.append(StartNotice(
            NoticeKind.SETUP,
            f"{explainer.path}: and {plural(more, 'more warning')} "
            f"(see them with: tutor check {shlex.quote(str(explainer.path))})",
        ))
    return out


def _backend(choice: Choice, limits: Limits, prices: dict[str, Prices], notices: list[StartNotice]) -> ClaudeBackend | None:
    """None means the offline guide: asked for, or no key and no local server."""
    backend = None
    if choice.offline:
        if choice.model:
            notices.append(StartNotice(NoticeKind.SETUP, "--model is ignored with --offline."))
    elif choice.url:
        backend = local_backend(choice.url, choice.model, choice.effort, limits, prices)
    elif not has_api_key():
        notices.append(StartNotice(
            NoticeKind.SETUP,
            "No ANTHROPIC_API_KEY set: using the offline guided mode. "
            "Set the key (export ANTHROPIC_API_KEY=...) to tutor with Claude."
            + (" (--model is ignored.)" if choice.model else ""),
        ))
    else:
        backend = ClaudeBackend(choice.model, effort=Effort.parse(choice.effort), limits=limits, prices=prices)
    if backend is not None:  # an unknown model id: said once, before the first turn
        notices += [StartNotice(NoticeKind.SETUP, n) for n in backend.notices]
        backend.notices.clear()
    return backend


def local_backend(url: str, model: str | None, effort: str | None, limits: Limits | None, prices: dict[str, Prices] | None = None) -> ClaudeBackend:
    """A back end for a server that is not Anthropic's. Without a model, ask the server's
    model list first (in its own event loop and client: the session runs in another loop)."""
    if not (model or os.environ.get("TUTOR_MODEL", "").strip()):
        probe = ClaudeBackend(None, base_url=url, local=True, max_retries=0, timeout=10.0)

        async def ask() -> str:
            try:
                return await probe.resolve_server_model()
            finally:
                await probe.aclose()

        model = asyncio.run(ask())
    return ClaudeBackend(model, base_url=url, local=True, effort=Effort.parse(effort), limits=limits, prices=prices)


def _resume_notices(session: TutorSession, store: Store, shown: str, choice: Choice) -> list[StartNotice]:
    if session.resumed:
        out = [StartNotice(NoticeKind.RESUMED, f"Resuming session {session.id[:8]} (start over with --new).")]
        if session.explainer_changed:
            out.append(StartNotice(NoticeKind.CHANGED, f"{shown} changed since this session started; your progress is kept."))
        if session.created_mode != session.mode:
            out.append(StartNotice(
                NoticeKind.SETUP,
                f"This session was started in {session.created_mode} mode; continuing in {session.mode} mode.",
            ))
        return out
    if choice.new or choice.resume:
        return []
    # Only active sessions resume by themselves; say where a finished one went.
    done = [r for r in store.list_sessions(explainer_path=session.explainer.path, limit=5) if r.id != session.id]
    if done and done[0].status == "finished":
        return [StartNotice(
            NoticeKind.SETUP,
            f"Your last session on this file ({done[0].id[:8]}) is finished, so this is a new one. "
            f"Reopen that one with --resume {done[0].id[:8]}.",
        )]
    return []
