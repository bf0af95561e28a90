"""The explainer: typed models and the loader.

Format v1 is documented in docs/explainer-format.md. ``load(path)`` reads either a
compiled explainer (YAML front matter with ``tutor: 1``) or any plain Markdown file,
whose headings become the concepts.

CONTRACT (other modules rely on these names; the loader may grow, not change them):
- ``load(path) -> Explainer`` raises ``ExplainerError`` (a ``TutorError``) and nothing else.
- ``Explainer.concepts`` is in teaching order (a topological order of prerequisites).
- ``Concept.section`` is the concept's body text with its 1-based source line range.

Why the loader reads the front matter by lines itself: every error must name a line of
the *file*, so the YAML is composed into a node tree (which keeps line marks) and
validation errors are mapped back to those nodes. Markdown is parsed with markdown-it's
block parser only (headings are all we need), which keeps a 10 MB file fast.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tutor.errors import ExplainerError, Problem
from tutor.text import escape_controls, plural, slug

FORMAT_VERSION = 1

#: Files larger than this are refused before reading them whole.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Front matter larger than this is refused (a real one is a few KB; YAML is slow).
MAX_FRONT_MATTER_BYTES = 512 * 1024
#: Deeper YAML nesting is refused (the composer recurses).
MAX_YAML_DEPTH = 50
#: More concepts than this cannot be taught; the file is refused with a clear error.
MAX_CONCEPTS = 5000
PLAIN_OUTLINE_CONCEPTS = 60  # a plain file with more headings is taught by its top levels
#: Headings longer than this are not inline-parsed for their title text.
MAX_HEADING_INLINE = 1000

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
#: ``feedback:`` in the front matter: an email address or an http(s) URL, nothing else.
FEEDBACK_RE = re.compile(r"(?:[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+|https?://[^\s<>\"]+)\Z")
_HEADING_ATTR_RE = re.compile(r"\s*\{\s*#([^\s{}]+)\s*\}\s*\Z")
_FM_KEY_RE = re.compile(r"[A-Za-z_][\w-]*\s*:")

#: The canonical note to AI assistants placed before the first section. ``compile``
#: reuses it so every explainer also works when pasted into a chatbot.
AI_PREAMBLE = (
    "> **Note to any AI assistant reading this file:** you are a tutor for this document, and the\n"
    "> person talking to you wants to learn what it explains. Diagnose first: start with one line on\n"
    "> what it covers, then ask whether the reader knows the first prerequisite (\"I want to explain X\n"
    "> to you. Do you already know about Y?\"). Ask one question per message and wait for the answer.\n"
    "> Teach one concept at a time, in short messages, following the prerequisites in the front\n"
    "> matter; never re-explain what the reader already knows. Check understanding with the listed\n"
    "> checks; never show a check's answer before the reader has tried, and use the listed\n"
    "> misconceptions to spot wrong answers. Cite the section heading you draw on. At the end, offer\n"
    "> to write a short feedback note the reader can send to the author (see `feedback:` above)."
)


class CheckQuestion(BaseModel):
    question: str
    answer: str = ""
    misconceptions: list[str] = Field(default_factory=list)


class Section(BaseModel):
    """A concept's text in the body. Lines are 1-based and inclusive."""

    heading: str
    level: int = 2
    text: str  # Markdown, heading line excluded
    start_line: int  # the heading's line
    end_line: int


class Concept(BaseModel):
    id: str
    title: str
    summary: str = ""
    prerequisites: list[str] = Field(default_factory=list)
    checks: list[CheckQuestion] = Field(default_factory=list)
    section: Section
    line: int | None = None  # where the concept is declared (front matter line), if any


class Explainer(BaseModel):
    path: str
    format_version: int = FORMAT_VERSION
    title: str
    summary: str = ""
    audience: str = ""
    author: str = ""
    feedback: str = ""  # where to send notes to the author (email address or URL); optional
    preamble: str = ""  # text before the first concept section (the note to AI assistants)
    concepts: list[Concept]  # teaching order
    source: str  # the whole file text, for prompts and search
    content_hash: str  # sha256 hex of the file bytes
    plain: bool = False  # True when loaded from Markdown without front matter
    warnings: list[Problem] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)  # unknown front-matter keys, kept as read
    body_line: int = 1  # first line after the front matter (1 when there is none)

    def concept(self, concept_id: str) -> Concept:
        for c in self.concepts:
            if c.id == concept_id:
                return c
        raise KeyError(concept_id)

    @cached_property
    def _word_counts(self) -> tuple[int, int]:
        # (front matter, body): words never span lines, so the two add up exactly.
        # Cached: splitting 10 MB into words takes a tenth of a second.
        if self.body_line <= 1:
            return 0, len(self.source.split())
        parts = self.source.split("\n", self.body_line - 1)
        body = parts.pop()
        return len("\n".join(parts).split()), len(body.split())

    @property
    def word_count(self) -> int:
        return sum(self._word_counts)

    @property
    def body_word_count(self) -> int:
        """Words a reader reads: the file without its front matter."""
        return self._word_counts[1]


