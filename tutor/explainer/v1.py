"""Loading a compiled explainer: format v1 front matter (``tutor: 1``) plus its body.

One named step per rule of docs/explainer-format.md. Steps add to a shared ``_Report``;
most problems are collected so an author sees them all in one ``tutor check``, and only
those that would bury the rest in noise (a newer format, unreadable keys, an invalid
schema, too many concepts) stop at once. Problems are reported in file-line order.
"""

from __future__ import annotations

import heapq
from typing import Any

from pydantic import ValidationError

from tutor.errors import ExplainerError, Problem
from tutor.explainer.frontmatter import FrontMatter, json_safe
from tutor.explainer.markdown import (
    Heading,
    body_start,
    headings,
    last_content_line,
    norm,
    plain_heading_text,
    section_text,
)
from tutor.explainer.model import CheckQuestion, Concept, Explainer, Section
from tutor.explainer.schema import ConceptIn, FrontMatterIn, describe
from tutor.explainer.spec import FEEDBACK_RE, FORMAT_VERSION, ID_RE, MAX_CONCEPTS
from tutor.explainer.yaml_lines import key_line, top_key_line


class _Report:
    """The problems of one load so far, and the file lines of front-matter keys."""

    def __init__(self, name: str, root: Any, offset: int):
        self.name, self.root, self.offset = name, root, offset
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def line_of(self, *loc: Any) -> int | None:
        return key_line(self.root, loc, self.offset)

    def error(self, line: int | None, message: str) -> None:
        self.errors.append(Problem(self.name, line, message))

    def warn(self, line: int | None, message: str) -> None:
        self.warnings.append(Problem(self.name, line, message))

    def fatal(self, line: int | None, message: str) -> ExplainerError:
        """A problem that stops the load at once (the others found so far are dropped)."""
        return ExplainerError([Problem(self.name, line, message)])

    def raise_errors(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda pr: (pr.line or 0))
            raise ExplainerError(self.errors)


def load_v1(name: str, text: str, lines: list[str], fm: FrontMatter, digest: str) -> Explainer:
    """The explainer of a file whose front matter (``fm.meta``) declares it v1."""
    assert fm.meta is not None
    r = _Report(name, fm.root, fm.offset)
    _check_version(r, fm.meta)  # first: a newer file must not produce a pile of confusing errors
    fmi = _validate(r, fm.meta)
    _report_unknown_keys(r, fmi)
    _check_top_fields(r, fmi)
    decl_line = _check_concepts(r, fmi.concepts)
    _check_prerequisites(r, fmi.concepts, list(decl_line))
    unique = _first_declarations(fmi.concepts)
    order = _teaching_order_checked(r, unique, decl_line)
    tagged = _tie_headings(r, headings(fm.body), unique)
    sections, first_head = _cut_sections(r, tagged, lines)
    for c in unique:
        if c.id not in sections:
            r.error(decl_line.get(c.id), f"concept '{c.id}' has no section: add a heading '## {c.title} {{#{c.id}}}' to the body")
    r.raise_errors()
    _author_warnings(r, unique, sections, decl_line)
    close_line = body_start(fm.body)
    preamble = section_text(lines, close_line, first_head if first_head is not None else close_line)
    if "<feedback>" not in preamble and "feedback" not in preamble.lower():
        r.warn(close_line + 1, "no note to AI assistants before the first section (see docs/explainer-format.md)")
    r.warnings.sort(key=lambda pr: (pr.line or 0))
    return Explainer(
        path=name,
        format_version=fmi.tutor,
        title=" ".join(fmi.title.split()),
        summary=fmi.summary.strip(),
        audience=fmi.audience.strip(),
        author=fmi.author.strip(),
        feedback=fmi.feedback.strip(),
        preamble=preamble,
        concepts=[_concept(unique[i], sections, decl_line) for i in order],
        source=text,
        content_hash=digest,
        plain=False,
        body_line=close_line + 1,
        warnings=r.warnings,
        extra={str(k): json_safe(v) for k, v in (fmi.model_extra or {}).items()},
    )


