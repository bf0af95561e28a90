"""Explainer lint for ``tutor check``: findings an author should fix before publishing.

Warnings only (``tutor check --strict`` turns them into failures). This first slice flags
leftover ``DRAFT`` markers (a ``tutor compile --offline`` skeleton is not ready to teach;
issue 9 item 8). Concepts without checks are already warned about by the loader.
"""

from __future__ import annotations

import re

from tutor.errors import Problem
from tutor.explainer import Explainer

# Whole word, upper case: the marker `tutor compile --offline` writes (tutor.compile.DRAFT).
_DRAFT = re.compile(r"\bDRAFT\b")


def lint(ex: Explainer) -> list[Problem]:
    """Lint findings for a loaded explainer, in file order."""
    if ex.plain:
        return []  # plain Markdown has no concepts or checks to judge
    found: list[Problem] = []
    for n, line in enumerate(ex.source.splitlines(), 1):
        if _DRAFT.search(line):
            found.append(Problem(ex.path, n, "DRAFT marker left in: replace it with the real text before publishing"))
    return found
