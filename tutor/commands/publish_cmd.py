"""``tutor publish FILE -o DIR [--url URL]``: argument parsing only; the work is in tutor/publish.py."""

from __future__ import annotations

import click


@click.command("publish")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write <name>.html and the raw <name>.md into (created if missing).")
@click.option("--url", default=None, metavar="URL",
              help="Public URL the folder will be served from, for the 'tutor open' command and chatbot links.")
@click.option("--allow-draft", is_flag=True, help="Publish even if the explainer is still a DRAFT skeleton.")
def publish_cmd(file: str, out_dir: str, url: str | None, allow_draft: bool) -> None:
    """Publish an explainer as a self-contained web page plus the raw file beside it.

    \b
    tutor publish explainers/sqlite-wal.md -o site/
    tutor publish explainers/sqlite-wal.md -o site/ --url https://example.org/explainers
    """
    from tutor.errors import TutorError
    from tutor.explainer import load
    from tutor.publish import is_draft, publish
    from tutor.text import escape_controls

    if url is not None and not url.startswith(("http://", "https://")):
        raise click.UsageError(f"--url {url!r} must start with http:// or https://")
    try:
        if not allow_draft and is_draft(load(file)):
            raise click.ClickException(
                f"{escape_controls(file)} is a DRAFT skeleton (summaries start with 'DRAFT:'). "
                "Finish it, or pass --allow-draft to publish it anyway."
            )
        result = publish(file, out_dir, url)
    except TutorError as err:
        raise click.ClickException(escape_controls(str(err))) from None
    except OSError as err:
        raise click.ClickException(f"cannot write to {escape_controls(out_dir)}: {escape_controls(err.strerror or str(err))}") from None
    for w in result.warnings:
        if "DRAFT" not in w:
            click.echo(f"warning: {escape_controls(w)}", err=True)
    click.echo(f"wrote {escape_controls(str(result.page))} and {escape_controls(str(result.raw))}")
