"""Loading any Markdown file without format v1 front matter: its headings become the
concepts, so a README or a spec can be taught as it is (docs/explainer-format.md,
"Plain Markdown")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tutor.errors import ExplainerError, Problem
from tutor.explainer.frontmatter import json_safe
from tutor.explainer.markdown import Heading, body_start, headings, last_content_line, section_text
from tutor.explainer.model import Concept, Explainer, Section
from tutor.explainer.spec import MAX_CONCEPTS, PLAIN_OUTLINE_CONCEPTS
from tutor.text import slug

#: Front-matter keys a plain file's Explainer takes as its own fields (the rest is ``extra``).
_USED_KEYS = ("title", "summary", "description", "audience", "author")


def load_plain(name: str, text: str, lines: list[str], body: str, digest: str, meta: dict[str, Any]) -> Explainer:
    """The explainer of a plain file; ``meta`` is any front matter it has (Jekyll, Hugo)."""
    warnings: list[Problem] = []
    heads = _teachable_headings(name, headings(body), warnings)
    start = body_start(body)
    last = last_content_line(lines)
    title_head, outline = _plain_outline(heads, lines, last + 1)
    concepts = _outline_concepts(outline, lines)
    if outline:
        preamble = section_text(lines, start, outline[0][0].start)
    else:
        preamble = ""
        title = _meta_str(meta, "title") or _file_title(name)
        concepts.append(
            Concept(
                id=slug(title),
                title=title,
                section=Section(
                    heading=title,
                    level=1,
                    text=section_text(lines, start, last + 1),
                    start_line=start + 1,
                    end_line=last + 1,
                ),
            )
        )
        warnings.append(Problem(name, None, "no headings: the whole file is taught as one concept"))
    # The title: the front matter's, else a lone top heading's, else the file's name. The
    # first of several top headings is a section, not the document ("explain Cats; do you
    # know about Cats?").
    h1 = title_head.text if title_head is not None and title_head.text else None
    if h1 is None and len(heads) == 1 and heads[0].text:
        h1 = heads[0].text
    return Explainer(
        path=name,
        title=_meta_str(meta, "title") or h1 or _file_title(name),
        summary=_meta_str(meta, "summary") or _meta_str(meta, "description"),
        audience=_meta_str(meta, "audience"),
        author=_meta_str(meta, "author"),
        preamble=preamble,
        concepts=concepts,
        source=text,
        content_hash=digest,
        plain=True,
        body_line=start + 1,
        warnings=warnings,
        extra={str(k): json_safe(v) for k, v in meta.items() if k not in _USED_KEYS},
    )


def _teachable_headings(name: str, heads: list[Heading], warnings: list[Problem]) -> list[Heading]:
    """The headings that become concepts: the top levels, when there are too many to
    teach one by one; deeper subheadings stay inside their parent's section."""
    if len(heads) > MAX_CONCEPTS:
        total = len(heads)
        for level in range(5, 0, -1):
            heads = [h for h in heads if h.level <= level]
            if len(heads) <= MAX_CONCEPTS:
                warnings.append(
                    Problem(name, None, f"{total:,} headings: only levels 1-{level} ({len(heads):,}) became concepts")
                )
                break
        else:
            raise ExplainerError(
                [Problem(name, None, f"has {len(heads):,} top-level headings; tutor can teach at most {MAX_CONCEPTS:,} sections")]
            )
    if len(heads) > PLAIN_OUTLINE_CONCEPTS:
        # Hundreds of headings are not hundreds of yes/no questions: diagnose and teach by
        # the top levels.
        for level in range(max(h.level for h in heads) - 1, 0, -1):
            fewer = [h for h in heads if h.level <= level]
            if len(fewer) < 2:
                break
            heads = fewer
            if len(heads) <= PLAIN_OUTLINE_CONCEPTS:
                break
    return heads


def _outline_concepts(outline: list[tuple[Heading, str, int]], lines: list[str]) -> list[Concept]:
    """One concept per outline entry, ids made unique with a ``-2``, ``-3`` suffix."""
    concepts: list[Concept] = []
    used: set[str] = set()
    next_suffix: dict[str, int] = {}
    for k, (h, qualified, stop) in enumerate(outline):
        base = slug(h.attr_id or qualified)
        cid, n = base, next_suffix.get(base, 1)
        if cid in used:
            # Remember where each base's counter stopped: 5,000 "## Details" headings
            # must not rescan 1..n each time.
            while cid in used:
                n += 1
                cid = f"{base}-{n}"
        next_suffix[base] = n
        used.add(cid)
        title = qualified or f"Section {k + 1}"
        concepts.append(
            Concept(
                id=cid,
                title=title,
                section=Section(
                    heading=title,
                    level=h.level,
                    text=section_text(lines, h.end, stop),
                    start_line=h.start + 1,
                    end_line=max(stop, h.end),
                ),
            )
        )
    return concepts


def _plain_outline(heads: list[Heading], lines: list[str], end: int) -> tuple[Heading | None, list[tuple[Heading, str, int]]]:
    """The concepts of a plain Markdown file: (heading, name, line where its section stops).

    - A lone top heading above all the others is the document's title, not its own first
      concept ("explain tutor; do you know about tutor?").
    - A heading with nothing under it but deeper headings is a container, not a concept to
      teach first: its children carry its name ("Introduction" in the CommonMark spec).
    - A heading text that repeats ("Added" in every changelog release) is named with its
      parent: "1.2.0 › Added".
    """
    title_head = None
    if len(heads) > 1 and all(h.level > heads[0].level for h in heads[1:]):
        title_head, heads = heads[0], heads[1:]
    kept: list[Heading] = []
    for k, h in enumerate(heads):
        nxt = heads[k + 1] if k + 1 < len(heads) else None
        empty = nxt is not None and nxt.level > h.level and not section_text(lines, h.end, nxt.start).strip()
        if not empty:
            kept.append(h)
    if not kept:
        kept = list(heads)
    keep = set(map(id, kept))
    counts: dict[str, int] = {}
    for h in kept:
        counts[h.text.casefold()] = counts.get(h.text.casefold(), 0) + 1
    out: list[tuple[Heading, str, int]] = []
    parents: list[Heading] = []  # the open headings above the current one, outermost first
    if title_head is not None:
        parents.append(title_head)
    for i, h in enumerate(heads):
        while parents and parents[-1].level >= h.level:
            parents.pop()
        if id(h) in keep:
            name = h.text
            if counts.get(h.text.casefold(), 0) > 1 and parents and parents[-1].text and parents[-1] is not title_head:
                name = f"{parents[-1].text} › {h.text}"
            stop = end
            # Index loop, no slice: the scan stops at the next kept or shallower heading,
            # so the outline stays linear with thousands of headings.
            for j in range(i + 1, len(heads)):
                if heads[j].level <= h.level or id(heads[j]) in keep:
                    stop = heads[j].start
                    break
            out.append((h, name, stop))
        parents.append(h)
    return title_head, out


def _meta_str(meta: dict[str, Any], key: str) -> str:
    v = meta.get(key)
    return " ".join(str(v).split()) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else ""


def _file_title(name: str) -> str:
    """The title when neither the front matter nor a heading gives one: the file's name
    ("-", the usual name of standard input, is "stdin")."""
    return "stdin" if name == "-" else Path(name).stem or "document"
