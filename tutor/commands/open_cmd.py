"""``tutor open FILE``: open an explainer (or any Markdown file) with the tutor.

Only parses arguments and delegates: loading to tutor.explainer, the session to
tutor.engine.session, the dialogue to tutor.plain or the Textual app.
"""

from __future__ import annotations

import os
import shlex
import sys

import click

from tutor.commands._options import db_option
from tutor.errors import TutorError


@click.command("open")
@click.argument("file", metavar="FILE")
@click.option("--new", is_flag=True, help="Start a new session even if one is in progress for this file.")
@click.option("--resume", "resume", metavar="ID", default=None, help="Resume the session with this id (or id prefix).")
@click.option("--offline", is_flag=True, help="Use the offline guided mode even if ANTHROPIC_API_KEY is set.")
@click.option("--model", metavar="MODEL", default=None, help="Claude model (default: $TUTOR_MODEL, then a current Sonnet).")
@click.option(
    "--effort",
    type=click.Choice(["low", "medium", "high"], case_sensitive=False),
    envvar="TUTOR_EFFORT",
    default=None,
    help="How hard Claude thinks before each reply (default: low, the quickest; $TUTOR_EFFORT).",
)
@click.option(
    "--base-url",
    "base_url",
    metavar="URL",
    envvar="TUTOR_BASE_URL",
    default=None,
    help="A local Messages-API server (Ollama, llama.cpp, vLLM, LiteLLM) instead of Anthropic's; no key needed, cost 0 ($TUTOR_BASE_URL).",
)
@click.option(
    "--first-token-timeout",
    "first_token",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    help="Give up on a try that has sent no word (nor started thinking) in this long (default 90; $TUTOR_FIRST_TOKEN_TIMEOUT).",
)
@click.option(
    "--reply-timeout",
    "reply_timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    help="Stop a reply that takes longer than this in all, retries and waits included; what arrived is kept (default 300; "
    "$TUTOR_REPLY_TIMEOUT). Also $TUTOR_MAX_REPLY_CHARS (default 20000) and $TUTOR_RETRIES (default 2).",
)
@click.option("--plain", is_flag=True, help="Line-based dialogue on stdin/stdout (pipes, scripts, screen readers).")
@db_option
def open_cmd(
    file: str,
    new: bool,
    resume: str | None,
    offline: bool,
    model: str | None,
    effort: str | None,
    base_url: str | None,
    first_token: float | None,
    reply_timeout: float | None,
    plain: bool,
    db: str | None,
) -> int:
    """Open FILE with the tutor (resumes the last session on it, unless --new).

    FILE is an explainer or any Markdown file (its headings become the outline), or an
    http(s) URL of one: it is downloaded once and kept, so the session reopens offline.

    \b
    tutor open explainers/sqlite-wal.md       the full-screen tutor
    tutor open README.md --new                start afresh
    tutor open FILE --resume 3f2a             a session by id prefix (tutor sessions)
    tutor open FILE --plain                   line by line: screen readers, pipes
    tutor open FILE --offline < answers.txt   scripted, no key needed
    tutor open https://example.org/x.md       a published explainer
    tutor open FILE --base-url http://127.0.0.1:11434 --model llama3.2
                                              a local model (docs/models.md)

    Exit status: 0 saved and ended; 1 a user error (a file that cannot be
    read, a session open elsewhere); 2 bad options; 3 with --plain, the
    session ended on a failed reply (bad key, API overloaded, no
    connection); 130 interrupted.
    """
    if new and resume:
        raise click.UsageError("use either --new or --resume ID, not both")
    if not file.strip():  # Path("") is ".", which read as "tutor: : is a directory" (16.7)
        raise click.UsageError("no file given; name an explainer or any Markdown file: tutor open FILE")
    from tutor.engine.claude import ClaudeBackend, Limits, has_api_key
    from tutor.engine.models import Effort
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.paths import db_path
    from tutor.store import Store
    from tutor.store.lock import SessionLock

    url_notices: list[str] = []
    shown = file  # a URL is shown as the URL, not as its downloaded copy
    if file.lower().startswith(("http://", "https://")):
        from tutor.fetch import fetch

        fetched = fetch(file, db_path(db).parent)  # kept in the data home by URL
        file = str(fetched.path)
        if fetched.offline:
            url_notices.append(f"{fetched.url} cannot be reached: using the copy downloaded before.")
    explainer = load(file, outline_on_error=True)
    shown = shown if shown != file else str(explainer.path)
    notices: list[str] = url_notices + [str(w) for w in explainer.warnings[:1]]
    if len(explainer.warnings) > 1:  # they are for the author: one, and where to see the rest
        more = len(explainer.warnings) - 1
        notices.append(f"{explainer.path}: and {more} more warning{'s' if more != 1 else ''} "
                       f"(see them with: tutor check {shlex.quote(str(explainer.path))})")
    limits = Limits.from_env(first_token=first_token, reply=reply_timeout)  # bad $TUTOR_* values: one clear line
    backend = None
    prices = {} if offline else _prices(db)
    if offline:
        if model:
            notices.append("--model is ignored with --offline.")
    elif base_url and base_url.strip():
        backend = _local_backend(base_url.strip(), model, effort, limits, prices)
    elif not has_api_key():
        notices.append(
            "No ANTHROPIC_API_KEY set: using the offline guided mode. "
            "Set the key (export ANTHROPIC_API_KEY=...) to tutor with Claude."
            + (" (--model is ignored.)" if model else "")
        )
    else:
        backend = ClaudeBackend(model, effort=Effort.parse(effort), limits=limits, prices=prices)
    if backend is not None:  # an unknown model id: said once, before the first turn
        notices.extend(backend.notices)
        backend.notices.clear()
    store = Store.open(db_path(db))
    notices.extend(store.notices)  # a repair made at open, such as the search index rebuilt
    session = TutorSession.open(explainer, store, backend=backend, session_id=resume, new=new)
    lock = SessionLock(db_path(db), session.id)
    if not lock.acquire():
        store.close()
        raise TutorError(
            f"session {session.id[:8]} is open in another tutor (another window or terminal)",
            hint="Carry on there, or quit it first; or start a separate session here with --new.",
        )
    if session.resumed:
        notices.append(f"Resuming session {session.id[:8]} (start over with --new).")
        if session.explainer_changed:
            notices.append(f"{shown} changed since this session started; your progress is kept.")
        if session.created_mode != session.mode:
            notices.append(f"This session was started in {session.created_mode} mode; continuing in {session.mode} mode.")
    elif not new and not resume:
        # Only active sessions resume by themselves; say where a finished one went.
        done = [r for r in store.list_sessions(explainer_path=explainer.path, limit=5) if r.id != session.id]
        if done and done[0].status == "finished":
            notices.append(
                f"Your last session on this file ({done[0].id[:8]}) is finished, so this is a new one. "
                f"Reopen that one with --resume {done[0].id[:8]}."
            )
    if not plain and not (sys.stdin.isatty() and sys.stdout.isatty()):
        plain = True  # not a terminal: the full-screen app cannot run, lines can
    try:
        if plain:
            from tutor.plain import run_plain

            return run_plain(session, notices=notices)
        try:
            from tutor.app import run_app
        except ImportError as e:  # pragma: no cover - the app ships with tutor
            click.echo(f"tutor: the reader app is not available ({e}); use --plain.", err=True)
            return 1
        unsent = run_app(session, notices=notices)
        if unsent:
            from tutor.text import escape_controls

            click.echo(f"Not sent (it was queued when you quit): {escape_controls(unsent)}", err=True)
        # Back on the normal screen: say where the session is, as --plain does.
        click.echo(
            f"Session saved. Resume with: tutor open {shlex.quote(str(explainer.path))} --resume {session.id[:8]}"
        )
        return 0
    finally:
        store.close()
        lock.release()


def _prices(db: str | None) -> dict:
    """The reader's prices.yaml (beside the database, or $TUTOR_PRICES); {} when there is none."""
    from tutor.engine.prices import load_prices, prices_path
    from tutor.paths import db_path

    return load_prices(prices_path(db_path(db).parent))


def _local_backend(url: str, model: str | None, effort: str | None, limits, prices: dict | None = None):
    """A back end for a server that is not Anthropic's. Without --model, ask the server's
    model list first (in its own event loop and client: the session runs in another loop)."""
    import asyncio

    from tutor.engine.claude import ClaudeBackend
    from tutor.engine.models import Effort

    if not (model or os.environ.get("TUTOR_MODEL", "").strip()):
        probe = ClaudeBackend(None, base_url=url, local=True, max_retries=0, timeout=10.0)

        async def ask() -> str:
            try:
                return await probe.resolve_server_model()
            finally:
                await probe.aclose()

        model = asyncio.run(ask())
    return ClaudeBackend(model, base_url=url, local=True, effort=Effort.parse(effort), limits=limits, prices=prices)
