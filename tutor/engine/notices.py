"""Typed notices shown before a dialogue starts: the app and the plain dialogue choose how
to show each kind from the kind, never from the words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class NoticeKind(Enum):
    """How a start notice matters to the reader."""

    SETUP = "setup"  # mode, key, model and explainer notes: readable in the dialogue
    RESUMED = "resumed"  # carrying on an earlier session
    CHANGED = "changed"  # the file changed since the session began: a warning


@dataclass(frozen=True)
class StartNotice:
    kind: NoticeKind
    text: str

    def __str__(self) -> str:
        return self.text
