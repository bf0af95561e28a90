"""The loaded explainer as typed records: what the engine, the app and the exports read."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field

from tutor.errors import Problem
from tutor.explainer.spec import FORMAT_VERSION


class CheckQuestion(BaseModel):
    question: str
    answer: str = ""
    misconceptions: list[str] = Field(default_factory=list)


class Section(BaseModel):
    """A concept's text in the body. Lines are 1-based and inclusive."""

    heading: str
    level: int = 2
    text: str  # Markdown, heading line excluded
    start_line: int  # the heading's line
    end_line: int


class Concept(BaseModel):
    id: str
    title: str
    summary: str = ""
    prerequisites: list[str] = Field(default_factory=list)
    checks: list[CheckQuestion] = Field(default_factory=list)
    section: Section
    line: int | None = None  # where the concept is declared (front matter line), if any


class Explainer(BaseModel):
    path: str
    format_version: int = FORMAT_VERSION
    title: str
    summary: str = ""
    audience: str = ""
    author: str = ""
    feedback: str = ""  # where to send notes to the author (email address or URL); optional
    preamble: str = ""  # text before the first concept section (the note to AI assistants)
    concepts: list[Concept]  # teaching order
    source: str  # the whole file text, for prompts and search
    content_hash: str  # sha256 hex of the file bytes
    plain: bool = False  # True when loaded from Markdown without front matter
    warnings: list[Problem] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)  # unknown front-matter keys, kept as read
    body_line: int = 1  # first line after the front matter (1 when there is none)

    def concept(self, concept_id: str) -> Concept:
        for c in self.concepts:
            if c.id == concept_id:
                return c
        raise KeyError(concept_id)

    @cached_property
    def _word_counts(self) -> tuple[int, int]:
        # (front matter, body): words never span lines, so the two add up exactly.
        # Cached: splitting a 10 MB source into words is not free.
        if self.body_line <= 1:
            return 0, len(self.source.split())
        parts = self.source.split("\n", self.body_line - 1)
        body = parts.pop()
        return len("\n".join(parts).split()), len(body.split())

    @property
    def word_count(self) -> int:
        return sum(self._word_counts)

    @property
    def body_word_count(self) -> int:
        """Words a reader reads: the file without its front matter."""
        return self._word_counts[1]
