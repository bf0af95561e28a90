"""Planted defects: known mistakes written into a clean explainer at run time.

Each mutation changes the explainer's text the way an author's slip would, and records
where (the concept) and what, so a run can score who noticed: the lint (offline, in CI) and
the live tutor's ``<feedback>`` notes (recall and precision). Kinds and scoring: docs/eval.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tutor.explainer import Concept, Explainer, load


@dataclass(frozen=True)
class Defect:
    kind: str
    concept_id: str  # where a reader (or the tutor) would trip over it
    description: str  # for the report: what was changed
    clue: str  # words a feedback note that found it is likely to use


@dataclass(frozen=True)
class Planted:
    explainer: Explainer
    defect: Defect


def _body_span(ex: Explainer, c: Concept) -> tuple[int, int]:
    """Character offsets of the concept's section text in the source."""
    lines = ex.source.splitlines(keepends=True)
    start = sum(len(x) for x in lines[: c.section.start_line])
    end = sum(len(x) for x in lines[: c.section.end_line])
    return start, end


def _replace_in_section(ex: Explainer, c: Concept, old: str, new: str) -> str | None:
    a, b = _body_span(ex, c)
    part = ex.source[a:b]
    if old not in part:
        return None
    return ex.source[:a] + part.replace(old, new, 1) + ex.source[b:]


_NUMBER = re.compile(r"(?<![\w.+-])(\d{1,4})(?![\w.])")
_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1", re.M | re.S)


def fact_changed(ex: Explainer) -> tuple[str, Defect] | None:
    """A number stated in a section and in that concept's reference answer, changed in the
    section only: the text now contradicts the answer."""
    for c in ex.concepts:
        answers = " ".join(q.answer for q in c.checks)
        prose = _FENCE.sub("", c.section.text)
        for m in _NUMBER.finditer(prose):
            n = m.group(1)
            if re.search(rf"(?<![\w.]){n}(?![\w.])", answers):
                begin = prose.rfind("\n", 0, m.start()) + 1
                line = prose[begin : prose.find("\n", m.end())]
                at = m.start() - begin  # change this number, not the first one on its line
                changed = line[:at] + str(int(n) + 1) + line[at + len(n):]
                text = _replace_in_section(ex, c, line, changed)
                if text:
                    return text, Defect("fact changed", c.id, f"{n} → {int(n) + 1} in § {c.section.heading}", n)
    return None


def definition_removed(ex: Explainer) -> tuple[str, Defect] | None:
    """The sentence that defines a section's first bold term, deleted."""
    for c in ex.concepts[1:]:
        prose = _FENCE.sub("", c.section.text)
        m = re.search(r"[^.\n]*\*\*([^*\n]+)\*\*[^.\n]*\.", prose)
        if m:
            text = _replace_in_section(ex, c, m.group(0), "")
            if text:
                return text, Defect("definition removed", c.id, f"the definition of {m.group(1)} in § {c.section.heading}", m.group(1))
    return None


def _front(ex: Explainer) -> tuple[dict, str] | None:
    """The front matter as data and the body after it (mutations that edit the outline)."""
    import yaml

    m = re.match(r"---\r?\n(.*?)\r?\n---\r?\n", ex.source, re.S)
    if not m:
        return None
    data = yaml.safe_load(m.group(1))
    return (data, ex.source[m.end():]) if isinstance(data, dict) else None


def _with_front(data: dict, body: str) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100) + "---\n" + body


def check_moved(ex: Explainer) -> tuple[str, Defect] | None:
    """The last concept's first check moved to the first concept: it tests a later section."""
    got = _front(ex)
    if got is None or len(ex.concepts) < 3:
        return None
    data, body = got
    concepts = data.get("concepts") or []
    if len(concepts) < 3 or not concepts[-1].get("checks"):
        return None
    q = concepts[-1]["checks"].pop(0)
    concepts[0].setdefault("checks", []).append(q)
    first = ex.concepts[0]
    return _with_front(data, body), Defect("check moved", first.id,
                                           f"“{str(q.get('question', ''))[:50]}” asked under § {first.section.heading}",
                                           ex.concepts[-1].section.heading)


