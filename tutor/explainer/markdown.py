"""Markdown as the loader sees it: the shared markdown-it setup, the top-level headings of a
body and the text between them. Only the block parser runs over the whole file (headings
are all the loader needs); a heading's inline Markdown is parsed on demand, for its title."""

from __future__ import annotations

import re
from typing import Any

from tutor.explainer.spec import MAX_HEADING_INLINE

_HEADING_ATTR_RE = re.compile(r"\s*\{\s*#([^\s{}]+)\s*\}\s*\Z")

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
    """The loader's block-only CommonMark parser (built once, with the mdit_speed patches)."""
    global _md
    if _md is None:
        from tutor.explainer.mdit_speed import dispatch_block_rules, silence_block_loggers

        # "normalize" only turns CR/CRLF into LF and NUL into U+FFFD: the loader has already
        # done the first and refuses the second, so skip a pass over the whole text.
        _md = new_markdown(html=True).disable(["normalize", "inline", "text_join"], ignoreInvalid=True)
        dispatch_block_rules(_md)
        silence_block_loggers()
    return _md


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


class Heading:
    """A top-level heading: its level, 0-based lines, ``{#id}`` attribute and title text."""

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


def headings(text: str) -> list[Heading]:
    """Top-level headings (not inside quotes, lists or code) in document order."""
    from tutor.explainer.mdit_speed import gc_paused

    with gc_paused():
        tokens = _markdown().parse(text)
        out: list[Heading] = []
        for i, tok in enumerate(tokens):
            if tok.type == "heading_open" and tok.level == 0 and tok.map:
                raw = tokens[i + 1].content if i + 1 < len(tokens) else ""
                out.append(Heading(int(tok.tag[1:]), raw, tok.map[0], tok.map[1]))
        del tokens
    return out


def norm(s: str) -> str:
    """Heading text as compared: whitespace collapsed, case folded."""
    return " ".join(s.split()).casefold()


def section_text(lines: list[str], start: int, end: int) -> str:
    return "\n".join(lines[start:end]).strip("\n")


def last_content_line(lines: list[str]) -> int:
    """The 0-based index of the last line with content (a trailing newline leaves an
    empty last line)."""
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    return last


def body_start(body: str) -> int:
    """The 0-based line where the body starts: after the blanked-out front matter."""
    return body.count("\n", 0, len(body) - len(body.lstrip("\n")))
