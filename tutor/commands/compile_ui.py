"""The author's terminal during ``tutor compile``: a Rich spinner on stderr, the outline and
questions on stdout, answers from stdin. Model text is printed as plain text, never as markup."""

from __future__ import annotations

import sys

import click

from tutor.text import strip_controls, utf8_text


class TerminalUI:
    """The author's terminal: a Rich spinner on stderr, the outline and questions on stdout,
    answers from stdin. Model text is printed as plain text, never as Rich markup."""

    STOP_WORDS = {"stop", "/stop", "done", "q", "quit"}
    SKIP_WORDS = {"skip", "/skip"}

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, markup=False, highlight=False, emoji=False)
        self._explained = False

    def status(self, message: str):
        return self.console.status(message, spinner="dots")

    def info(self, message: str) -> None:

        click.echo(message, err=True)

    def show(self, text: str) -> None:

        click.echo(strip_controls(text))

    def ask(self, question: str, label: str) -> str | None:
        """The answer; "" to skip (Enter or ``skip``); None to stop asking (``stop`` or end of input / Ctrl-D)."""

        if not self._explained:
            click.echo("")
            click.echo("Claude has questions about the gaps. Type an answer and press Enter;")
            click.echo("Enter alone (or `skip`) skips a question; `stop` (or Ctrl-D) stops asking and writes the explainer.")
            self._explained = True
        click.echo("")
        click.echo(f"{strip_controls(label)}: {strip_controls(question)}")
        click.echo("> ", nl=False)
        while True:
            try:
                line = sys.stdin.readline()
                break
            except UnicodeDecodeError:
                click.echo("(that answer was not valid text in this terminal's encoding; type it again)")
                click.echo("> ", nl=False)
        line = utf8_text(line)
        if line == "":
            click.echo("")
            return None
        answer = line.strip()
        if answer.lower() in self.STOP_WORDS:
            return None
        return "" if answer.lower() in self.SKIP_WORDS else answer

