"""The explainer: typed models and the loader.

Format v1 is documented in docs/explainer-format.md. ``load(path)`` reads either a
compiled explainer (YAML front matter with ``tutor: 1``) or any plain Markdown file,
whose headings become the concepts; ``parse(text, name)`` does the same for text already
in hand.

CONTRACT (other modules rely on these names; the loader may grow, not change them):
- ``load(path) -> Explainer`` and ``parse(text, name) -> Explainer`` raise ``ExplainerError``
  (a ``TutorError``) and nothing else.
- ``Explainer.concepts`` is in teaching order (a topological order of prerequisites).
- ``Concept.section`` is the concept's body text with its 1-based source line range.

The modules, in the order a load runs them: ``loader`` (text checks, dispatch),
``frontmatter`` and ``yaml_lines`` (the YAML, with file lines), ``v1`` with ``schema`` or
``plain``, over ``markdown`` (headings and sections; ``mdit_speed`` makes its parser fast);
``model`` holds the records, ``spec`` the format's constants. Nothing here imports the
store, the engine, the app or the CLI.
"""

from tutor.explainer.loader import load, parse
from tutor.explainer.markdown import _markdown, new_markdown, plain_heading_text
from tutor.explainer.model import CheckQuestion, Concept, Explainer, Section
from tutor.explainer.spec import (
    AI_PREAMBLE,
    FEEDBACK_RE,
    FORMAT_VERSION,
    ID_RE,
    MAX_CONCEPTS,
    MAX_FILE_BYTES,
    MAX_FRONT_MATTER_BYTES,
    MAX_HEADING_INLINE,
    MAX_YAML_DEPTH,
    PLAIN_OUTLINE_CONCEPTS,
)

__all__ = [
    "AI_PREAMBLE",
    "FEEDBACK_RE",
    "FORMAT_VERSION",
    "ID_RE",
    "MAX_CONCEPTS",
    "MAX_FILE_BYTES",
    "MAX_FRONT_MATTER_BYTES",
    "MAX_HEADING_INLINE",
    "MAX_YAML_DEPTH",
    "PLAIN_OUTLINE_CONCEPTS",
    "CheckQuestion",
    "Concept",
    "Explainer",
    "Section",
    "_markdown",  # the loader's block parser, for the tests that compare its tokens
    "load",
    "new_markdown",
    "parse",
    "plain_heading_text",
]