def _check_version(r: _Report, meta: dict[str, Any]) -> None:
    if "tutor" not in meta:
        r.warn(1, "front matter has no 'tutor:' format version; assuming tutor: 1")
        return
    version = meta["tutor"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise r.fatal(r.line_of("tutor"), f"'tutor' must be the format version number (1), not {version!r}")
    if version > FORMAT_VERSION:
        raise r.fatal(
            r.line_of("tutor"),
            f"this explainer was made by a newer tutor (format {version}); this tutor reads format "
            f"{FORMAT_VERSION}. Upgrade tutor to open it",
        )
    if version < 1:
        raise r.fatal(r.line_of("tutor"), f"unknown format version {version}; expected tutor: 1")


def _validate(r: _Report, meta: dict[str, Any]) -> FrontMatterIn:
    bad_keys = [k for k in meta if not isinstance(k, str)]
    if bad_keys:
        raise r.fatal(None, f"front matter key {bad_keys[0]!r} is not text")
    try:
        return FrontMatterIn.model_validate(meta)
    except ValidationError as e:
        for err in e.errors():
            r.error(r.line_of(*err["loc"]), describe(dict(err)))
        r.raise_errors()
        raise AssertionError("a ValidationError without errors") from None


def _report_unknown_keys(r: _Report, fmi: FrontMatterIn) -> None:
    """Unknown keys are kept (forward compatibility) but reported."""
    for k in fmi.model_extra or {}:
        r.warn(top_key_line(r.root, k, r.offset), f"unknown front-matter key '{k}' (kept, ignored)")
    for ci, c in enumerate(fmi.concepts):
        for k in c.model_extra or {}:
            r.warn(r.line_of("concepts", ci, k), f"concept '{c.id}': unknown key '{k}' (ignored)")
        for qi, q in enumerate(c.checks):
            for k in q.model_extra or {}:
                r.warn(r.line_of("concepts", ci, "checks", qi, k), f"concept '{c.id}': check question has unknown key '{k}' (ignored)")


def _check_top_fields(r: _Report, fmi: FrontMatterIn) -> None:
    if not fmi.title.strip():
        r.error(r.line_of("title"), "title is empty")
    if fmi.feedback.strip() and not FEEDBACK_RE.match(fmi.feedback.strip()):
        r.error(
            r.line_of("feedback"),
            f"feedback must be an email address (you@example.org) or an http(s) URL, not {fmi.feedback.strip()[:60]!r}",
        )
    if not fmi.concepts:
        r.error(r.line_of("concepts"), "concepts list is empty; declare at least one concept")
    if len(fmi.concepts) > MAX_CONCEPTS:
        raise r.fatal(r.line_of("concepts"), f"has {len(fmi.concepts):,} concepts; at most {MAX_CONCEPTS:,}")


def _check_concepts(r: _Report, concepts: list[ConceptIn]) -> dict[str, int | None]:
    """Ids (format, uniqueness), titles and check questions. Returns the line where each
    id is first declared (the concept's item), in declaration order."""
    first_seen: dict[str, int] = {}
    decl_line: dict[str, int | None] = {}
    for ci, c in enumerate(concepts):
        ln = r.line_of("concepts", ci, "id")
        if not ID_RE.match(c.id):
            r.error(ln, f"concept id '{c.id}' is not valid: use lower-case letters, digits and '-' (like 'write-ahead-log')")
        if c.id in first_seen:
            r.error(ln, f"duplicate concept id '{c.id}' (first declared on line {first_seen[c.id]}); give each concept its own id")
        else:
            first_seen[c.id] = ln or 0
            decl_line[c.id] = r.line_of("concepts", ci)
        if not c.title.strip():
            r.error(r.line_of("concepts", ci, "title"), f"concept '{c.id}' has an empty title")
        for qi, q in enumerate(c.checks):
            if not q.question.strip():
                r.error(r.line_of("concepts", ci, "checks", qi), f"concept '{c.id}': check question is empty")
            elif not q.answer.strip():
                r.warn(r.line_of("concepts", ci, "checks", qi), f"concept '{c.id}': check question has no reference answer")
    return decl_line


def _check_prerequisites(r: _Report, concepts: list[ConceptIn], ids: list[str]) -> None:
    known = set(ids)
    for ci, c in enumerate(concepts):
        for pi, pre in enumerate(c.prerequisites):
            if pre not in known:
                r.error(
                    r.line_of("concepts", ci, "prerequisites", pi),
                    f"concept '{c.id}' has unknown prerequisite '{pre}'" + _did_you_mean(pre, [k for k in ids if k != c.id]),
                )


def _first_declarations(concepts: list[ConceptIn]) -> list[ConceptIn]:
    """Each id's first declaration (a duplicate is already an error)."""
    unique: list[ConceptIn] = []
    seen_ids: set[str] = set()
    for c in concepts:
        if c.id not in seen_ids:
            seen_ids.add(c.id)
            unique.append(c)
    return unique


def _teaching_order_checked(r: _Report, unique: list[ConceptIn], decl_line: dict[str, int | None]) -> list[int]:
    order, cycle = _teaching_order(unique)
    if cycle:
        r.error(
            decl_line.get(cycle[0]),
            "prerequisite cycle: " + " -> ".join(cycle) + " (each needs the next; remove one prerequisite)",
        )
    return order


def _tie_headings(r: _Report, heads: list[Heading], unique: list[ConceptIn]) -> list[tuple[Heading, str | None]]:
    """Each body heading with the concept it opens: by ``{#id}``, else by title; or None."""
    by_id = {c.id: c for c in unique}
    by_title: dict[str, str] = {}
    for c in unique:
        # Compare like heading text: "The `WAL` file" matches "## The `WAL` file".
        by_title.setdefault(norm(plain_heading_text(c.title)), c.id)
    tagged: list[tuple[Heading, str | None]] = []
    for h in heads:
        cid: str | None = None
        if h.attr_id is not None:
            if h.attr_id in by_id:
                cid = h.attr_id
            else:
                r.warn(h.start + 1, f"heading {{#{h.attr_id}}} matches no concept in the front matter" + _did_you_mean(h.attr_id, list(by_id)))
        elif norm(h.text) in by_title:
            cid = by_title[norm(h.text)]
        tagged.append((h, cid))
    return tagged


def _cut_sections(
    r: _Report, tagged: list[tuple[Heading, str | None]], lines: list[str]
) -> tuple[dict[str, Section], int | None]:
    """Each concept's section: from its heading to the next concept heading or a heading
    of the same or a higher level. Returns (sections by id, line of the first one)."""
    stop_default = last_content_line(lines) + 1
    sections: dict[str, Section] = {}
    first_concept_head: int | None = None
    for idx, (h, cid) in enumerate(tagged):
        if cid is None:
            continue
        if first_concept_head is None:
            first_concept_head = h.start
        stop = stop_default
        # Index loop, no slice: each heading is scanned by at most one concept, so this
        # stays linear even with 100k headings in the body.
        for j in range(idx + 1, len(tagged)):
            h2, cid2 = tagged[j]
            if cid2 is not None or h2.level <= h.level:
                stop = h2.start
                break
        if cid in sections:
            r.error(
                h.start + 1,
                f"second section for concept '{cid}' (the first is on line {sections[cid].start_line}); give each concept one section",
            )
            continue
        sections[cid] = Section(
            heading=h.text,
            level=h.level,
            text=section_text(lines, h.end, stop),
            start_line=h.start + 1,
            end_line=max(stop, h.end),
        )
    return sections, first_concept_head


def _author_warnings(r: _Report, unique: list[ConceptIn], sections: dict[str, Section], decl_line: dict[str, int | None]) -> None:
    """Warnings that help authors but do not stop loading."""
    for c in unique:
        if not c.checks:
            r.warn(decl_line.get(c.id), f"concept '{c.id}' has no check question")
        if not c.summary.strip():
            r.warn(decl_line.get(c.id), f"concept '{c.id}' has no summary")
        if not sections[c.id].text.strip():
            r.warn(sections[c.id].start_line, f"section for concept '{c.id}' is empty")


def _concept(c: ConceptIn, sections: dict[str, Section], decl_line: dict[str, int | None]) -> Concept:
    return Concept(
        id=c.id,
        title=c.title,
        summary=c.summary,
        prerequisites=list(c.prerequisites),
        checks=[CheckQuestion(question=q.question, answer=q.answer, misconceptions=list(q.misconceptions)) for q in c.checks],
        section=sections[c.id],
        line=decl_line.get(c.id),
    )


def _did_you_mean(word: str, known: list[str]) -> str:
    """'; did you mean 'x'?' for a likely typo, else the list of known ids (short)."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if known and len(known) <= 12:
        return "; known ids: " + ", ".join(known)
    return ""


def _teaching_order(decls: list[ConceptIn]) -> tuple[list[int], list[str] | None]:
    """Stable topological order (ties by declaration order). Returns (order, cycle)."""
    index = {c.id: i for i, c in enumerate(decls)}
    deps = [{index[p] for p in c.prerequisites if p in index} for c in decls]
    users: list[list[int]] = [[] for _ in decls]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    waiting = [len(ds) for ds in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) == len(decls):
        return order, None
    # Name one cycle: walk prerequisites among the unplaced until a node repeats.
    placed = set(order)
    start = min(i for i in range(len(decls)) if i not in placed)
    path: list[int] = []
    seen: dict[int, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in deps[node] if d not in placed)
    cycle = path[seen[node] :] + [node]
    # Present it as "a needs b needs c": prerequisites point backwards in teaching.
    return order, [decls[i].id for i in cycle]
