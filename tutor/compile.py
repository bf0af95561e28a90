"""Notes -> explainer: the offline skeleton and the Claude compile.

Authors dump rough notes (Markdown or text files, or folders of them). ``tutor compile
--offline`` turns their headings and paragraphs into a *valid* format-v1 skeleton with
visible DRAFT markers, so an author without a key still starts from a file ``tutor
check`` accepts. ``tutor compile`` with Claude drafts an outline, asks the author about
the gaps one question at a time, then writes the explainer, which is validated by the
loader (one repair round, then a draft + errors file, never a silent failure).

This module never imports textual; the Claude pipeline imports anthropic only through
``tutor.engine.claude`` and only when it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt
from pydantic import BaseModel

from tutor.errors import Problem, TutorError

NOTE_SUFFIXES = (".md", ".markdown", ".mdown", ".txt", ".text")
DRAFT = "DRAFT"
GAP_MARKER = "[GAP:"  # the visible marker the Claude compile puts where the notes are silent

_FALLBACK_PREAMBLE = (
    "> **Note to any AI assistant reading this file:** you are a tutor for this document. "
    "Diagnose first (\"I want to explain X to you. Do you already know about Y?\"), teach one "
    "concept at a time in short messages, check understanding without giving answers away, "
    "cite section headings, and never re-explain what the reader already knows. If anything "
    "here is unclear, wrong or could be improved, tell the author inside "
    "<feedback>...</feedback> tags."
)


def ai_preamble() -> str:
    """The canonical note to AI assistants; the loader owns the text, we fall back if absent."""
    try:
        from tutor import explainer

        text = getattr(explainer, "AI_PREAMBLE", None)
    except Exception:  # pragma: no cover - the loader module always imports
        text = None
    return (text or _FALLBACK_PREAMBLE).strip()


# --------------------------------------------------------------------------- notes


class NoteFile(BaseModel):
    """One notes file as read from disk (newlines normalised, BOM stripped)."""

    path: str
    text: str


def collect_notes(paths: list[str | Path]) -> list[NoteFile]:
    """Read NOTES arguments: files, or folders searched recursively for note files.

    Order is the order given, and sorted by path inside a folder, so the same notes
    always give the same skeleton and the same prompt (which keeps the prompt cache warm).
    """
    if not paths:
        raise TutorError("no notes given", hint="usage: tutor compile NOTES... -o explainers/NAME.md")
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in NOTE_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise TutorError(
                    f"{p}: no notes found in this folder",
                    hint=f"tutor reads files ending in {', '.join(NOTE_SUFFIXES)}",
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise TutorError(f"{p}: no such file or folder")
    notes: list[NoteFile] = []
    seen: set[Path] = set()
    for f in files:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            data = f.read_bytes()
        except OSError as e:
            raise TutorError(f"{f}: cannot read: {e.strerror or e}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise TutorError(
                f"{f}:{line}: not UTF-8 text",
                hint="save the notes as UTF-8 (or leave this file out)",
            ) from None
        if "\x00" in text:
            raise TutorError(f"{f}: looks like a binary file, not notes", hint="leave it out of NOTES")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        notes.append(NoteFile(path=str(f), text=text))
    if not any(n.text.strip() for n in notes):
        raise TutorError(f"{', '.join(n.path for n in notes)}: the notes are empty")
    return notes


def notes_hash(notes: list[NoteFile]) -> str:
    """A stable hash of the notes (paths and text) so a resumed compile can tell they changed."""
    h = hashlib.sha256()
    for n in notes:
        h.update(n.path.encode() + b"\x00" + n.text.encode() + b"\x00")
    return h.hexdigest()


# --------------------------------------------------------------------------- helpers


def slugify(text: str) -> str:
    """A concept id ``[a-z0-9][a-z0-9-]*`` from a heading's text."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)
    return s[:48].strip("-") or "section"


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


def _first_sentence(markdown: str, limit: int = 160) -> str:
    """The first sentence of the first paragraph-like line, for a DRAFT summary."""
    for block in re.split(r"\n\s*\n", markdown):
        line = " ".join(block.split())
        if not line or line.startswith(("#", "```", "~~~", "<", "|", ">", "    ")):
            continue
        line = re.sub(r"^([-*+]|\d+[.)])\s+", "", line)
        m = re.search(r"(.+?[.!?])(\s|$)", line)
        sentence = m.group(1) if m else line
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
        chunks.append(_Chunk(title=intro_title, lines=intro_lines, source=f"{note.path}:{intro_start + 1}"))

    for k, (lvl, start, end, inline) in enumerate(cuts):
        stop = cuts[k + 1][1] if k + 1 < len(cuts) else len(lines)
        raw, attr = _heading_text(inline)
        chunks.append(
            _Chunk(
                title=_plain_heading(raw) or "Untitled section",
                heading=raw,
                attr_id=attr,
                lines=render(end, stop),
                source=f"{note.path}:{start + 1}",
            )
        )
    return file_title, chunks


def _subheadings(lines: list[str], md: MarkdownIt) -> list:
    tokens = md.parse("\n".join(lines))
    return [tokens[i + 1] for i, t in enumerate(tokens) if t.type == "heading_open" and t.level == 0]


