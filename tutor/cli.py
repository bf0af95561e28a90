"""The ``tutor`` command line: a click group that only parses and delegates.

Each command lives in ``tutor/commands/<name>.py`` and is imported only when it runs,
so ``tutor --help`` never imports textual or anthropic.
"""

from __future__ import annotations

import importlib
import sys

import click

from tutor import __version__

# name -> (module, attribute, one-line help shown by `tutor --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "open": ("tutor.commands.open_cmd", "open_cmd", "Open an explainer (or any Markdown file) with the tutor."),
    "check": ("tutor.commands.check", "check", "Validate explainer files."),
    "compile": ("tutor.commands.compile_cmd", "compile_cmd", "Turn rough notes into an explainer."),
    "feedback": ("tutor.commands.feedback", "feedback", "Show readers' feedback on an explainer, per section."),
    "sessions": ("tutor.commands.sessions", "sessions", "List or remove reader sessions."),
    "search": ("tutor.commands.sessions", "search", "Search all transcripts."),
    "export": ("tutor.commands.sessions", "export", "Export a session transcript (md, json, html)."),
    "where": ("tutor.commands.sessions", "where", "Print where tutor keeps its data."),
    "eval": ("tutor.commands.eval_cmd", "eval_cmd", "Measure the teaching with simulated readers."),
    "publish": ("tutor.commands.publish_cmd", "publish_cmd", "Publish an explainer as a static web page."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # A mistyped command gets a suggestion, like git's "did you mean".
        if args and args[0] not in COMMANDS and not args[0].startswith("-"):
            import difflib

            close = difflib.get_close_matches(args[0], list(COMMANDS), n=1, cutoff=0.6)
            hint = f" Did you mean 'tutor {close[0]}'?" if close else ""
            ctx.fail(f"No such command {args[0]!r}.{hint} See 'tutor --help'.")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Use the static help so listing commands imports nothing.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tutor")
def cli() -> None:
    """tutor: explainers that teach themselves.

    \b
    Readers:  tutor open explainers/sqlite-wal.md     (any Markdown file works)
              tutor sessions                          your sessions, newest first
              tutor search checkpoint                 search every transcript
              tutor export --last -o talk.html        md, json or html
    Authors:  tutor compile notes/ -o explainers/topic.md
              tutor check explainers/topic.md
              tutor feedback explainers/topic.md
              tutor eval explainers/ --offline        measure the teaching
    Data:     tutor where                             the database in use

    Set ANTHROPIC_API_KEY to tutor with Claude; without it tutor runs an offline
    guided mode.
    """


def main() -> None:
    """Entry point: user errors print one or two lines and exit 1, never a traceback."""
    from tutor.errors import TutorError

    try:
        rc = cli.main(standalone_mode=False)
        if isinstance(rc, int):
            sys.exit(rc)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except TutorError as e:
        click.echo(f"tutor: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
