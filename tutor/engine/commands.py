"""Reader commands: what a reader asks of the software rather than of the tutor.

A command is stored as the ``raw`` of an ordinary reader message ("/skip pages"), so the
transcript reads naturally ("Let's skip pages for now.") and replaying a session is exact.
This is the one parser of that stored form; ``--plain`` parses what the reader types with
``typed_command``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    SKIP = "/skip"  # skip the concept in play (not marked known)
    KNOW = "/know"  # "I already know X"
    EXPLAIN = "/explain"  # "explain X (again)"
    MORE = "/more"  # offline: Enter alone, read on
    CONTINUE = "/continue"  # Claude: Enter alone, go on


@dataclass(frozen=True)
class ReaderCommand:
    command: Command
    concept_id: str = ""

    @property
    def raw(self) -> str:
        """The stored form: the command, then the concept id when there is one."""
        return f"{self.command.value} {self.concept_id}" if self.concept_id else self.command.value

    @classmethod
    def parse(cls, raw: str | None) -> ReaderCommand | None:
        """The command a stored reader message carries, or None for plain text."""
        if not raw or not raw.startswith("/"):
            return None
        name, _, arg = raw.partition(" ")
        try:
            return cls(Command(name), arg.strip())
        except ValueError:
            return None


# What the reader may type in --plain (aliases on the left), beside plain text for the tutor.
TYPED = {
    "/quit": "/quit", "/exit": "/quit", "/q": "/quit",
    "/help": "/help", "/?": "/help",
    "/skip": "/skip", "/know": "/know", "/explain": "/explain",
    "/feedback": "/feedback",
    "/progress": "/progress", "/states": "/progress",
    "/retry": "/retry", "/offline": "/offline",
}


def typed_command(text: str) -> tuple[str, str] | None:
    """``(name, argument)`` for a typed command ("/Know pages" -> ("/know", "pages")); the name
    is the canonical one, or what was typed when it is not a command (the caller says so).
    None when the text is a message for the tutor."""
    t = text.strip()
    if not t.startswith("/"):
        return None
    name, _, arg = t.partition(" ")
    name = name.lower()
    return TYPED.get(name, name), arg.strip()