# --------------------------------------------------------------------------- front matter models


def _none_to_list(v: Any) -> Any:
    return [] if v is None else v


def _none_to_str(v: Any) -> Any:
    return "" if v is None else v


class _CheckIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    question: str
    answer: str = ""
    misconceptions: list[str] = Field(default_factory=list)

    _lists = field_validator("misconceptions", mode="before")(_none_to_list)
    _strs = field_validator("answer", mode="before")(_none_to_str)


class _ConceptIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    id: str
    title: str
    summary: str = ""
    prerequisites: list[str] = Field(default_factory=list)
    checks: list[_CheckIn] = Field(default_factory=list)

    _lists = field_validator("prerequisites", "checks", mode="before")(_none_to_list)
    _strs = field_validator("summary", mode="before")(_none_to_str)


class _FrontMatterIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    tutor: int = FORMAT_VERSION
    title: str
    summary: str = ""
    audience: str = ""
    author: str = ""
    feedback: str = ""  # where readers send notes: an email address or an http(s) URL
    concepts: list[_ConceptIn]

    _strs = field_validator("summary", "audience", "author", "feedback", mode="before")(_none_to_str)


# --------------------------------------------------------------------------- YAML with line marks


class _Refused(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


def _yaml_loader_class():
    """A SafeLoader that refuses anchors/aliases (no alias bombs) and deep nesting."""
    import yaml

    class Loader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            line = event.start_mark.line if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(
                    f"YAML alias *{event.anchor} is not allowed in explainer front matter; write the value out",
                    line,
                )
            if getattr(event, "anchor", None):
                raise _Refused(
                    f"YAML anchor &{event.anchor} is not allowed in explainer front matter; write the value out",
                    line,
                )
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"front matter is nested more than {MAX_YAML_DEPTH} levels deep", line)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return Loader


def _parse_yaml(text: str) -> tuple[Any, Any]:
    """Return (data, root node). Raises _Refused with a 0-based YAML line."""
    import yaml

    try:
        # The reader checks characters up front (control characters are not YAML).
        loader = _yaml_loader_class()(text)
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) if isinstance(e.position, int) else None
        raise _Refused(
            f"front matter contains the control character U+{e.character:04X}, which YAML does not allow",
            line,
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _refuse_duplicate_keys(node)
        data = loader.construct_document(node)
        return data, node
    except _Refused:
        raise
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line if mark else None
        problem = e.problem or "cannot be read"
        m = re.search(r"tag '([^']*)'", problem)
        if m:
            tag = m.group(1).replace("tag:yaml.org,2002:", "!!")
            raise _Refused(
                f"YAML tag {tag} is not allowed; front matter holds plain data (text, numbers, lists, mappings)",
                line,
            ) from None
        raise _Refused(f"invalid YAML in front matter: {problem}", line) from None
    except yaml.MarkedYAMLError as e:
        # Point at where the broken construct starts (an unclosed quote, a bad
        # indentation) and say where YAML noticed it.
        ctx, prob = e.context_mark, e.problem_mark
        line = (ctx or prob).line if (ctx or prob) else None
        what = e.problem or "syntax error"
        if e.context:
            what = f"{e.context}: {what}"
        if ctx and prob and prob.line != ctx.line:
            what += f" (noticed {plural(prob.line - ctx.line, 'line')} further down)"
        raise _Refused(f"invalid YAML in front matter: {what}", line) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) if isinstance(e.position, int) else None
        raise _Refused(f"front matter contains a character YAML does not allow (U+{e.character:04X})", line) from None
    except yaml.YAMLError as e:
        raise _Refused(f"invalid YAML in front matter: {e}", None) from None
    except RecursionError:
        raise _Refused("front matter is nested too deeply", None) from None
    finally:
        loader.dispose()


def _refuse_duplicate_keys(root: Any) -> None:
    """PyYAML keeps the last of two equal keys silently; an author means one of them."""
    import yaml

    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        raise _Refused(
                            f"key '{k.value}' appears twice in the same mapping (first on line "
                            f"{{line:{seen[k.value]}}}); keep one",
                            k.start_mark.line,
                        )
                    seen[k.value] = k.start_mark.line
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _node_at(root: Any, loc: tuple) -> Any:
    """The deepest YAML node along a pydantic error location."""
    import yaml

    node = root
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == part:
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
    return node


