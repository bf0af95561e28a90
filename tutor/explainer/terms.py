"""Words of an explainer's text that carry its meaning: the content words of an answer, and
the terms a section defines. One home, so the offline guide (grading, repair), its search
(glossary rows), compile's consistency check and the lint agree on what a term is."""

from __future__ import annotations

import re

_CONTENT = re.compile(r"[^\W_]{4,}")
_COMMON = frozenset("that this with from they their there which when what have been into only also than then them "
                    "does each every some more most such very same other just like will would could should".split())
_BOLD = re.compile(r"\*\*([^*\n]{2,60}?)\*\*")  # a bold run is how the samples and `tutor compile` mark a definition
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)  # a fenced code block, whole


def _names(sentence: str, term: str) -> bool:
    """Whether ``sentence`` is about the bolded term: "A frame is..." after **frames**, not
    "A commit is..." after **commit frame**."""
    words = term.split()
    if not words:
        return False
    last = words[-1].removesuffix("s")
    whole = r"\s+".join([*map(re.escape, words[:-1]), re.escape(last) + r"(?:e?s)?"])
    return re.match(r"(?:An?|The|Each|Every)\s+" + whole + r"\b", sentence, re.I) is not None


def content_stems(text: str) -> set[str]:
    """Content words, crudely stemmed: enough to tell an answer that says the same thing."""
    out = set()
    for w in _CONTENT.findall(text.casefold()):
        if w in _COMMON:
            continue
        out.add(re.sub(r"(?:ing|ed|es|s)$", "", w) if len(w) > 5 else w)
    return out


def glossary(markdown: str) -> list[tuple[str, str]]:
    """(term, the sentence that defines it) for each bold term: a bold run is how the
    samples and `tutor compile` mark a definition."""
    out = []
    prose = FENCE.sub(" ", markdown)
    for para in prose.split("\n\n"):
        flat = " ".join(para.split())
        for m in _BOLD.finditer(flat):
            prev = flat.rfind(". ", 0, m.start())
            start = prev + 2 if prev >= 0 else 0
            end = flat.find(". ", m.end())
            term = m.group(1).strip()
            if end >= 0 and _names(flat[end + 2 :], term):
                # "... holds **frames**. A frame is a 24-byte header ...": the next sentence says what it is
                nxt = flat.find(". ", end + 2)
                end = nxt if nxt >= 0 else len(flat) - 1
            out.append((term, flat[start : end + 1 if end >= 0 else len(flat)].strip()))
    return out
