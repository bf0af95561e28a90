"""`tutor sessions`, `tutor sessions rm`, `tutor search`, `tutor export`, `tutor where`.

Only argument parsing and printing: the work is in tutor.store and tutor.export. Titles,
snippets and transcripts are untrusted text, so they go out through click.echo as plain
strings with control characters made visible -- never through a markup renderer.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import click

from tutor.commands._options import db_option
from tutor.errors import TutorError
from tutor.text import escape_controls, local_time, plural


def db_location(db: str | None):
    """tutor.paths.db_location, imported on use: it needs pydantic, which --help does not."""
    from tutor.paths import db_location as locate

    return locate(db)


def _open_store(db: str | None, *, create: bool = False):
    """The store, or None when no database exists yet (read-only commands create nothing)."""
    from tutor.store import Store

    path = db_location(db).path
    if not create and not path.exists():
        return None
    store = Store.open(path, create=create)
    for line in store.notices:  # a repair made at open (the search index rebuilt): one quiet line
        click.echo(f"tutor: {line}", err=True)
    return store


def _session_or_none(store, sid: str):
    from tutor.errors import StoreError

    try:
        return store.get_session(sid)
    except StoreError:
        return None


def _say_skipped(store) -> None:
    """A listing leaves damaged rows out (Store.skipped); say so in one line on stderr."""
    if store.skipped:
        more = len(store.skipped) - 1
        click.echo(f"tutor: left out {store.skipped[0]}" + (f" (and {more} more damaged rows)" if more else ""), err=True)


def _cols(text: str) -> int:
    """Terminal columns: CJK and emoji take two, combining marks none."""
    import unicodedata

    return sum(
        2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text
    )


def _fit(text: str, width: int) -> str:
    text = " ".join(escape_controls(text).split())
    if _cols(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        used += _cols(ch)
        if used > width - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def _squash(text: str) -> str:
    """One line, control characters visible, runs of whitespace as one space."""
    return re.sub(r"\s+", " ", escape_controls(text))


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max([_cols(h)] + [_cols(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        pads = [" " * (widths[i] - _cols(c)) for i, c in enumerate(cells)]
        out = [pads[i] + c if i in right else c + pads[i] for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def _file_hash(path: str) -> str | None:
    """The explainer file's hash, or None when it cannot be read (gone, a FIFO, too big)."""
    from tutor.errors import TutorError
    from tutor.explainer import MAX_FILE_BYTES
    from tutor.files import safe_read_bytes

    try:
        return hashlib.sha256(safe_read_bytes(path, MAX_FILE_BYTES)).hexdigest()
    except (OSError, TutorError):
        return None


# -- tutor sessions ------------------------------------------------------------------------

# Any --limit above this is taken as "all of them": SQLite's LIMIT is a 64-bit integer and
# 99999999999999999999 overflowed it with a traceback (16.5).
LIMIT = click.IntRange(min=1, max=1_000_000, clamp=True)


@click.group("sessions", invoke_without_command=True)
@click.option("--explainer", "explainer", metavar="FILE", help="Only sessions of this explainer file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per session).")
@click.option("--limit", "-n", type=LIMIT, default=50, show_default=True, help="How many to show.")
@click.option("--all", "show_all", is_flag=True, help="Show every session.")
@db_option
@click.pass_context
def sessions(ctx: click.Context, explainer: str | None, as_json: bool, limit: int, show_all: bool, db: str | None) -> None:
    """List reader sessions, most recently active first.

    \b
    tutor sessions                      the 50 most recent
    tutor sessions --explainer FILE     sessions of one explainer
    tutor sessions --all --json         every session, for scripts
    tutor sessions rm ID...             remove sessions (IDs may be unique prefixes)
    """
    if ctx.invoked_subcommand is not None:
        return
    store = _open_store(db)
    if store is None:
        if as_json:
            click.echo("[]")
        else:
            click.echo(f"No sessions yet (database: {db_location(db).path}).")
        return
    with store:
        filt = {}
        if explainer:
            filt = {"explainer_path": explainer, "explainer_hash": _file_hash(explainer)}
        rows = store.list_sessions(**filt, limit=None if show_all else limit)
        total = store.count_sessions(**filt) if not show_all and len(rows) == limit else len(rows)
        _say_skipped(store)
    if as_json:
        out = []
        for r in rows:
            d = r.model_dump()
            d["total_tokens"] = r.total_tokens
            out.append(d)
        from tutor.text import json_text

        click.echo(json_text(out))
        return
    if not rows:
        what = f" for {explainer}" if explainer else ""
        click.echo(f"No sessions{what}.")
        return
    table = [
        [
            r.id[:8],
            _fit(r.explainer_title or Path(r.explainer_path).name, 40),
            local_time(r.started),
            local_time(r.updated),
            str(r.turn_count),
            _fit(r.mode, 28),
            f"${r.cost_usd:.4f}" if r.cost_usd else "-",
            "" if r.status == "active" else r.status,
        ]
        for r in rows
    ]
    for line in _table(["ID", "EXPLAINER", "STARTED", "LAST ACTIVE", "TURNS", "MODE", "COST", ""], table, {4, 6}):
        click.echo(line)
    if total > len(rows):
        click.echo(f"({len(rows)} of {total} sessions; --all or --limit N shows more)", err=True)


