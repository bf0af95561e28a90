"""The explainer: typed models and the loader.

Format v1 is documented in docs/explainer-format.md. ``load(path)`` reads either a
compiled explainer (YAML front matter with ``tutor: 1``) or any plain Markdown file,
whose headings become the concepts.

CONTRACT (other modules rely on these names; the loader may grow, not change them):
- ``load(path) -> Explainer`` raises ``ExplainerError`` (a ``TutorError``) and nothing else.
- ``Explainer.concepts`` is in teaching order (a topological order of prerequisites).
- ``Concept.section`` is the concept's body text with its 1-based source line range.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from tutor.errors import ExplainerError, Problem

FORMAT_VERSION = 1


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
    preamble: str = ""  # text before the first concept section (the note to AI assistants)
    concepts: list[Concept]  # teaching order
    source: str  # the whole file text, for prompts and search
    content_hash: str  # sha256 hex of the file bytes
    plain: bool = False  # True when loaded from Markdown without front matter
    warnings: list[Problem] = Field(default_factory=list)

    def concept(self, concept_id: str) -> Concept:
        for c in self.concepts:
            if c.id == concept_id:
                return c
        raise KeyError(concept_id)

    @property
    def word_count(self) -> int:
        return len(self.source.split())


def load(path: str | Path) -> Explainer:
    raise ExplainerError([Problem(str(path), None, "loader not written yet")])
