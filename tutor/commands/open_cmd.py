"""``tutor open FILE``: open an explainer (or any Markdown file) with the tutor.

Only parses arguments and delegates: loading to tutor.explainer, the session to
tutor.engine.session, the dialogue to tutor.plain or the Textual app.
"""

from __future__ import annotations

import shlex
import sys

import click

from tutor.commands._options import db_option


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
    help="Give up on a try that has sent no word (nor started thinking) in this long (default 90; 600 with --base-url; $TUTOR_FIRST_TOKEN_TIMEOUT).",
)
@click.option(
    "--reply-timeout",
    "reply_timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    help="Stop a reply that takes longer than this in all, retries and waits included; what arrived is kept (default 300; 1200 with --base-url; "
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
    from tutor.engine.opening import Choice, open_for_reader
    from tutor.paths import db_path

    path = db_path(db)
    prices = {}
    if not offline:  # the reader's prices.yaml, if any
        from tutor.engine.prices import load_prices, prices_path

        prices = load_prices(prices_path(path.parent))
    choice = Choice(new=new, resume=resume, offline=offline, model=model, effort=effort, base_url=base_url,
                    first_token=first_token, reply_timeout=reply_timeout)
    with open_for_reader(file, path, choice, prices=prices) as opened:
        session = opened.session
        if not plain and not (sys.stdin.isatty() and sys.stdout.isatty()):
            plain = True  # not a terminal: the full-screen app cannot run, lines can
        if plain:
            from tutor.plain import run_plain

            return run_plain(session, notices=opened.notices)
        from tutor.app import run_app

        unsent = run_app(session, notices=opened.notices)
        if unsent:
            from tutor.text import escape_controls

            click.echo(f"Not sent (it was queued when you quit): {escape_controls(unsent)}", err=True)
        # Back on the normal screen: say where the session is, as --plain does.
        click.echo(
            f"Session saved. Resume with: tutor open {shlex.quote(str(session.explainer.path))} --resume {session.id[:8]}"
        )
        return 0