@sessions.command("rm")
@click.argument("ids", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
def sessions_rm(ids: tuple[str, ...], yes: bool, db: str | None) -> None:
    """Remove sessions (with their messages, reader model and feedback).

    \b
    tutor sessions rm 3f2a              asks first; an id prefix is enough
    tutor sessions rm 3f2a 9c1e --yes   no question (scripts)
    """
    store = _open_store(db)
    if store is None:
        raise TutorError(f"no sessions yet (database: {db_location(db).path})")
    with store:
        full = [store.resolve_session_id(i) for i in ids]  # all or nothing: check every id first
        full = list(dict.fromkeys(full))
        rows = [_session_or_none(store, i) for i in full]  # a damaged row can still be removed
        from tutor.store.lock import SessionLock

        locks = [SessionLock(db_location(db).path, i) for i in full]  # not from under a running tutor
        for lock in locks:
            lock.acquire()
        for lock in locks:
            lock.release()  # (one close drops this process's locks on the file: the check is done)
        busy = [i for i, lock in zip(full, locks) if lock.busy]
        if busy:
            raise TutorError(f"session {busy[0][:8]} is open in another tutor; nothing removed",
                             hint="Quit that tutor first, then remove the session.")
        if not yes:
            for i, r in zip(full, rows):
                if r is None:
                    click.echo(f"  {i[:8]}  (a damaged row)")
                    continue
                title = _fit(r.explainer_title or Path(r.explainer_path).name, 50)
                click.echo(f"  {r.id[:8]}  {title}  ({plural(r.turn_count, 'turn')}, last active {local_time(r.updated)})")
            noun = "session" if len(rows) == 1 else "sessions"
            try:
                ok = click.confirm(f"Remove {len(rows)} {noun}? This cannot be undone", default=False)
            except click.exceptions.Abort:  # Ctrl-C at a terminal, or no answer (stdin closed)
                click.echo()
                if sys.stdin.isatty():
                    click.echo("Nothing removed.")
                    raise SystemExit(130) from None
                raise TutorError("nothing removed: no answer to the question",
                                 hint="Add --yes to remove without asking.") from None
            if not ok:
                click.echo("Nothing removed.")
                return
        n = store.delete_sessions(full)
    click.echo(f"Removed {n} session{'s' if n != 1 else ''}.")


# -- tutor search --------------------------------------------------------------------------


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", "-n", type=LIMIT, default=20, show_default=True, help="Show at most N messages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--rank", is_flag=True, help="Best matches first (default: newest first).")
@db_option
def search(query: tuple[str, ...], limit: int, as_json: bool, rank: bool, db: str | None) -> None:
    """Search all transcripts for words, newest first.

    Every word must occur; end a word with * to match a prefix (check*). Quotes,
    AND/OR/NOT and other search syntax are treated as plain words.

    \b
    tutor search checkpoint             messages that mention checkpoints
    tutor search 'check*' wal --rank    best matches first
    tutor search fsync --json           for scripts
    """
    from tutor.store import SNIPPET_END, SNIPPET_START

    text = " ".join(query)
    if not text.strip():
        raise TutorError("no words to search for", hint="Search for words: tutor search checkpoint.")
    store = _open_store(db)
    hits = []
    if store is not None:
        with store:
            hits = store.search(text, limit=limit, order="rank" if rank else "newest")
            _say_skipped(store)
    if as_json:
        out = [h.model_dump() | {"snippet": h.snippet.replace(SNIPPET_START, "").replace(SNIPPET_END, "")} for h in hits]
        from tutor.text import json_text

        click.echo(json_text(out))
        return
    if not hits:
        click.echo(f"No messages match {text!r}.")
        return
    for h in hits:
        title = _fit(h.explainer_title, 40)
        click.echo(f"{h.session_id[:8]}  {title}  #{h.seq} {h.role}  {local_time(h.created)}")
        out = []
        for i, part in enumerate(h.snippet.split(SNIPPET_START)):
            hit, _, rest = part.partition(SNIPPET_END) if i else ("", "", part)
            if hit:
                out.append(click.style(_squash(hit), bold=True))
            out.append(_squash(rest))
        snippet = "".join(out)
        click.echo(f"    {snippet}")


# -- tutor export --------------------------------------------------------------------------


@click.command("export")
@click.argument("session_id", required=False)
@click.option("--last", is_flag=True, help="Export the most recently active session.")
@click.option("--format", "-f", "fmt", type=click.Choice(["md", "json", "html"]), default=None,
              help="Output format (default: from the -o extension, else md).")
@click.option("--output", "-o", "output", metavar="FILE",
              help="Write here instead (a folder: the usual name in it; - for stdout).")
@click.option("--include-feedback", is_flag=True, help="Include feedback for the author (left out by default).")
@click.option("--include-paths", is_flag=True,
              help="Name the explainer by its full path (by default only its file name, not your folders).")
@click.option("--force", is_flag=True, help="Overwrite the -o file if it exists.")
@db_option
def export(session_id: str | None, last: bool, fmt: str | None, output: str | None,
           include_feedback: bool, include_paths: bool, force: bool, db: str | None) -> None:
    """Export a session transcript as Markdown, JSON or a self-contained HTML page.

    Written to tutor-<title>-<id>.<format> in the current folder, like Ctrl+S in the app;
    the path is printed. SESSION_ID may be a unique prefix, as shown by `tutor sessions`.

    \b
    tutor export --last                 tutor-<title>-<id>.md here
    tutor export 3f2a -o talk.html      a page to share (format from the extension)
    tutor export --last -f html         tutor-<title>-<id>.html here
    tutor export 3f2a -f json -o -      everything, on stdout, for scripts
    """
    from tutor.export import write_export

    if bool(session_id) == bool(last):
        raise TutorError("give a session id or --last (not both)", hint="List sessions with `tutor sessions`.")
    store = _open_store(db)
    if store is None:
        raise TutorError(f"no sessions yet (database: {db_location(db).path})")
    with store:
        if last:
            row = store.latest_session()
            if row is None:
                raise TutorError("no sessions yet", hint="Start one with `tutor open FILE`.")
            sid = row.id
        else:
            sid = store.resolve_session_id(session_id or "")
        done = write_export(store, sid, fmt=fmt, output=output, include_feedback=include_feedback,
                            include_paths=include_paths, force=force)
    if done.path is None:
        click.echo(done.text, nl=False)
    else:
        click.echo(f"Wrote {done.path}", err=output is not None)


# -- tutor where ---------------------------------------------------------------------------


@click.command("where")
@db_option
def where(db: str | None) -> None:
    """Print the session database in use, and which rule chose it.

    \b
    tutor where                         the database sessions go to
    tutor where --db PATH               what --db PATH would use
    """
    loc = db_location(db)
    click.echo(str(loc.path))
    click.echo(f"  chosen because: {loc.reason}")
    if loc.path.exists():
        from tutor.store import Store

        with Store.open(loc.path, create=False) as store:
            n = store.count_sessions()
            click.echo(f"  {n} session{'s' if n != 1 else ''}, schema version {store.schema_version}")
    else:
        click.echo("  (not created yet: it is made when you first open an explainer)")
    from tutor.engine.prices import load_prices, prices_path

    pp = prices_path(loc.path.parent)
    if pp.exists():
        n = len(load_prices(pp))
        click.echo(f"{pp}\n  your prices for {n} model{'s' if n != 1 else ''} (docs/models.md, \"Your own prices\")")