def prerequisite_missing(ex: Explainer) -> tuple[str, Defect] | None:
    """A prerequisite edge removed from the outline."""
    got = _front(ex)
    if got is None:
        return None
    data, body = got
    for c in data.get("concepts") or []:
        if c.get("prerequisites"):
            gone = c["prerequisites"]
            c["prerequisites"] = []
            return _with_front(data, body), Defect("prerequisite missing", str(c["id"]),
                                                   f"{c['id']} no longer needs {', '.join(map(str, gone))}", str(gone[0]))
    return None


def command_typo(ex: Explainer) -> tuple[str, Defect] | None:
    """A typo in a command of a code sample (two letters swapped in its first word)."""
    for c in ex.concepts:
        for m in _FENCE.finditer(c.section.text):
            for line in m.group(2).splitlines():
                cmd = line[2:] if line.startswith("$ ") else None
                word = cmd.split()[0] if cmd and cmd.split() else ""
                if len(word) >= 3 and word.isalpha():
                    typo = word[1] + word[0] + word[2:]
                    text = _replace_in_section(ex, c, line, line.replace(word, typo, 1))
                    if text:
                        return text, Defect("command typo", c.id, f"{word} → {typo} in § {c.section.heading}", typo)
    return None


def wrong_answer(ex: Explainer) -> tuple[str, Defect] | None:
    """A reference answer replaced by the answer of another concept's check."""
    got = _front(ex)
    if got is None:
        return None
    data, body = got
    with_checks = [c for c in data.get("concepts") or [] if c.get("checks")]
    if len(with_checks) < 2:
        return None
    a, b = with_checks[0], with_checks[-1]
    a["checks"][0]["answer"] = b["checks"][0].get("answer", "")
    return _with_front(data, body), Defect("wrong reference answer", str(a["id"]),
                                           f"the answer to “{str(a['checks'][0].get('question', ''))[:50]}” is another check's", "answer")


def contradiction(ex: Explainer) -> tuple[str, Defect] | None:
    """A sentence that contradicts the section's first statement, appended to the section."""
    for c in ex.concepts[1:]:
        prose = _FENCE.sub("", c.section.text).strip()
        for m in re.finditer(r"(?:^|(?<=\. ))([A-Z][^.\n]{20,160}?) is ([^.\n]{3,120})\.", prose, re.M):
            if re.search(r"\b(?:not|no|never|every|only)\b", m.group(0), re.I):
                continue  # a negation of these reads as nonsense, not as a contradiction
            _, b = _body_span(ex, c)
            sentence = f"\n{m.group(1)} is not {m.group(2)}.\n\n".replace("**", "")
            text = ex.source[:b] + sentence + ex.source[b:]
            return text, Defect("contradiction", c.id, f"“{m.group(1)[:40]} is not …” added to § {c.section.heading}", "contradict")
    return None


MUTATIONS: dict[str, Callable[[Explainer], tuple[str, Defect] | None]] = {
    "fact": fact_changed,
    "definition": definition_removed,
    "check": check_moved,
    "prerequisite": prerequisite_missing,
    "typo": command_typo,
    "answer": wrong_answer,
    "contradiction": contradiction,
}


def plant_all(ex: Explainer, folder: Path) -> list[Planted]:
    """Each mutation that applies to ``ex``, loaded from its own file under ``folder``."""
    out = []
    for key, mutate in MUTATIONS.items():
        got = mutate(ex)
        if got is None:
            continue
        text, defect = got
        path = folder / f"{Path(ex.path).stem}.{key}.md"
        path.write_text(text, encoding="utf-8")
        try:
            out.append(Planted(load(path), defect))
        except Exception:  # noqa: BLE001 - a mutation that broke the file tests nothing
            continue
    return out


def lint_catches(planted: Planted) -> bool:
    """Whether ``tutor check``'s lint (or the loader) warns about the planted concept."""
    from tutor.eval.lint import lint

    ex = planted.explainer
    c = ex.concept(planted.defect.concept_id)
    span = (c.section.start_line, c.section.end_line)
    for p in [*ex.warnings, *lint(ex)]:
        text = p.message
        if planted.defect.concept_id in text or c.section.heading in text or (p.line is not None and span[0] <= p.line <= span[1]):
            return True
    return False
