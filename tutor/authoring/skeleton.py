"""``tutor compile --offline``: notes -> a *valid* format-v1 skeleton with visible DRAFT
markers, so an author without a key still starts from a file ``tutor check`` accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt
from pydantic import BaseModel

from tutor.errors import TutorError
from tutor.text import slug

if TYPE_CHECKING:
    pass

from tutor.authoring.notes import NoteFile

DRAFT = "DRAFT"


def ai_preamble() -> str:
    """The canonical note to AI assistants (the loader owns its text)."""
    from tutor.explainer import AI_PREAMBLE

    return AI_PREAMBLE.strip()


# --------------------------------------------------------------------------- helpers


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar. JSON strings are valid YAML, and quoting everything
    means no note text (``: ``, ``#``, ``- ``, ``yes``) can change the front matter's shape."""
    return json.dumps(text, ensure_ascii=False)


def humanise(stem: str) -> str:
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else "Notes"


_ATTR_RE = re.compile(r"\s*\{#([A-Za-z0-9][A-Za-z0-9_-]*)\}\s*$")
_CLOSING_HASHES = re.compile(r"\s+#+\s*$|^#+\s*$")


def _heading_text(inline: str) -> tuple[str, str | None]:
    """Heading text without a trailing ``{#id}`` attribute, and that id if present."""
    text = " ".join(inline.split())
    m = _ATTR_RE.search(text)
    if m:
        return text[: m.start()].strip(), m.group(1).lower()
    return text, None


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _first_sentence(markdown: str, limit: int = 160) -> str:
    """The first sentence of the first paragraph-like line, for a DRAFT summary."""
    for block in re.split(r"\n\s*\n", markdown):
        line = " ".join(block.split())
        if not line or line.startswith(("#", "```", "~~~", "<", "|", ">", "    ")):
            continue
        line = re.sub(r"^([-*+]|\d+[.)])\s+", "", line)
        # A sentence ends at . ! or ? before white space or the end. One character class per
        # position keeps this linear: the old lazy `(.+?[.!?])` was quadratic on punctuation-free text.
        m = _SENTENCE_END.search(line, 1)
        sentence = line[: m.end()] if m else line
        if len(sentence) > limit:
            sentence = sentence[: limit - 1].rsplit(" ", 1)[0] + "…"
        return sentence
    return ""


def _close_open_blocks(lines: list[str], md: MarkdownIt) -> list[str]:
    """Close a fence or raw-HTML block left open at the end of a chunk of notes.

    Notes are cut into sections and re-joined under new headings; an unclosed ```` ``` ````
    at the end of one chunk would otherwise swallow every heading after it.
    """
    text = "\n".join(lines)
    tokens = md.parse(text)
    out = list(lines)
    for t in tokens:
        if t.level != 0 or t.map is None:
            continue
        if t.type == "fence":
            start, end = t.map
            closed = False
            if end - start >= 2 and end - 1 < len(lines):
                last = lines[end - 1].strip()
                ch = t.markup[0]
                closed = len(last) >= len(t.markup) and set(last) == {ch}
            if not closed and end >= len(lines):
                out.append(t.markup)
        elif t.type == "html_block" and t.map[1] >= len(lines):
            head = t.content.lstrip().lower()
            for opener, closer in (
                ("<!--", "-->"),
                ("<?", "?>"),
                ("<![cdata[", "]]>"),
                ("<pre", "</pre>"),
                ("<script", "</script>"),
                ("<style", "</style>"),
                ("<textarea", "</textarea>"),
                ("<!", ">"),
            ):
                if head.startswith(opener):
                    if closer not in t.content.lower()[len(opener):]:
                        out.append(closer)
                    break
    return out


# --------------------------------------------------------------------------- offline skeleton


class _Chunk(BaseModel):
    title: str  # plain text, for the front matter
    heading: str = ""  # the notes' heading as written (inline Markdown kept), for the body
    attr_id: str | None = None
    lines: list[str]
    source: str  # "notes/a.md:12" for the DRAFT note
    planning: bool = False  # the author's notes to self (TODO, plan, order): never a concept


# Headings that plan the explainer rather than teach: "TODO", "Order (rough)", "notes to self",
# "Open questions", a file titled "... - plan". Matched on the whole heading (issue 9.8).
_PLANNING = re.compile(
    r"(?i)^\W*(?:todo|to-?do|to do|fixme|tbd|plan|planning|outline|order|structure|notes?(?: to (?:self|me))?|"
    r"concepts|open questions|questions for me|ideas|scratch|later|misc)\b[^a-z0-9]*(?:\(?rough\)?|list|s)?\W*$"
)
_PLANNING_SUFFIX = re.compile(r"(?i)\s*(?:[-–—:|]\s*|\()(?:[a-z]+ ?[+&] ?)?(?:plan|planning|outline|notes|draft)\)?\s*$")


