"""``tutor feedback [FILE] [--json]``, ``tutor feedback export`` and ``tutor feedback import``.

Only argument parsing here; the work is in tutor/authoring/ (report.py, bundles.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tutor.commands._options import db_option

if TYPE_CHECKING:
    from tutor.store import Store

def _open_store(db: str | None) -> Store:
    from tutor.paths import db_path
    from tutor.store import Store

    return Store.open(db_path(db))


SUBCOMMANDS = ("show", "export", "import")


class _FeedbackGroup(click.Group):
    """``tutor feedback FILE`` means ``tutor feedback show FILE``; export/import are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group("feedback", cls=_FeedbackGroup)
def feedback() -> None:
    """Readers' feedback on an explainer, per section; bundles to send it to the author.

    \b
    tutor feedback                      every explainer with feedback
    tutor feedback FILE [--json]        feedback on FILE, grouped by section, newest first
    tutor feedback export FILE -o B     write a bundle (feedback + anonymous stats) to send
    tutor feedback import B...          merge bundles into your database (idempotent)
    """


def _load(file: str):
    from tutor.explainer import load

    return load(file)


@feedback.command("show", short_help="Feedback on FILE, per section (the default).")
@click.argument("file", required=False, type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--html", "html_path", default=None, metavar="PATH", type=click.Path(dir_okay=False),
              help="Also write a page for the author: notes per section and where readers got stuck.")
@click.option("--source", type=click.Choice(["model", "reader", "rules"]), default=None,
              help="Only the tutor's notes (model), readers' own (reader), or the tutor's critique of its own rules (rules).")
@db_option
def show(file: str | None, as_json: bool, html_path: str | None, db: str | None, source: str | None = None) -> None:
    """Show the feedback on FILE (or list every explainer with feedback)."""
    import tempfile
    from pathlib import Path

    from tutor.authoring import report as fb
    from tutor.paths import db_path

    if html_path and file is None:
        raise click.UsageError("--html needs FILE: the explainer to write the page for")
    scratch = None
    if db_path(db).exists():
        store = _open_store(db)
    elif file is None:  # reading creates nothing: no database means no feedback
        click.echo("[]" if as_json else "No feedback yet.")
        return
    else:  # FILE is still checked and summarised, against an empty throwaway database
        from tutor.store import Store

        scratch = tempfile.TemporaryDirectory()
        store = Store.open(Path(scratch.name) / "empty.db")
    try:
        if file is None:
            rows = fb.overview(store)
            if as_json:
                from tutor.text import json_text

                click.echo(json_text([r.model_dump() for r in rows]))
            else:
                click.echo(fb.render_overview(rows), nl=False)
            return
        exp, warning = fb.explainer_for_report(store, file)
        if warning:
            click.echo(f"tutor: {warning}", err=True)
        rep = fb.build_report(store, exp, source=source)
    finally:
        store.close()
        if scratch is not None:
            scratch.cleanup()
    if html_path:
        from tutor.authoring.report_html import render_html
        from tutor.files import atomic_write

        atomic_write(Path(html_path), render_html(rep))
        click.echo(f"wrote {html_path}", err=True)
        return
    if as_json:
        click.echo(rep.model_dump_json(indent=2))
    else:
        click.echo(fb.render_report(rep), nl=False)


