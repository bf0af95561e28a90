"""``tutor compile NOTES... -o explainers/NAME.md``: parse arguments, delegate to tutor.authoring."""

from __future__ import annotations

import click

from tutor.commands._options import db_option


@click.command("compile")
@click.argument("notes", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, metavar="FILE", help="Where to write the explainer (e.g. explainers/NAME.md).")
@click.option("--offline", is_flag=True, help="No Claude: build a valid skeleton from the notes' headings and paragraphs.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--no-questions", is_flag=True, help="Do not ask clarifying or follow-up questions; write straight from the notes.")
@click.option("--resume", "resume", is_flag=True, help="Continue an interrupted compile for the same output file.")
@click.option("--max-questions", type=click.IntRange(0, 20), default=6, show_default=True, help="Ask at most this many questions.")
@click.option("--title", default=None, help="Explainer title (default: the notes' first heading).")
@click.option("--author", default="", help="Author name for the front matter.")
@click.option("--feedback", "feedback", default=None, metavar="ADDRESS",
              help="Where readers send notes (email or URL), for the front matter. Asked for when omitted at a terminal.")
@click.option("--model", default=None, metavar="MODEL", help="Claude model (default: $TUTOR_MODEL, then a current Sonnet).")
@click.option(
    "--reply-timeout",
    "reply_timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    help="Stop a call to Claude that takes longer than this in all, retries included; your answers stay saved for "
    "--resume (default 900; $TUTOR_COMPILE_TIMEOUT; the first word: $TUTOR_FIRST_TOKEN_TIMEOUT, default 90).",
)
@db_option
def compile_cmd(
    notes: tuple[str, ...],
    output: str,
    offline: bool,
    force: bool,
    no_questions: bool,
    resume: bool,
    max_questions: int,
    title: str | None,
    author: str,
    feedback: str | None,
    model: str | None,
    reply_timeout: float | None,
    db: str | None,
) -> None:
    """Turn rough notes (Markdown or text files, or folders of them) into an explainer.

    With a key, Claude drafts an outline, asks you about the gaps one question at
    a time (answer, press Enter to skip, or type `stop`), may follow up on your
    answers (twice at most), then writes the explainer in format v1 and lists its
    notes on your notes. Without one, use --offline for a skeleton you fill in yourself.

    \b
    tutor compile notes/ -o explainers/topic.md             with Claude
    tutor compile notes/*.md -o draft.md --offline          a skeleton, no key
    tutor compile notes/ -o explainers/topic.md --resume    carry on after a break
    """
    import sys
    from pathlib import Path

    from tutor.authoring import compile as comp
    from tutor.commands.compile_ui import TerminalUI
    from tutor.explainer import FEEDBACK_RE
    from tutor.files import atomic_write

    if feedback is None and sys.stdin.isatty() and not no_questions:
        feedback = click.prompt(
            "Where should readers send feedback? (email or URL, Enter to skip)", default="", show_default=False
        )
    feedback = (feedback or "").strip()
    if feedback and not FEEDBACK_RE.match(feedback):
        raise click.BadParameter(f"{feedback!r} is neither an email address nor an http(s) URL", param_hint="--feedback")

    def add_feedback() -> None:
        if feedback and Path(output).is_file():
            text = Path(output).read_text(encoding="utf-8")
            atomic_write(Path(output), comp.with_feedback(text, feedback))

    if offline:
        out, exp = comp.compile_offline(list(notes), output, force=force, title=title, author=author)
        add_feedback()
        n = len(exp.concepts)
        click.echo(f"wrote {out}: {n} concept{'s' if n != 1 else ''} (a skeleton: `tutor check {out}` lists the DRAFT markers left to write)")
        return
    from tutor.engine.claude import Limits

    comp.compile_with_claude(
        list(notes),
        output,
        force=force,
        questions=not no_questions,
        max_questions=max_questions,
        resume=resume,
        title=title,
        author=author,
        model=model,
        db=db,
        limits=Limits.from_env(long_reply=reply_timeout),  # a bad $TUTOR_* value: one clear line
        ui=TerminalUI(),
    )
    add_feedback()