def is_planning(title: str) -> bool:
    """A heading that is a note to self, or a title like "SQLite WAL explainer - plan"."""
    if len(title) > 200:  # not a planning heading; and keeps both patterns linear
        return False
    return bool(_PLANNING.match(title) or _PLANNING_SUFFIX.search(title))


def _split_file(note: NoteFile, md: MarkdownIt, *, first: bool) -> tuple[str | None, list[_Chunk]]:
    """Cut one notes file into concept chunks. Returns (the file's title heading, chunks)."""
    lines = note.text.split("\n")
    tokens = md.parse(note.text)
    heads: list[tuple[int, int, int, str]] = []  # (level, start, end, inline text)
    for i, t in enumerate(tokens):
        if t.type == "heading_open" and t.level == 0 and t.map is not None:
            heads.append((int(t.tag[1]), t.map[0], t.map[1], tokens[i + 1].content))
    stem_title = humanise(Path(note.path).stem)
    if not heads:
        body = [ln for ln in lines]
        return None, [_Chunk(title=stem_title, lines=body, source=f"{note.path}:1")] if note.text.strip() else []

    file_title: str | None = None
    top = min(h[0] for h in heads)
    at_top = [h for h in heads if h[0] == top]
    concept_heads = heads
    if len(at_top) == 1 and heads[0][0] == top and len(heads) > 1:
        file_title = _heading_text(heads[0][3])[0] or None
        concept_heads = heads[1:]
    level = min(h[0] for h in concept_heads)
    cuts = [h for h in concept_heads if h[0] == level]

    sub = {h[1]: h for h in concept_heads if h[0] > level}

    def render(start: int, stop: int) -> list[str]:
        # Deeper headings move under the new level-2 concept headings (### and below).
        body: list[str] = []
        i = start
        while i < stop:
            if i in sub:
                s_lvl, _s_start, s_end, s_inline = sub[i]
                s_text, _ = _heading_text(s_inline)
                body.append("#" * min(6, 2 + (s_lvl - level)) + " " + (s_text or "…"))
                i = s_end
                continue
            body.append(lines[i])
            i += 1
        return body

    chunks: list[_Chunk] = []
    intro_start = heads[0][2] if file_title is not None else 0
    intro_lines = render(intro_start, cuts[0][1])
    if any(ln.strip() for ln in intro_lines):
        if file_title is not None and not first:
            intro_title = file_title
        else:
            intro_title = "Overview" if file_title or first else stem_title
        planning = file_title is not None and is_planning(file_title)  # "who:/goal:" under "X - plan"
        chunks.append(_Chunk(title=intro_title, lines=intro_lines, source=f"{note.path}:{intro_start + 1}", planning=planning))

    for k, (_lvl, start, end, inline) in enumerate(cuts):
        stop = cuts[k + 1][1] if k + 1 < len(cuts) else len(lines)
        raw, attr = _heading_text(inline)
        chunks.append(
            _Chunk(
                title=_plain_heading(raw) or "Untitled section",
                heading=raw,
                attr_id=attr,
                lines=render(end, stop),
                source=f"{note.path}:{start + 1}",
                planning=is_planning(_plain_heading(raw)),
            )
        )
    return file_title, chunks


def _subheadings(lines: list[str], md: MarkdownIt) -> list:
    tokens = md.parse("\n".join(lines))
    return [tokens[i + 1] for i, t in enumerate(tokens) if t.type == "heading_open" and t.level == 0]


def _plain_heading(inline: str) -> str:
    """Heading text as the loader compares it (the loader's own function, so the two agree)."""
    from tutor.explainer import plain_heading_text

    return plain_heading_text(inline)