@feedback.command("export", short_help="Write a bundle of FILE's feedback for its author.")
@click.argument("file", type=click.Path(path_type=str))
@click.option("-o", "--output", default=None, metavar="BUNDLE", help="Bundle file to write (default: NAME.feedback.jsonl; - for stdout).")
@click.option("--with-transcripts", is_flag=True, help="Also include the session transcripts (off by default).")
@click.option("--force", is_flag=True, help="Overwrite BUNDLE if it exists.")
@click.option("-y", "--yes", is_flag=True, help="Write without showing the bundle and asking first (for scripts).")
@db_option
def export(file: str, output: str | None, with_transcripts: bool, force: bool, yes: bool, db: str | None) -> None:
    """Write FILE's feedback and anonymous per-concept stats to a bundle for its author.

    Shows every note (and, with --with-transcripts, every message) the bundle would carry
    and asks before writing it; --yes skips that, and is needed when stdin is not a terminal.

    \b
    tutor feedback export explainers/wal.md            shows it, asks, writes wal.feedback.jsonl
    tutor feedback export FILE -o - | gzip > b.gz      to stdout (the preview goes to stderr)
    tutor feedback export FILE --yes                   no questions (scripts)
    """
    import sys

    from tutor.authoring import bundles as fb
    from tutor.errors import TutorError
    from tutor.paths import db_path

    exp = _load(file)
    if not db_path(db).exists():
        raise TutorError(f"no sessions yet (database: {db_path(db)})", hint=f"Nothing to send: nobody has opened {file} here.")
    target = fb.bundle_target(exp, output or fb.default_bundle_name(exp), force=force)
    if not yes and not sys.stdin.isatty():
        raise TutorError(
            "not writing the bundle: it is shown to you and confirmed first, and stdin is not a terminal",
            hint="Run it in a terminal to read it first, or add --yes to write it without asking.",
        )
    store = _open_store(db)
    try:
        bundle = fb.build_bundle(store, exp, with_transcripts=with_transcripts)
    finally:
        store.close()
    if not yes:
        to_err = target == "-"  # stdout carries the bundle itself
        click.echo(fb.render_bundle_preview(bundle, target), err=to_err)
        if not click.confirm(f"Write this bundle to {'standard output' if to_err else target}?", default=False, err=to_err):
            click.echo("Nothing written.", err=True)
            raise SystemExit(1)
    res = fb.write_bundle(bundle, target)
    if res.path != "-":
        extra = f", {res.transcripts} transcript(s)" if with_transcripts else " (no transcripts)"
        click.echo(f"wrote {res.path}: {res.feedback} feedback item(s), {res.stats} concept stat(s){extra}", err=True)


@feedback.command("import", short_help="Merge feedback bundles into this database.")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--for", "for_file", default=None, metavar="FILE", help="The explainer these bundles are about (default: found by file name).")
@db_option
def import_(bundles: tuple[str, ...], for_file: str | None, db: str | None) -> None:
    """Merge feedback bundles into this database. Importing a bundle twice adds nothing.

    BUNDLE may be a file, a folder (its *.jsonl files) or a quoted pattern. A bundle that
    cannot be read is reported and skipped; the others are still imported (exit 1).

    \b
    tutor feedback import wal.feedback.jsonl           found by file name
    tutor feedback import b1.jsonl b2.jsonl --for explainers/wal.md
    tutor feedback import inbox/                       every bundle in a folder
    tutor feedback import 'inbox/*.jsonl'              a pattern
    """
    from pathlib import Path

    from tutor.authoring import bundles as fb
    from tutor.errors import TutorError
    from tutor.text import strip_controls

    if for_file is not None and not Path(for_file).is_file():
        raise TutorError(f"{for_file}: no such file", hint="--for names your copy of the explainer the bundles are about")
    paths, missing = _expand_bundles(bundles)
    failed = bool(missing)
    for arg, why in missing:
        click.echo(f"{strip_controls(arg)}: {why}", err=True)
    added = skipped = 0
    store = _open_store(db)
    try:
        for b in paths:
            try:
                res = fb.import_bundle(store, b, for_file=for_file)
            except TutorError as e:  # one bad bundle does not stop the rest
                failed = True
                click.echo(strip_controls(str(e)), err=True)
                continue
            added += res.feedback_added
            skipped += res.feedback_skipped
            dup = f", {res.feedback_skipped} already here" if res.feedback_skipped else ""
            click.echo(
                f"{strip_controls(b)}: {res.feedback_added} new feedback item(s){dup}, {res.stats_added} new concept stat(s)"
                + (f", {res.transcripts_added} transcript(s)" if res.transcripts_added else "")
                + f" -> {strip_controls(res.explainer_path)}"
            )
    finally:
        store.close()
    if len(paths) > 1:
        click.echo(f"{len(paths)} bundles: {added} new feedback item(s), {skipped} already here")
    if failed:
        raise SystemExit(1)


def _expand_bundles(args: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files as given; a folder means its *.jsonl files; an unexpanded pattern is expanded."""
    import glob
    from pathlib import Path

    paths: list[str] = []
    missing: list[tuple[str, str]] = []
    for arg in args:
        p = Path(arg)
        if arg.strip() and p.is_dir():  # Path("") is "."; import_bundle says "no file given"
            found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix == ".jsonl")
            if not found:
                missing.append((arg, "is a directory with no bundles (*.jsonl) in it"))
            paths += found
        elif not p.exists() and any(ch in arg for ch in "*?["):
            found = sorted(f for f in glob.glob(arg) if Path(f).is_file())
            if not found:
                missing.append((arg, "no files match this pattern"))
            paths += found
        else:
            paths.append(arg)
    return paths, missing  # as given: importing one twice is harmless and says so