def _key_line(root: Any, loc: tuple, offset: int) -> int | None:
    """The file line for an error at ``loc``: the key's own line when it exists (a block
    value starts on the next line), else the item, else the nearest existing parent."""
    import yaml

    if root is None:
        return None
    if loc and isinstance(loc[-1], str):
        parent = _node_at(root, loc[:-1])
        if isinstance(parent, yaml.MappingNode) and _node_at(root, loc) is not parent:
            for k, _v in parent.value:
                if isinstance(k, yaml.ScalarNode) and k.value == loc[-1]:
                    return k.start_mark.line + offset
    node = _node_at(root, loc)
    return node.start_mark.line + offset


def _loc_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_TYPE_WORDS = {
    "string_type": "text",
    "list_type": "a list",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "model_type": "a mapping of keys (key: value)",
    "dict_type": "a mapping of keys (key: value)",
}


def _describe(err: dict) -> str:
    loc = tuple(err["loc"])
    where = _loc_name(loc)
    typ = err["type"]
    if typ == "missing":
        parent = _loc_name(loc[:-1]) or "front matter"
        return f"{parent} is missing the required key '{loc[-1]}'"
    if typ in _TYPE_WORDS:
        got = type(err.get("input")).__name__
        got = {"NoneType": "nothing", "str": "text", "dict": "a mapping", "list": "a list"}.get(got, got)
        return f"'{where}' should be {_TYPE_WORDS[typ]}, not {got}"
    return f"'{where}': {err['msg']}"


# --------------------------------------------------------------------------- reading the file


def _read_text(path: Path, name: str) -> tuple[str, bytes]:
    def fail(msg: str, line: int | None = None) -> ExplainerError:
        return ExplainerError([Problem(name, line, msg)])

    from tutor.files import UnreadableFile, safe_read_bytes

    try:
        # One home for the limits (tutor/files.py): regular files only, opened without
        # blocking, at most MAX_FILE_BYTES read -- a FIFO swapped in after stat() cannot hang us.
        data = safe_read_bytes(path, MAX_FILE_BYTES, what="Markdown file")
    except UnreadableFile as e:
        raise fail(e.reason + (f"; {e.hint}" if e.hint else "")) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("file is UTF-16 text; expected UTF-8 (re-save the file as UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise fail("looks like a binary file (it contains NUL bytes); expected UTF-8 Markdown text", line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise fail(
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded); expected UTF-8 - re-save the file as UTF-8",
            line,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise fail("file is empty; an explainer needs at least some Markdown text")
    return text, data


# --------------------------------------------------------------------------- Markdown


_md = None