def _block_parser() -> MarkdownIt:
    """Block structure only: headings and fences are all the skeleton needs, and markdown-it's
    inline link rule is quadratic on text such as a long run of `[` (issue 16)."""
    return MarkdownIt("commonmark").disable(["inline", "text_join"])


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def offline_skeleton(notes: list[NoteFile], *, title: str | None = None, author: str = "") -> str:
    """A valid format-v1 explainer built only from the notes' headings and paragraphs.

    Each top-level heading becomes a concept (a lone first heading above the others is the
    title), deeper headings stay inside their section, prerequisites follow the notes'
    order, check questions are left empty, and DRAFT markers show what the author must
    still write. The notes' text is copied verbatim: nothing is invented.
    """
    md = _block_parser()
    chunks: list[_Chunk] = []
    doc_title: str | None = None
    for _i, note in enumerate(notes):
        file_title, file_chunks = _split_file(note, md, first=(doc_title is None))
        if doc_title is None and file_title:
            doc_title = file_title
        chunks.extend(file_chunks)
    left_out = [ch for ch in chunks if ch.planning]
    if len(left_out) < len(chunks):
        chunks = [ch for ch in chunks if not ch.planning]
    else:  # nothing but planning: a skeleton of it beats none
        left_out = []
    if not chunks:
        raise TutorError(f"{notes[0].path}: the notes are empty")
    if doc_title and _PLANNING_SUFFIX.search(doc_title):
        doc_title = _PLANNING_SUFFIX.sub("", doc_title) or doc_title
    doc_title = title or doc_title or humanise(Path(notes[0].path).stem)

    ids: set[str] = set()
    # A concept title equal to some other heading's text could tie that heading to the
    # concept (the loader's title rule), so concept titles avoid every subheading's text.
    titles: set[str] = {_plain_heading(t.content).casefold() for ch in chunks for t in _subheadings(ch.lines, md)}
    concepts: list[tuple[str, str, str, str, list[str]]] = []  # id, title, heading, summary, body lines
    for ch in chunks:
        cid = _unique(ch.attr_id if ch.attr_id and re.fullmatch(r"[a-z0-9][a-z0-9-]*", ch.attr_id) else slug(ch.title, limit=48), ids)
        ctitle = ch.title
        n = 2
        while ctitle.casefold() in titles:
            ctitle = f"{ch.title} ({n})"
            n += 1
        titles.add(ctitle.casefold())
        body = _close_open_blocks(_trim(ch.lines), md)
        concepts.append((cid, ctitle, ch.heading or ctitle, _first_sentence("\n".join(body)), body))

    sources = ", ".join(n.path for n in notes)
    fm: list[str] = [
        "---",
        "tutor: 1",
        f"title: {yaml_str(doc_title)}",
        f"summary: {yaml_str(f'{DRAFT}: one or two sentences on what the reader will understand.')}",
        f"audience: {yaml_str(f'{DRAFT}: who this is for and what they already know.')}",
    ]
    if author:
        fm.append(f"author: {yaml_str(author)}")
    fm.append("concepts:")
    prev: str | None = None
    for cid, ctitle, _, summary, _ in concepts:
        fm += [
            f"  - id: {yaml_str(cid)}",
            f"    title: {yaml_str(ctitle)}",
            f"    summary: {yaml_str(f'{DRAFT}: ' + (summary or 'one line on this concept.'))}",
            f"    prerequisites: [{yaml_str(prev)}]" if prev else "    prerequisites: []",
            f"    checks: []  # {DRAFT}: add questions, e.g. - question: \"...\"  answer: \"...\"  misconceptions: [\"...\"]",
        ]
        prev = cid
    fm.append("---")

    doc: list[str] = [
        "",
        ai_preamble(),
        "",
        f"> **{DRAFT}:** skeleton made by `tutor compile --offline` from {sources}. "
        "Check the concept order and prerequisites, write the summaries and check "
        f"questions in the front matter, fill the sections marked {DRAFT}, then remove "
        f"the {DRAFT} markers.",
    ]
    if left_out:
        # Notes to self are not concepts, but they are the author's words (audience, goal,
        # order): kept verbatim before the first section, headings as bold lines.
        doc += ["", f"> **{DRAFT}:** your planning notes, kept for you and not taught as concepts; use them, then delete them up to the first section."]
        for ch in left_out:
            doc += ["", f"**{ch.title}** ({ch.source})", ""]
            fence = False
            for ln in _trim(ch.lines):
                if ln.lstrip().startswith(("```", "~~~")):
                    fence = not fence
                doc.append(f"**{ln.lstrip('#').strip()}**" if not fence and ln.startswith("#") else ln)
    for cid, _, heading, _, lines in concepts:
        doc += ["", f"## {heading} {{#{cid}}}", ""]
        if lines:
            doc += lines
        else:
            doc.append(f"> **{DRAFT}:** the notes say nothing here yet; write this section.")
    return "\n".join(fm + doc) + "\n"