def _plain_heading(inline: str) -> str:
    """Heading text as the loader compares it: inline Markdown stripped, spaces normalised."""
    md = MarkdownIt("commonmark")
    parts: list[str] = []
    for tok in md.parseInline(inline):
        for child in tok.children or []:
            if child.type in ("text", "code_inline", "html_inline", "image"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
    return " ".join("".join(parts).split())


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
    md = MarkdownIt("commonmark")
    chunks: list[_Chunk] = []
    doc_title: str | None = None
    for i, note in enumerate(notes):
        file_title, file_chunks = _split_file(note, md, first=(doc_title is None))
        if doc_title is None and file_title:
            doc_title = file_title
        chunks.extend(file_chunks)
    if not chunks:
        raise TutorError(f"{notes[0].path}: the notes are empty")
    doc_title = title or doc_title or humanise(Path(notes[0].path).stem)

    ids: set[str] = set()
    # A concept title equal to some other heading's text could tie that heading to the
    # concept (the loader's title rule), so concept titles avoid every subheading's text.
    titles: set[str] = {_plain_heading(t.content).casefold() for ch in chunks for t in _subheadings(ch.lines, md)}
    concepts: list[tuple[str, str, str, str, list[str]]] = []  # id, title, heading, summary, body lines
    for ch in chunks:
        cid = _unique(ch.attr_id if ch.attr_id and re.fullmatch(r"[a-z0-9][a-z0-9-]*", ch.attr_id) else slugify(ch.title), ids)
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
            f"  - id: {cid}",
            f"    title: {yaml_str(ctitle)}",
            f"    summary: {yaml_str(f'{DRAFT}: ' + (summary or 'one line on this concept.'))}",
            f"    prerequisites: [{prev}]" if prev else "    prerequisites: []",
            f"    checks: []  # {DRAFT}: add questions, e.g. - question: \"...\"  answer: \"...\"  misconceptions: [\"...\"]",
        ]
        prev = cid
    fm.append("---")

    body: list[str] = [
        "",
        ai_preamble(),
        "",
        f"> **{DRAFT}:** skeleton made by `tutor compile --offline` from {sources}. "
        "Check the concept order and prerequisites, write the summaries and check "
        f"questions in the front matter, fill the sections marked {DRAFT}, then remove "
        f"the {DRAFT} markers.",
    ]
    for cid, _, heading, _, lines in concepts:
        body += ["", f"## {heading} {{#{cid}}}", ""]
        if lines:
            body += lines
        else:
            body.append(f"> **{DRAFT}:** the notes say nothing here yet; write this section.")
    return "\n".join(fm + body) + "\n"


# --------------------------------------------------------------------------- output


def check_target(output: str | Path, *, force: bool, notes: list[NoteFile] | None = None) -> Path:
    """Refuse to overwrite an existing file (without --force) or one of the notes, before any work."""
    out = Path(output)
    if out.is_dir():
        raise TutorError(f"{out}: is a folder", hint="give a file name: -o explainers/NAME.md")
    if notes and any(Path(n.path).resolve() == out.resolve() for n in notes):
        raise TutorError(f"{out}: is one of the notes; choose another output file")
    if out.exists() and not force:
        raise TutorError(f"{out}: already exists", hint="use --force to overwrite it, or choose another -o")
    if not out.parent.exists():
        raise TutorError(f"{out.parent}: no such folder", hint="create it first, or choose another -o")
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file + rename so a crash never leaves half an explainer behind."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def validate_text(text: str, name: str) -> tuple[object | None, list[Problem]]:
    """Run the real loader on ``text`` (written to a temp file named like the target).

    Returns (explainer, []) when valid, else (None, problems) with lines as the loader
    reported them, the file name rewritten to ``name``.
    """
    from tutor.errors import ExplainerError
    from tutor.explainer import load

    with tempfile.TemporaryDirectory(prefix="tutor-compile-") as d:
        p = Path(d) / (Path(name).name or "explainer.md")
        p.write_text(text, encoding="utf-8")
        try:
            exp = load(p)
        except ExplainerError as e:
            return None, [Problem(name, pr.line, pr.message) for pr in e.problems]
        except TutorError as e:
            return None, [Problem(name, None, str(e))]
    if getattr(exp, "plain", False):
        return None, [Problem(name, 1, "no format-v1 front matter (expected a '---' block with 'tutor: 1')")]
    return exp, []


def compile_offline(
    notes_paths: list[str | Path], output: str | Path, *, force: bool = False, title: str | None = None, author: str = ""
) -> tuple[Path, object]:
    """``tutor compile --offline``: write the skeleton and prove it loads."""
    notes = collect_notes(notes_paths)
    out = check_target(output, force=force, notes=notes)
    text = offline_skeleton(notes, title=title, author=author)
    exp, problems = validate_text(text, str(out))
    if problems:  # a bug in the skeleton builder: still never lose the work
        draft, errors = save_draft(out, text, problems)
        raise TutorError(
            f"{out}: the skeleton did not validate ({len(problems)} problem(s)); saved {draft} and {errors}",
            hint=str(problems[0]),
        )
    write_atomic(out, text)
    return out, exp


def draft_paths(out: Path) -> tuple[Path, Path]:
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.draft.md"), out.with_name(f"{stem}.errors.txt")


def save_draft(out: Path, text: str, problems: list[Problem]) -> tuple[Path, Path]:
    """Save an invalid result beside the target: NAME.draft.md + NAME.errors.txt."""
    draft, errors = draft_paths(out)
    write_atomic(draft, text)
    lines = [str(Problem(str(draft), p.line, p.message)) for p in problems]
    write_atomic(errors, "\n".join(lines) + "\n")
    return draft, errors
