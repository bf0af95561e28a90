"""Is each check's reference answer answerable from its own section or an earlier one?

A tutor asks a check after its section, so an answer that leans on a term a later section
introduces, or states a figure no section gives, cannot be reached by a reader, and a
figure nobody wrote may be invented. This is a cheap local check, run by ``tutor compile``
on what Claude wrote; its findings are warnings for the author, not errors (a heuristic
must not throw away a valid explainer). Thresholds and what it finds on the samples:
docs/authors.md.

What counts as a *key term*: words the explainer itself marks as vocabulary (concept
titles, **bold** definitions, `code` spans, acronyms in them), and tokens with a digit (``4096``, ``UTF-16``,
``U+20AC``). Ordinary words are left alone: an answer may say "both" before a later
section does.
"""

from __future__ import annotations

import re

from tutor.errors import Problem
from tutor.explainer import Explainer
from tutor.explainer.terms import content_stems, glossary

_CODE_SPAN = re.compile(r"`([^`\n]{2,40})`")
_WITH_DIGIT = re.compile(r"[\w+.-]*\d[\w+.-]*")
_ANSWER_KEY = re.compile(r"^\s*(?:-\s+)?answer\s*:")
_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")  # "WAL", "BMP": short, but vocabulary


def _words(text: str) -> set[str]:
    return content_stems(text) | {a.casefold() for a in _ACRONYM.findall(text)}


def _same(a: str, b: str) -> bool:
    """Two content stems for one word ("checkpoint" / "checkpoints", "page" / "pages")."""
    if a == b:
        return True
    n = max(4, min(len(a), len(b)) - 1)  # -2 made "common" the word "commit"
    return len(a) >= 4 and len(b) >= 4 and abs(len(a) - len(b)) <= 3 and a[:n] == b[:n]


def _has(stems: set[str], term: frozenset[str]) -> bool:
    return all(t in stems or any(_same(t, s) for s in stems) for t in term)


def _key_terms(exp: Explainer) -> dict[frozenset[str], str]:
    """Each key term's stems, with the term as written (its first spelling)."""
    out: dict[frozenset[str], str] = {}
    for c in exp.concepts:
        for term in [c.title, *(t for t, _ in glossary(c.section.text)), *_CODE_SPAN.findall(c.section.text)]:
            stems = frozenset(_words(term))
            # "end mark" is only {"mark"} once short words go: any "marks" would match it
            weak = len(stems) < 2 and len(term.split()) > 1
            if stems and not weak and stems not in out:
                out[stems] = term
    return out


def _figures(text: str) -> list[str]:
    figures = [t.strip(".,;:-_") for t in _WITH_DIGIT.findall(text)]
    return list(dict.fromkeys(t for t in figures if len(t) >= 2))


def answer_lines(exp: Explainer) -> dict[tuple[str, int], int]:
    """(concept id, check number) -> the front-matter line of that check's ``answer:``."""
    lines = exp.source.split("\n")
    starts = [(c.line, c.id) for c in exp.concepts if c.line]
    out: dict[tuple[str, int], int] = {}
    for i, (start, cid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else exp.body_line
        found = [n for n in range(start, max(start, end - 1) + 1) if n <= len(lines) and _ANSWER_KEY.match(lines[n - 1])]
        for k, n in enumerate(found, 1):
            out[(cid, k)] = n
    return out


def check_answers(exp: Explainer, name: str) -> list[Problem]:
    """Warnings, at most two per check: its reference answer uses key terms or figures that only
    a later section introduces, or states a figure (a token with a digit) that no section gives."""
    texts = [c.title + "\n" + c.section.text for c in exp.concepts]
    stems = [_words(t) for t in texts]
    keys = _key_terms(exp)
    first = {term: next((i for i, s in enumerate(stems) if _has(s, term)), None) for term in keys}
    where = answer_lines(exp)
    problems: list[Problem] = []
    for i, c in enumerate(exp.concepts):
        so_far = "\n".join(texts[: i + 1]).casefold()
        for k, check in enumerate(c.checks, 1):
            said = _words(check.question + "\n" + check.answer)
            later = {keys[t]: exp.concepts[at].id for t, at in first.items() if at is not None and at > i and _has(said, t)}
            never = []
            for fig in _figures(check.answer):
                if fig.casefold() in so_far or any(fig.casefold() in t.casefold() for t in later):
                    continue
                j = next((j for j in range(i + 1, len(texts)) if fig.casefold() in texts[j].casefold()), None)
                if j is None:
                    never.append(fig)
                else:
                    later[fig] = exp.concepts[j].id
            line = where.get((c.id, k), c.line)
            if later:
                listed = ", ".join(f"\"{t}\" ('{cid}')" for t, cid in later.items())
                problems.append(Problem(name, line, f"check {k} of '{c.id}' rests on what only a later section explains: "
                                        f"{listed}; move the check there, or explain it in § {c.section.heading}"))
            if never:
                listed = ", ".join(f"\"{f}\"" for f in never)
                problems.append(Problem(name, line, f"check {k} of '{c.id}': the reference answer states {listed}, "
                                        "which no section says"))
    return problems