def new_markdown(*, html: bool = False) -> Any:
    """THE markdown-it setup for explainer text, shared by the loader and the HTML export:
    CommonMark plus GFM tables and strikethrough (as the app draws them), no linkify (a bare
    URL stays text). Raw HTML is off, so a tag in untrusted text renders as text; only the
    loader, which finds block structure and never renders, passes ``html=True`` so that a
    heading inside ``<div>`` is not a section (as in any CommonMark viewer and in compile's
    skeleton check). A new instance each call: callers disable rules on their own copy."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": html, "linkify": False}).enable(["table", "strikethrough"])


def _markdown():
    """A block-only CommonMark parser (inline parsing is done per heading, on demand)."""
    global _md
    if _md is None:
        import logging

        # "normalize" only turns CR/CRLF into LF and NUL into U+FFFD: load() has already
        # done the first and refuses the second, so skip a pass over the whole text.
        _md = new_markdown(html=True).disable(["normalize", "inline", "text_join"], ignoreInvalid=True)
        _dispatch_block_rules(_md)
        # Every block rule calls LOGGER.debug() on entry: ~6 calls per line, a fifth of
        # the parse time on big files. Unless someone really asked for markdown-it debug
        # output, make those calls no-ops for this process.
        import sys

        for mod_name, module in list(sys.modules.items()):
            if not mod_name.startswith("markdown_it.rules_block."):
                continue
            logger = getattr(module, "LOGGER", None)
            if isinstance(logger, logging.Logger) and not logger.isEnabledFor(logging.DEBUG):
                logger.debug = _no_log  # type: ignore[method-assign]
    return _md


def _no_log(*_args: Any, **_kwargs: Any) -> None:
    return None


#: Block rules that can only match when the line's first non-space character is one of
#: these (each rule checks it before doing anything else, and all of them refuse
#: lines indented 4+ columns, which are code).
_RULE_FIRST_CHARS = {
    "fence": "`~",
    "blockquote": ">",
    "hr": "*-_",
    "list": "*-+0123456789",
    "reference": "[",
    "html_block": "<",
    "heading": "#",
}


def _dispatch_block_rules(md: Any) -> None:
    """Replace each block rule chain by one dispatcher that tries only the rules able
    to match the line's first character, in the original order.

    markdown-it tries every rule on every line (and every terminator rule on every
    paragraph line); most return False after looking at one character. Skipping those
    calls halves the parse of a large file. The token stream is identical:
    tests/test_explainer_hostile.py compares it with a stock parser on the CommonMark
    corpus and on random documents.
    """
    ruler = md.block.ruler
    ruler.getRules("")  # compile the chains
    rules, cache = getattr(ruler, "__rules__", None), getattr(ruler, "__cache__", None)
    if not isinstance(rules, list) or not isinstance(cache, dict):
        return  # another markdown-it layout: keep the stock (slower, identical) chains
    names = {id(rule.fn): rule.name for rule in rules}
    for chain, fns in list(cache.items()):
        named = [(names.get(id(fn), ""), fn) for fn in fns]
        cache[chain] = [_make_dispatcher(named)] if named else []


def _make_dispatcher(named: list[tuple[str, Any]]) -> Any:
    every = [fn for _, fn in named]
    indented = [fn for name, fn in named if name not in _RULE_FIRST_CHARS]
    general = [fn for name, fn in named if name not in _RULE_FIRST_CHARS and name != "code"]
    by_char: dict[str, list[Any]] = {}
    for chars in _RULE_FIRST_CHARS.values():
        for ch in chars:
            by_char[ch] = [
                fn
                for name, fn in named
                if (ch in _RULE_FIRST_CHARS.get(name, "")) or (name not in _RULE_FIRST_CHARS and name != "code")
            ]

    def dispatch(state: Any, start: int, end: int, silent: bool) -> bool:
        pos = state.bMarks[start] + state.tShift[start]
        if pos >= state.eMarks[start]:
            fns = every  # blank line: let every rule decide, as markdown-it would
        elif state.sCount[start] - state.blkIndent >= 4:
            fns = indented
        else:
            fns = by_char.get(state.src[pos], general)
        for fn in fns:
            if fn(state, start, end, silent):
                return True
        return False

    return dispatch


_inline_md = None
_MAX_INLINE_HEADING = 2000  # characters; longer headings are taken literally


def plain_heading_text(raw: str) -> str:
    """The plain text of a heading's inline Markdown (emphasis, code, links stripped)."""
    global _inline_md
    if len(raw) > _MAX_INLINE_HEADING or not any(ch in raw for ch in "*_`[]<>\\&!"):
        # markdown-it's link rule is quadratic on a long run of `[`: a heading that long is
        # not prose, so it is shown as written rather than parsed.
        return " ".join(raw.split())
    if _inline_md is None:
        from markdown_it import MarkdownIt

        _inline_md = MarkdownIt("commonmark")
    parts: list[str] = []
    for tok in _inline_md.parseInline(raw):
        for child in tok.children or []:
            if child.type in ("text", "code_inline", "html_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
            elif child.type == "image":
                parts.append(child.content)
    return " ".join("".join(parts).split())


class _Heading:
    __slots__ = ("level", "raw", "_text", "attr_id", "start", "end")

    def __init__(self, level: int, raw: str, start: int, end: int):
        self.level = level
        self.start = start  # 0-based line of the heading
        self.end = end  # 0-based line after the heading (setext headings span two lines)
        m = _HEADING_ATTR_RE.search(raw)
        self.attr_id = m.group(1) if m else None
        self.raw = raw[: m.start()] if m else raw
        self._text: str | None = None

    @property
    def text(self) -> str:
        # Computed on demand: a file with 100k headings is refused before this runs.
        if self._text is None:
            if len(self.raw) > MAX_HEADING_INLINE:
                # Inline parsing is superlinear on pathological input ("[[[[..."); a
                # heading this long is not a title anyway.
                self._text = " ".join(self.raw[:MAX_HEADING_INLINE].split())
            else:
                self._text = plain_heading_text(self.raw)
        return self._text


def _headings(text: str) -> list[_Heading]:
    """Top-level headings (not inside quotes, lists or code) in document order."""
    import gc

    # The parse allocates ~20 tokens per line and keeps them all alive: the cyclic
    # GC would rescan them again and again for nothing (a third of the time on 10 MB).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        tokens = _markdown().parse(text)
        out: list[_Heading] = []
        for i, tok in enumerate(tokens):
            if tok.type == "heading_open" and tok.level == 0 and tok.map:
                raw = tokens[i + 1].content if i + 1 < len(tokens) else ""
                out.append(_Heading(int(tok.tag[1:]), raw, tok.map[0], tok.map[1]))
        del tokens
    finally:
        if was_enabled:
            gc.enable()
    return out


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


# --------------------------------------------------------------------------- front matter split


def _looks_like_yaml(lines: list[str]) -> bool:
    """True when the first line that is not blank or a comment is a ``key:`` line.

    Decides whether a leading ``---`` opens front matter (so YAML errors are reported)
    or is a Markdown thematic break followed by ordinary text.
    """
    for ln in lines:
        if ln.strip() and not ln.lstrip().startswith("#"):
            return bool(_FM_KEY_RE.match(ln))
    return False


_KNOWN_KEYS = {"tutor", "title", "summary", "audience", "author", "feedback", "concepts", "date", "tags", "description", "layout"}


def _looks_like_unclosed_front_matter(lines: list[str]) -> bool:
    """Front matter that never closes: a known key first, or two ``key:`` lines in a row."""
    keys: list[str] = []
    for ln in lines[:50]:
        if not ln.strip() or ln.lstrip().startswith("#"):
            if keys:
                break
            continue
        m = _FM_KEY_RE.match(ln)
        if not m:
            break
        keys.append(m.group().rstrip(": \t"))
    return bool(keys) and (keys[0] in _KNOWN_KEYS or len(keys) >= 2)


def _split_front_matter(lines: list[str], name: str) -> tuple[int, int] | None:
    """Return (first yaml line, closing line), 0-based, or None when there is none."""
    if not lines or lines[0].rstrip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return 1, i
    # Never closes: complain if it looks like front matter, else it is a thematic break
    # followed by text ("---\nNote: this is a draft.\n\n# Title" is Markdown).
    if _looks_like_unclosed_front_matter(lines[1:]):
        raise ExplainerError(
            [Problem(name, 1, "front matter starting here never closes; add a line with just --- after it")]
        )
    return None


# --------------------------------------------------------------------------- teaching order


def _teaching_order(decls: list[_ConceptIn]) -> tuple[list[int], list[str] | None]:
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


# --------------------------------------------------------------------------- load


def _shown(problems: list[Problem]) -> list[Problem]:
    """Control characters (ESC, BEL, C1, bidi) as \\xNN / \\uNNNN: a problem message quotes
    the file, and YAML escapes ("\\e") can put them there without a raw byte."""
    return [Problem(escape_controls(p.file), p.line, escape_controls(p.message)) for p in problems]


def load(path: str | Path, *, outline_on_error: bool = False) -> Explainer:
    """Load an explainer (format v1) or any plain Markdown file. Raises ExplainerError only;
    its problems (and the warnings) are safe to print: no control characters.

    ``outline_on_error`` is for readers: a v1 file whose front matter does not validate (one
    prerequisite typo in a shared file) opens as a plain heading outline with one warning
    naming the first problem, instead of not at all. ``tutor check`` still refuses it."""
    try:
        ex = _load(path, outline_on_error=outline_on_error)
    except ExplainerError as e:
        raise ExplainerError(_shown(e.problems)) from None
    if ex.warnings:
        ex.warnings = _shown(ex.warnings)
    return ex


def _load(path: str | Path, *, outline_on_error: bool = False) -> Explainer:
    p = Path(path)
    name = str(path)
    text, data = _read_text(p, name)
    digest = hashlib.sha256(data).hexdigest()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")

    fm = _split_front_matter(lines, name)
    meta: dict[str, Any] | str | None = None  # "markdown": a --- block that YAML cannot read
    root = None
    fm_offset = 0
    body_text = text
    if fm is not None:
        first, close = fm
        yaml_text = "\n".join(lines[first:close])
        if len(yaml_text) > MAX_FRONT_MATTER_BYTES:
            raise ExplainerError(
                [Problem(name, 1, f"front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KB; keep it to metadata and concepts")]
            )
        fm_offset = first + 1  # YAML line 0 is file line first+1 (1-based)
        try:
            meta, root = _parse_yaml(yaml_text)
        except _Refused as e:
            if not _looks_like_yaml(lines[first:close]):
                # "---\n[a link](x): text\n---": Markdown that YAML cannot read.
                meta, root = "markdown", None
            else:
                message = re.sub(r"\{line:(\d+)\}", lambda m: str(int(m.group(1)) + fm_offset), e.message)
                if e.message.startswith("invalid YAML") and any(
                    re.match(r"#{1,6} \S", ln) for ln in lines[first:close]
                ):
                    # A Markdown heading inside the "YAML": the closing --- is missing and
                    # a later thematic break was taken for it.
                    message += f"; is the closing --- missing? The front matter now runs to line {close + 1}"
                raise ExplainerError(
                    [Problem(name, None if e.line is None else e.line + fm_offset, message)]
                ) from None
        if meta is not None and not isinstance(meta, dict):
            # "---\nSome text\n---" is Markdown (a thematic break and a setext heading),
            # not front matter: only a YAML mapping counts as front matter.
            meta, root = None, None
            fm = None
        else:
            # Blank out the front matter so markdown-it's line numbers are file lines.
            body_text = "\n" * (close + 1) + "\n".join(lines[close + 1 :])

    mapping = meta if isinstance(meta, dict) else None  # anything else was reset above
    if mapping is not None and ("tutor" in mapping or "concepts" in mapping):
        try:
            return _load_v1(name, text, lines, body_text, digest, mapping, root, fm_offset)
        except ExplainerError as e:
            if not outline_on_error:
                raise
            ex = _load_plain(name, p, text, lines, body_text, digest, mapping)
            n = len(e.problems)
            more = f" (and {n - 1} more)" if n > 1 else ""
            top = e.problems[0] if e.problems else Problem(name, None, "invalid front matter")
            ex.warnings.insert(
                0,
                Problem(
                    top.file,
                    top.line,
                    f"{top.message}{more}; opened as a plain outline of its headings "
                    f"(`tutor check {name}` lists every problem for the author)",
                ),
            )
            return ex
    return _load_plain(name, p, text, lines, body_text, digest, mapping or {})


def _section_text(lines: list[str], start: int, end: int) -> str:
    return "\n".join(lines[start:end]).strip("\n")


def _load_plain(
    name: str, p: Path, text: str, lines: list[str], body_text: str, digest: str, meta: dict[str, Any]
) -> Explainer:
    warnings: list[Problem] = []
    heads = _headings(body_text)
    if len(heads) > MAX_CONCEPTS:
        # Too many to teach one by one: keep the top heading levels that fit, so deeper
        # subheadings stay inside their parent's section.
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
        # the top levels, deeper headings staying inside their parent's section.
        for level in range(max(h.level for h in heads) - 1, 0, -1):
            fewer = [h for h in heads if h.level <= level]
            if len(fewer) < 2:
                break
            heads = fewer
            if len(heads) <= PLAIN_OUTLINE_CONCEPTS:
                break
    body_start = body_text.count("\n", 0, len(body_text) - len(body_text.lstrip("\n")))
    concepts: list[Concept] = []
    used: set[str] = set()
    n_lines = len(lines)
    # The file's last line index that has content (trailing newline gives an empty last line).
    last = n_lines - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    next_suffix: dict[str, int] = {}
    title_head, outline = _plain_outline(heads, lines, last + 1)
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
                    text=_section_text(lines, h.end, stop),
                    start_line=h.start + 1,
                    end_line=max(stop, h.end),
                ),
            )
        )
    if outline:
        preamble = _section_text(lines, body_start, outline[0][0].start)
    else:
        preamble = ""
        title = _meta_str(meta, "title") or p.stem or "document"
        concepts.append(
            Concept(
                id=slug(title),
                title=title,
                section=Section(
                    heading=title,
                    level=1,
                    text=_section_text(lines, body_start, last + 1),
                    start_line=body_start + 1,
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
    title = _meta_str(meta, "title") or h1 or p.stem or "document"
    return Explainer(
        path=name,
        title=title,
        summary=_meta_str(meta, "summary") or _meta_str(meta, "description"),
        audience=_meta_str(meta, "audience"),
        author=_meta_str(meta, "author"),
        preamble=preamble,
        concepts=concepts,
        source=text,
        content_hash=digest,
        plain=True,
        body_line=body_start + 1,
        warnings=warnings,
        extra={
            str(k): _json_safe(v) for k, v in meta.items() if k not in ("title", "summary", "description", "audience", "author")
        },
    )


def _plain_outline(heads: list[_Heading], lines: list[str], end: int) -> tuple[_Heading | None, list[tuple[_Heading, str, int]]]:
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
    kept: list[_Heading] = []
    for k, h in enumerate(heads):
        nxt = heads[k + 1] if k + 1 < len(heads) else None
        empty = nxt is not None and nxt.level > h.level and not _section_text(lines, h.end, nxt.start).strip()
        if not empty:
            kept.append(h)
    if not kept:
        kept = list(heads)
    keep = set(map(id, kept))
    counts: dict[str, int] = {}
    for h in kept:
        counts[h.text.casefold()] = counts.get(h.text.casefold(), 0) + 1
    out: list[tuple[_Heading, str, int]] = []
    parents: list[_Heading] = []  # the open headings above the current one, outermost first
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


def _did_you_mean(word: str, known: list[str]) -> str:
    """'; did you mean 'x'?' for a likely typo, else the list of known ids (short)."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if known and len(known) <= 12:
        return "; known ids: " + ", ".join(known)
    return ""


def _json_safe(value: Any) -> Any:
    """Unknown front-matter values as JSON data: YAML dates become ISO text, sets and
    tuples lists, bytes (``!!binary``) and anything else text. Keeps exports and the
    store able to serialise an Explainer whatever the file held."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _meta_str(meta: dict[str, Any], key: str) -> str:
    v = meta.get(key)
    return " ".join(str(v).split()) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else ""


def _load_v1(
    name: str,
    text: str,
    lines: list[str],
    body_text: str,
    digest: str,
    meta: dict[str, Any],
    root: Any,
    offset: int,
) -> Explainer:
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def line_of(*loc: Any) -> int | None:
        return _key_line(root, loc, offset)

    def key_line(key: str) -> int | None:
        # The line of a top-level key itself (not its value).
        import yaml

        if isinstance(root, yaml.MappingNode):
            for k, _v in root.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return k.start_mark.line + offset
        return None

    # Version first: a newer file must not produce a pile of confusing errors.
    if "tutor" not in meta:
        warnings.append(Problem(name, 1, "front matter has no 'tutor:' format version; assuming tutor: 1"))
    else:
        version = meta["tutor"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise ExplainerError(
                [Problem(name, line_of("tutor"), f"'tutor' must be the format version number (1), not {version!r}")]
            )
        if version > FORMAT_VERSION:
            raise ExplainerError(
                [
                    Problem(
                        name,
                        line_of("tutor"),
                        f"this explainer was made by a newer tutor (format {version}); this tutor reads format "
                        f"{FORMAT_VERSION}. Upgrade tutor to open it",
                    )
                ]
            )
        if version < 1:
            raise ExplainerError([Problem(name, line_of("tutor"), f"unknown format version {version}; expected tutor: 1")])

    bad_keys = [k for k in meta if not isinstance(k, str)]
    if bad_keys:
        raise ExplainerError([Problem(name, None, f"front matter key {bad_keys[0]!r} is not text")])
    try:
        fmi = _FrontMatterIn.model_validate(meta)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            errors.append(Problem(name, _key_line(root, loc, offset), _describe(dict(err))))
        errors.sort(key=lambda pr: (pr.line or 0))
        raise ExplainerError(errors) from None

    # Unknown keys are kept (forward compatibility) but reported.
    for k in fmi.model_extra or {}:
        warnings.append(Problem(name, key_line(k), f"unknown front-matter key '{k}' (kept, ignored)"))
    for ci, c in enumerate(fmi.concepts):
        for k in c.model_extra or {}:
            warnings.append(Problem(name, line_of("concepts", ci, k), f"concept '{c.id}': unknown key '{k}' (ignored)"))
        for qi, q in enumerate(c.checks):
            for k in q.model_extra or {}:
                warnings.append(
                    Problem(name, line_of("concepts", ci, "checks", qi, k), f"concept '{c.id}': check question has unknown key '{k}' (ignored)")
                )

    if not fmi.title.strip():
        errors.append(Problem(name, line_of("title"), "title is empty"))
    if fmi.feedback.strip() and not FEEDBACK_RE.match(fmi.feedback.strip()):
        errors.append(
            Problem(
                name,
                line_of("feedback"),
                f"feedback must be an email address (you@example.org) or an http(s) URL, not {fmi.feedback.strip()[:60]!r}",
            )
        )
    if not fmi.concepts:
        errors.append(Problem(name, line_of("concepts"), "concepts list is empty; declare at least one concept"))
    if len(fmi.concepts) > MAX_CONCEPTS:
        raise ExplainerError([Problem(name, line_of("concepts"), f"has {len(fmi.concepts):,} concepts; at most {MAX_CONCEPTS:,}")])

    # Ids: format and uniqueness.
    first_seen: dict[str, int] = {}
    decl_line: dict[str, int | None] = {}
    for ci, c in enumerate(fmi.concepts):
        ln = line_of("concepts", ci, "id")
        if not ID_RE.match(c.id):
            errors.append(
                Problem(name, ln, f"concept id '{c.id}' is not valid: use lower-case letters, digits and '-' (like 'write-ahead-log')")
            )
        if c.id in first_seen:
            errors.append(
                Problem(name, ln, f"duplicate concept id '{c.id}' (first declared on line {first_seen[c.id]}); give each concept its own id")
            )
        else:
            first_seen[c.id] = ln or 0
            decl_line[c.id] = line_of("concepts", ci)
        if not c.title.strip():
            errors.append(Problem(name, line_of("concepts", ci, "title"), f"concept '{c.id}' has an empty title"))
        for qi, q in enumerate(c.checks):
            if not q.question.strip():
                errors.append(Problem(name, line_of("concepts", ci, "checks", qi), f"concept '{c.id}': check question is empty"))
            elif not q.answer.strip():
                warnings.append(
                    Problem(name, line_of("concepts", ci, "checks", qi), f"concept '{c.id}': check question has no reference answer")
                )

    # Prerequisites: known ids.
    for ci, c in enumerate(fmi.concepts):
        for pi, pre in enumerate(c.prerequisites):
            if pre not in first_seen:
                errors.append(
                    Problem(
                        name,
                        line_of("concepts", ci, "prerequisites", pi),
                        f"concept '{c.id}' has unknown prerequisite '{pre}'" + _did_you_mean(pre, [k for k in first_seen if k != c.id]),
                    )
                )

    # Teaching order and cycles (only over uniquely declared concepts).
    unique: list[_ConceptIn] = []
    seen_ids: set[str] = set()
    for c in fmi.concepts:
        if c.id not in seen_ids:
            seen_ids.add(c.id)
            unique.append(c)
    order, cycle = _teaching_order(unique)
    if cycle:
        errors.append(
            Problem(
                name,
                decl_line.get(cycle[0]),
                "prerequisite cycle: " + " -> ".join(cycle) + " (each needs the next; remove one prerequisite)",
            )
        )

    # Body sections.
    heads = _headings(body_text)
    by_id = {c.id: c for c in unique}
    by_title: dict[str, str] = {}
    for c in unique:
        # Compare like heading text: "The `WAL` file" matches "## The `WAL` file".
        by_title.setdefault(_norm(plain_heading_text(c.title)), c.id)
    tagged: list[tuple[_Heading, str | None]] = []
    for h in heads:
        cid: str | None = None
        if h.attr_id is not None:
            if h.attr_id in by_id:
                cid = h.attr_id
            else:
                warnings.append(
                    Problem(
                        name,
                        h.start + 1,
                        f"heading {{#{h.attr_id}}} matches no concept in the front matter" + _did_you_mean(h.attr_id, list(by_id)),
                    )
                )
        elif _norm(h.text) in by_title:
            cid = by_title[_norm(h.text)]
        tagged.append((h, cid))

    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    sections: dict[str, Section] = {}
    first_concept_head: int | None = None
    for idx, (h, cid) in enumerate(tagged):
        if cid is None:
            continue
        if first_concept_head is None:
            first_concept_head = h.start
        stop = last + 1
        # Index loop, no slice: each heading is scanned by at most one concept, so this
        # stays linear even with 100k headings in the body.
        for j in range(idx + 1, len(tagged)):
            h2, cid2 = tagged[j]
            if cid2 is not None or h2.level <= h.level:
                stop = h2.start
                break
        if cid in sections:
            errors.append(
                Problem(
                    name,
                    h.start + 1,
                    f"second section for concept '{cid}' (the first is on line {sections[cid].start_line}); give each concept one section",
                )
            )
            continue
        sections[cid] = Section(
            heading=h.text,
            level=h.level,
            text=_section_text(lines, h.end, stop),
            start_line=h.start + 1,
            end_line=max(stop, h.end),
        )
    for c in unique:
        if c.id not in sections:
            errors.append(
                Problem(
                    name,
                    decl_line.get(c.id),
                    f"concept '{c.id}' has no section: add a heading '## {c.title} {{#{c.id}}}' to the body",
                )
            )

    if errors:
        errors.sort(key=lambda pr: (pr.line or 0))
        raise ExplainerError(errors)

    # Warnings that help authors but do not stop loading.
    for c in unique:
        if not c.checks:
            warnings.append(Problem(name, decl_line.get(c.id), f"concept '{c.id}' has no check question"))
        if not c.summary.strip():
            warnings.append(Problem(name, decl_line.get(c.id), f"concept '{c.id}' has no summary"))
        if not sections[c.id].text.strip():
            warnings.append(Problem(name, sections[c.id].start_line, f"section for concept '{c.id}' is empty"))
    close_line = body_text.count("\n", 0, len(body_text) - len(body_text.lstrip("\n")))
    preamble = _section_text(lines, close_line, first_concept_head if first_concept_head is not None else close_line)
    if "<feedback>" not in preamble and "feedback" not in preamble.lower():
        warnings.append(
            Problem(name, close_line + 1, "no note to AI assistants before the first section (see docs/explainer-format.md)")
        )

    concepts = [
        Concept(
            id=unique[i].id,
            title=unique[i].title,
            summary=unique[i].summary,
            prerequisites=list(unique[i].prerequisites),
            checks=[CheckQuestion(question=q.question, answer=q.answer, misconceptions=list(q.misconceptions)) for q in unique[i].checks],
            section=sections[unique[i].id],
            line=decl_line.get(unique[i].id),
        )
        for i in order
    ]
    warnings.sort(key=lambda pr: (pr.line or 0))
    return Explainer(
        path=name,
        format_version=fmi.tutor,
        title=" ".join(fmi.title.split()),
        summary=fmi.summary.strip(),
        audience=fmi.audience.strip(),
        author=fmi.author.strip(),
        feedback=fmi.feedback.strip(),
        preamble=preamble,
        concepts=concepts,
        source=text,
        content_hash=digest,
        plain=False,
        body_line=close_line + 1,
        warnings=warnings,
        extra={str(k): _json_safe(v) for k, v in (fmi.model_extra or {}).items()},
    )
