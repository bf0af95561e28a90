"""Section search for the offline mode: answer a free-text question with the best passage.

Why FTS5 in memory (``store/passages.py``, with the rest of the SQL): SQLite is already our
storage engine, and its ``bm25()`` ranking with the porter stemmer is good enough to find
"the paragraph about checkpoints" for "when does a checkpoint happen?". The index is
rebuilt per session (explainers are small) so nothing of the explainer's text has to live
in the session database.

Also home of ``blocks()``: splitting Markdown into paragraphs without cutting a fenced
code block or a list in half, used both for passages here and for the offline mode's
"readable pieces".
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from tutor.explainer import Explainer
from tutor.explainer.terms import glossary
from tutor.store.passages import Passage, PassageIndex

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(\s|$)")
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does doing for from had has have how i
    if in into is it its me my of on or so than that the their them then there these they this to
    was we were what when where which while who whom why will with would you your about tell
    explain please mean means meant""".split()
)


def blocks(markdown: str) -> list[str]:
    """Paragraph-level blocks: split on blank lines, but never inside a fenced code block.

    Headings are blocks of their own. Consecutive list items separated by blank lines stay
    separate blocks; the offline chunker groups blocks anyway.
    """
    out: list[str] = []
    cur: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        if fence is not None:
            cur.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
            continue
        m = _FENCE_RE.match(line)
        if m:
            fence = m.group(1)
            cur.append(line)
            continue
        if _HEADING_RE.match(line):
            if cur:
                out.append("\n".join(cur))
                cur = []
            out.append(line.rstrip())
            continue
        if line.strip() == "":
            if cur:
                out.append("\n".join(cur))
                cur = []
            continue
        cur.append(line.rstrip())
    if cur:
        out.append("\n".join(cur))
    return [b for b in out if b.strip()]


def passages(markdown: str) -> list[str]:
    """Blocks to quote: a short lead-in ("Two consequences follow:") is joined to the
    block after it, so a quote never stops at a colon."""
    out: list[str] = []
    carry = ""
    for b in blocks(markdown):
        if _HEADING_RE.match(b):
            continue
        b = carry + "\n\n" + b if carry else b
        carry = ""
        if len(b) < 100 or b.rstrip().endswith(":"):
            carry = b
            continue
        out.append(b)
    if carry:
        out.append(carry)
    return out


def _is_code(block: str) -> bool:
    return bool(_FENCE_RE.match(block)) or all(line.startswith("    ") for line in block.splitlines() if line.strip())


class Hit(BaseModel):
    concept_id: str
    heading: str
    passage: str
    score: float
    kind: str = "text"  # "text" (the section), "faq" (a check and its answer), "term" (a bold definition)


GROUP_DECAY = 0.3  # weight of a concept's 2nd and 3rd best passages (0.3, 0.09): bench in docs/eval.md


def query_terms(question: str) -> list[str]:
    words = re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", question.casefold())
    terms = []
    for w in words:
        w = w.replace("’", "'")
        if w in STOPWORDS or len(w) < 2:
            continue
        for part in re.split(r"['-]", w):
            if len(part) >= 2 and part not in STOPWORDS and part not in terms:
                terms.append(part)
    return terms


class SectionIndex:
    """An in-memory FTS5 index of an explainer's passages (one row per block)."""

    def __init__(self, explainer: Explainer):
        rows: list[Passage] = []
        for c in explainer.concepts:
            for b in passages(c.section.text):
                rows.append((c.section.heading, b, c.id, "text", c.section.heading))
            if c.summary:
                rows.append((c.section.heading, c.summary, c.id, "text", c.section.heading))
            # The checks as an FAQ: a reader's question is often a check in other words.
            for q in c.checks:
                if q.answer.strip():
                    rows.append((c.section.heading, f"{q.question}\n\n{q.answer.strip()}", c.id, "faq", c.section.heading))
            # Bold definitions as a glossary: "what is a frame?" wants the defining sentence.
            for term, sentence in glossary(c.section.text):
                rows.append((f"{c.section.heading} {term}", sentence, c.id, "term", c.section.heading))
        self.index = PassageIndex(rows)
        self.size = self.index.size

    def search(self, question: str, limit: int = 3) -> list[Hit]:
        """Best passages first, grouped by concept: the concept whose passages answer best
        together comes first (its best passage, plus a little of its next two: one strong
        match in a neighbouring section should not beat a section that is about the question).
        Within a concept a prose passage is preferred to a code block that scores only a
        little better: "what is a page?" wants the sentence, not the example."""
        hits = self._search(question, 30)
        by: dict[str, list[Hit]] = {}
        for h in hits:
            by.setdefault(h.concept_id, []).append(h)

        def weight(group: list[Hit]) -> float:
            return sum(h.score * (GROUP_DECAY**i) for i, h in enumerate(group[:3]))

        ordered: list[Hit] = []
        for cid in sorted(by, key=lambda c: -round(weight(by[c]), 3)):  # ties: the order _search gave
            group = by[cid]
            if len(group) > 1 and _is_code(group[0].passage):
                for k, h in enumerate(group[1:], 1):
                    if not _is_code(h.passage) and h.score >= 0.6 * group[0].score:
                        group.insert(0, group.pop(k))
                        break
            ordered.extend(group)
        return ordered[:limit]

    def _search(self, question: str, limit: int) -> list[Hit]:
        terms = query_terms(question)
        hits = [Hit(concept_id=c, heading=h, passage=b, score=sc, kind=k) for c, h, b, sc, k in self.index.match(terms, limit)]
        # A term in most passages (the topic of the whole document: "explainer" in tutor's
        # README) has no weight in bm25, so every score is ~0 and rowid order would decide;
        # among equal scores, a passage under a heading that names the term comes first.
        return sorted(hits, key=lambda h: (-round(h.score, 3), not any(t in h.heading.casefold() for t in terms)))

    def close(self) -> None:
        self.index.close()
