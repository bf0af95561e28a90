"""Explainer lint for ``tutor check``: findings an author should fix before publishing.

Warnings only (``tutor check --strict`` turns them into failures). Each rule looks for what
makes a tutor teach badly from the file: a check that tests a later section, an answer a
reader can copy from the text above it, a term used before it is defined, a check with no
misconceptions to listen for, a DRAFT marker left by ``tutor compile --offline``. Concepts
without checks are already warned about by the loader. Rules and why: docs/eval.md.
"""

from __future__ import annotations

import re

from tutor.authoring.consistency import check_answers
from tutor.errors import Problem
from tutor.explainer import Concept, Explainer
from tutor.explainer.terms import FENCE, glossary

# Whole word, upper case: the marker `tutor compile --offline` writes (tutor.authoring.skeleton.DRAFT).
_DRAFT = re.compile(r"\bDRAFT\b")
COPIED_WORDS = 10  # an answer sentence this long found word for word in its section


def _stem(term: str) -> str:
    t = " ".join(term.casefold().split())
    return re.sub(r"(?:es|s)$", "", t) if len(t) > 4 else t


def _mentions(stem: str, text: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(stem), text) is not None


def _prose(text: str) -> str:
    """Section text without code blocks: a term in a code sample is not its use in prose."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text).casefold()  # keeps line numbers


def _line_of(ex: Explainer, needle: str, default: int | None) -> int | None:
    """The front-matter line of a check's question (the YAML holds it near verbatim)."""
    probe = needle.strip()[:40]
    if probe:
        for n, line in enumerate(ex.source.splitlines(), 1):
            if probe in line:
                return n
    return default


def _definitions(ex: Explainer) -> dict[str, tuple[int, Concept, str]]:
    """Each bolded term's first section (index in teaching order), by stem."""
    first: dict[str, tuple[int, Concept, str]] = {}
    for i, c in enumerate(ex.concepts):
        for term, _ in glossary(c.section.text):
            first.setdefault(_stem(term), (i, c, term.strip()))
    return first


def _copied_answers(ex: Explainer) -> list[Problem]:
    found = []
    for c in ex.concepts:
        body = " ".join(FENCE.sub(" ", c.section.text).casefold().replace("*", "").replace("`", "").split())
        for q in c.checks:
            for sentence in re.split(r"(?<=[.!?])\s+", q.answer.strip()):
                flat = " ".join(sentence.casefold().replace("`", "").split()).rstrip(".")
                if len(flat.split()) >= COPIED_WORDS and flat in body:
                    found.append(Problem(
                        ex.path, _line_of(ex, q.question, c.line),
                        f"the reference answer to \"{q.question[:60]}\" copies a sentence of § {c.section.heading} word for word: "
                        "a reader can match it without understanding; say it in other words",
                    ))
                    break
    return found


def _used_before_definition(ex: Explainer, defs: dict[str, tuple[int, Concept, str]]) -> list[Problem]:
    found = []
    assumed = ex.audience.casefold()  # "developers who use Git every day (add, commit ...)": known words
    lines = ex.source.splitlines()
    for stem, (j, where, term) in defs.items():
        if len(stem) < 4 or _mentions(stem, assumed):
            continue
        for c in ex.concepts[:j]:
            text = _prose(c.section.text)
            m = next((m for m in re.finditer(r"(?<![\w-])" + re.escape(stem), text) if not _points_ahead(text, m.start())), None)
            if m is None:
                continue
            # the section's text may have lost its leading blank lines: find the line itself
            hit = text[text.rfind("\n", 0, m.start()) + 1 : (text.find("\n", m.start()) + 1 or len(text) + 1) - 1].strip()
            line = next((n for n in range(c.section.start_line, min(c.section.end_line, len(lines)) + 1)
                         if hit and hit in lines[n - 1].casefold()), c.section.start_line)
            found.append(Problem(
                ex.path, line,
                f"\"{term}\" is used in § {c.section.heading} before its definition in § {where.section.heading} "
                f"(line {where.section.start_line}): define it where it is first used, or say it is explained later",
            ))
            break
    return found


_AHEAD = re.compile(r"\b(?:later|next section|section on|below|further on|see §|comes? back to)\b")


def _points_ahead(text: str, pos: int) -> bool:
    """Whether the sentence around ``pos`` says the term is explained later."""
    start = max(text.rfind(". ", 0, pos), text.rfind("\n\n", 0, pos)) + 1
    ends = [i for i in (text.find(". ", pos), text.find("\n\n", pos)) if i >= 0]
    return _AHEAD.search(text[start : min(ends) if ends else len(text)]) is not None


def _no_misconceptions(ex: Explainer) -> list[Problem]:
    return [
        Problem(ex.path, _line_of(ex, q.question, c.line),
                f"check \"{q.question[:60]}\" of {c.id} lists no misconceptions: add the wrong answers readers give, "
                "so the tutor knows what to listen for")
        for c in ex.concepts for q in c.checks if not q.misconceptions
    ]


def lint(ex: Explainer) -> list[Problem]:
    """Lint findings for a loaded explainer, in file order."""
    if ex.plain:
        return []  # plain Markdown has no concepts or checks to judge
    found: list[Problem] = []
    for n, line in enumerate(ex.source.splitlines(), 1):
        if _DRAFT.search(line):
            found.append(Problem(ex.path, n, "DRAFT marker left in: replace it with the real text before publishing"))
    defs = _definitions(ex)
    found += check_answers(ex, str(ex.path))  # a check resting on a later section: one rule, shared with compile
    found += _copied_answers(ex)
    found += _used_before_definition(ex, defs)
    found += _no_misconceptions(ex)
    return sorted(found, key=lambda p: (p.line is None, p.line or 0))
