"""Streaming filter that hides the tutor's protocol tags from the reader.

The model writes ``<feedback ...>...</feedback>`` (notes for the author) and
``<state concept=".." value=".."/>`` or ``<state ...>evidence</state>`` (reader-model
changes) inside its reply. The reader must never see them, even for a moment while the
reply streams in, and even when the stream splits a tag at any character. Everything
else that merely looks like markup -- ``a < b``, ``<feedbackform>``, HTML in an example,
a tag inside a code span or a fenced block -- is ordinary text and is kept.

How: the filter is a small state machine over characters. It only emits text once it
can decide what the text is; when the decision needs characters that have not arrived
yet (a ``<fee`` at the end of a chunk, a run of backticks that may continue) it holds
them back until the next chunk or ``close()``. So the output never depends on where the
chunks were cut (the hypothesis test in tests/test_tagfilter.py checks this).

The protocol is documented in docs/tag-protocol.md.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

# "reader_model" is the block the software puts in each reader turn (prompt.py); a model
# that imitates it must not show it to the reader either.
TAG_NAMES: tuple[str, ...] = ("feedback", "state", "reader_model")
MAX_OPEN_TAG = 400  # an opening tag longer than this is not a tag but text
_ATTRS_RE = re.compile(r"""(?:\s+[A-Za-z_][\w-]*\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/?""")
# What may come between a tag's name and its '>' while the tag is still arriving: whole
# attributes, then at most a started one (``concept="pa``) or the whitespace/'/' before '>'.
_PARTIAL_ATTRS_RE = re.compile(
    r"""(?:\s+[A-Za-z_][\w-]*\s*=\s*(?:"[^"]*"|'[^']*'))*"""
    r"""(?:\s+[A-Za-z_][\w-]*\s*(?:=\s*(?:"[^"]*|'[^']*)?)?|\s*/?)"""
)
_ATTR_RE = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CLOSE_ANY_RE = re.compile(r"</\s*(" + "|".join(TAG_NAMES) + r")\s*>", re.IGNORECASE)
_SPECIAL_RE = re.compile(r"[\n`~<]")
_HOLD = object()
_PARTIAL = object()  # at the end of the reply: the rest is the start of a protocol tag


class Tag(BaseModel):
    """One protocol tag found in a reply."""

    name: str  # "feedback" | "state"
    attrs: dict[str, str] = Field(default_factory=dict)
    text: str = ""  # the body, stripped
    complete: bool = True  # False when the reply ended before the closing tag


class TagFilter:
    """Incremental filter: ``feed(chunk) -> (visible, tags)``, then ``close()``."""

    def __init__(self, *, keep: frozenset[str] = frozenset()) -> None:
        # ``keep``: tag names passed through as text, unparsed by nobody else: the whole-text
        # helpers (``strip_tags``) remove some tags and must leave the others byte for byte.
        self._keep = keep
        self._tag_open = ""  # the opening tag's own text, for a kept tag
        self._buf = ""
        self._mode = "text"  # "text" | "fence" | "tag"
        self._line = ""  # characters of the current line processed in text/fence mode
        self._kept_here = False  # a kept tag was passed through on the current line
        self._fence: tuple[str, int] | None = None
        self._fence_first_line = False  # the opening fence's own line cannot close it
        self._span: int | None = None  # length of the open inline code span's backtick run
        self._tag: Tag | None = None
        self._tag_body: list[str] = []
        self._tag_at_line_start = False
        self._eat_newline = False
        self._closed = False

    # -- public ---------------------------------------------------------------------
    def feed(self, chunk: str) -> tuple[str, list[Tag]]:
        if self._closed:
            raise RuntimeError("TagFilter.feed() after close()")
        self._buf += chunk
        return self._run(final=False)

    def close(self) -> tuple[str, list[Tag]]:
        """Flush held-back text; a trailing tag start (``<fe``) is dropped, not shown.

        An unterminated tag is returned with ``complete=False``."""
        if self._closed:
            return "", []
        visible, tags = self._run(final=True)
        if self._mode == "tag" and self._tag is not None:
            if self._tag.name in self._keep:
                visible += self._tag_open + "".join(self._tag_body)
            tags.append(self._finish_tag(complete=False))
            self._mode = "text"
        self._closed = True
        return visible, tags

    @classmethod
    def filter_all(cls, text: str) -> tuple[str, list[Tag]]:
        """Filter a whole reply at once (used on resume and in tests)."""
        f = cls()
        v1, t1 = f.feed(text)
        v2, t2 = f.close()
        return v1 + v2, t1 + t2

    # -- machinery --------------------------------------------------------------------
    def _emit(self, out: list[str], text: str) -> None:
        """Pass a kept tag through as text. The line tracking does not see it, as if it were
        hidden: keeping a tag must not change what counts as a code fence after it, or
        ``strip_tags`` would strip a tag the stream filter showed inside code. But a hidden
        tag after it on the same line must not eat the line's newline: the kept tag will,
        when the text is filtered again."""
        out.append(text)
        self._kept_here = True

    def _new_line(self) -> None:
        self._line = ""
        self._kept_here = False

    def _finish_tag(self, *, complete: bool) -> Tag:
        assert self._tag is not None
        tag = self._tag.model_copy(update={"text": "".join(self._tag_body).strip(), "complete": complete})
        self._tag = None
        self._tag_body = []
        return tag

    def _at_line_start(self) -> bool:
        return len(self._line) <= 3 and self._line.strip(" ") == ""

    def _run(self, *, final: bool) -> tuple[str, list[Tag]]:
        """Consume the buffer up to where the next chunk may change the meaning (a tag or a
        backtick run cut by the chunk's end); each step returns (where it got to, hold)."""
        buf = self._buf
        out: list[str] = []
        tags: list[Tag] = []
        i = 0
        n = len(buf)
        while i < n:
            if self._mode == "text" and not self._eat_newline and buf[i] not in "\n`~<":
                i = self._plain(buf, i, out)  # the common case, straight from the loop
                continue
            if self._mode == "tag":
                i, hold = self._in_tag(buf, i, out, tags, final)
            elif self._mode == "fence":
                i, hold = self._in_fence(buf, i, out)
            else:
                i, hold = self._in_text(buf, i, out, tags, final)
            if hold:
                break
        self._buf = buf[i:]
        return "".join(out), tags

    def _in_tag(self, buf: str, i: int, out: list[str], tags: list[Tag], final: bool) -> tuple[int, bool]:
        assert self._tag is not None
        name = self._tag.name
        m = re.compile(r"</\s*" + name + r"\s*>", re.IGNORECASE).search(buf, i)
        if m:
            self._tag_body.append(buf[i : m.start()])
            if name in self._keep:
                self._emit(out, self._tag_open + "".join(self._tag_body) + m.group(0))
            else:
                self._eat_newline = self._tag_at_line_start
            tags.append(self._finish_tag(complete=True))
            self._mode = "text"
            return m.end(), False
        j = buf.rfind("<", i)
        if not final and j != -1 and _could_close(buf[j:], name):
            self._tag_body.append(buf[i:j])
            return j, True
        self._tag_body.append(buf[i:])
        return len(buf), True

    def _in_fence(self, buf: str, i: int, out: list[str]) -> tuple[int, bool]:
        nl = buf.find("\n", i)
        if nl == -1:
            out.append(buf[i:])
            self._line += buf[i:]
            return len(buf), True
        out.append(buf[i : nl + 1])
        self._line += buf[i:nl]
        assert self._fence is not None
        ch, length = self._fence
        if self._fence_first_line:
            self._fence_first_line = False
        elif re.fullmatch(r" {0,3}" + re.escape(ch) + "{" + str(length) + r",}[ \t]*", self._line):
            self._mode = "text"
            self._fence = None
        self._new_line()
        return nl + 1, False

    def _in_text(self, buf: str, i: int, out: list[str], tags: list[Tag], final: bool) -> tuple[int, bool]:
        ch = buf[i]
        if self._eat_newline:
            self._eat_newline = False
            if ch == "\n":
                self._new_line()
                return i + 1, False
        if ch == "\n":
            out.append(ch)
            # An inline code span ends at the end of its line here. CommonMark lets a
            # span continue over lines, but a stray backtick before a tag on the next
            # line is far more common in model output than a tag inside a wrapped span,
            # and showing a protocol tag to the reader is the worse failure.
            self._span = None
            self._new_line()
            return i + 1, False
        if ch == "`" or (ch == "~" and self._span is None and self._at_line_start()):
            return self._in_run(buf, i, out, final)
        if ch == "<" and self._span is None:
            return self._at_angle(buf, i, out, tags, final)
        return self._plain(buf, i, out), False

    def _plain(self, buf: str, i: int, out: list[str]) -> int:
        """Text up to the next character that may start something (newline, `, ~, <)."""
        m = _SPECIAL_RE.search(buf, i + 1)
        j = m.start() if m else len(buf)
        out.append(buf[i:j])
        self._line += buf[i:j]
        return j

    def _in_run(self, buf: str, i: int, out: list[str], final: bool) -> tuple[int, bool]:
        """A run of backticks (or tildes at a line start): a fence, or a code span's edge."""
        ch = buf[i]
        j = i
        while j < len(buf) and buf[j] == ch:
            j += 1
        if j == len(buf) and not final:
            return i, True  # the run may continue in the next chunk
        run = j - i
        if self._span is None and run >= 3 and self._at_line_start():
            self._mode = "fence"
            self._fence = (ch, run)
            self._fence_first_line = True
        elif ch == "`":
            if self._span is None:
                self._span = run
            elif self._span == run:
                self._span = None
        out.append(buf[i:j])
        self._line += buf[i:j]
        return j, False

    def _at_angle(self, buf: str, i: int, out: list[str], tags: list[Tag], final: bool) -> tuple[int, bool]:
        """A '<' outside code: a protocol tag (opened, closed or self-closing) or text."""
        res = _scan_tag(buf, i, final)
        if res is _HOLD:
            return i, True
        if res is _PARTIAL:
            # The stream ended inside what can only be a protocol tag (``<fe``,
            # ``<state concept="a``): never the reader's text, so it is dropped
            # (kept as text only if it can only be the start of a kept tag).
            names = _partial_names(buf[i:])
            if names and names <= self._keep:
                out.append(buf[i:])
            return len(buf), True
        if res is None:
            out.append("<")
            self._line += "<"
            return i + 1, False
        kind, name, attrs, self_closing, end = res
        at_start = self._line.strip() == "" and not self._kept_here
        kept = name in self._keep
        if kind == "close":  # a stray closing tag: never meant for the reader
            if kept:
                self._emit(out, buf[i:end])
            else:
                self._eat_newline = at_start
            return end, False
        self._tag = Tag(name=name, attrs=attrs)
        self._tag_body = []
        self._tag_open = buf[i:end]
        self._tag_at_line_start = at_start
        if self_closing:
            tags.append(self._finish_tag(complete=True))
            if kept:
                self._emit(out, buf[i:end])
            else:
                self._eat_newline = at_start
        else:
            self._mode = "tag"
        return end, False


def _could_close(s: str, name: str) -> bool:
    """Could ``s`` (starting with '<') grow into ``</name>``?"""
    if len(s) > 64:
        return False
    rest = s[1:]
    if rest == "":
        return True
    if rest[0] != "/":
        return False
    rest = rest[1:].lstrip()
    if len(rest) <= len(name):
        return name.startswith(rest.lower())
    if not rest.lower().startswith(name):
        return False
    return rest[len(name) :].strip() == ""


def _scan_tag(buf: str, i: int, final: bool):
    """Decide what the '<' at ``buf[i]`` starts.

    Returns None (plain text), _HOLD (need more characters), _PARTIAL (``final`` and the
    reply ends in the start of a protocol tag), or ``(kind, name, attrs, self_closing, end)``
    with kind "open" or "close".
    """
    # What a held-back prefix is once no more characters will come.
    more = _PARTIAL if final else _HOLD
    n = len(buf)
    j = i + 1
    if j < n and buf[j] == "/":
        m = _CLOSE_ANY_RE.match(buf, i)
        if m:
            return ("close", m.group(1).lower(), {}, False, m.end())
        if _could_close_any(buf[i:]):
            return more
        return None
    if j >= n:
        return more
    name = None
    for cand in TAG_NAMES:
        seg = buf[j : j + len(cand)].lower()
        if seg == cand:
            name = cand
            break
        if j + len(seg) == n and cand.startswith(seg):
            return more
    if name is None:
        return None
    k = j + len(name)
    if k >= n:
        return more
    if not (buf[k].isspace() or buf[k] in ">/"):
        return None  # <feedbackform>, <stated>: not ours
    quote = None
    end = None
    while k < n and k - i <= MAX_OPEN_TAG:
        c = buf[k]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == ">":
            end = k
            break
        elif c == "<":
            return None
        k += 1
    if end is None:
        if k - i > MAX_OPEN_TAG:
            return None
        if final and not _PARTIAL_ATTRS_RE.fullmatch(buf, j + len(name), k):
            return None  # ``<feedback but no closing angle`` can never become a tag: text
        return more
    inner = buf[j + len(name) : end]
    if not _ATTRS_RE.fullmatch(inner):
        return None
    attrs = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _ATTR_RE.finditer(inner)}
    self_closing = inner.rstrip().endswith("/")
    return ("open", name, attrs, self_closing, end + 1)


def _could_close_any(s: str) -> bool:
    return any(_could_close(s, name) for name in TAG_NAMES)


def _partial_names(s: str) -> frozenset[str]:
    """The tag names the unfinished ``s`` (``<fe``, ``</sta``, ``<state concept="a``) may start."""
    if s[1:2] == "/":
        return frozenset(name for name in TAG_NAMES if _could_close(s, name))
    rest = s[1:].lower()
    return frozenset(
        name for name in TAG_NAMES if (name.startswith(rest) if len(rest) <= len(name) else rest.startswith(name))
    )


# -- whole-text helpers: every reader of stored or exported replies uses these, never a regex,
# so a tag in a code fence or a reply cut inside a tag means the same thing everywhere.


def strip_tags(text: str, names: tuple[str, ...] | frozenset[str] = TAG_NAMES) -> str:
    """``text`` without the protocol tags named (all by default), whole or cut off, body and
    all; every other character, the other tags included, is kept as it was."""
    f = TagFilter(keep=frozenset(TAG_NAMES) - frozenset(names))
    v1, _ = f.feed(text)
    v2, _ = f.close()
    return v1 + v2


def state_tags(text: str) -> list[Tag]:
    """The ``<state>`` tags of a whole reply, in order (unterminated ones included)."""
    return [t for t in TagFilter.filter_all(text)[1] if t.name == "state"]


def feedback_notes(text: str) -> list[Tag]:
    """The ``<feedback>`` tags of a whole reply, in order (a cut-off one has complete=False)."""
    return [t for t in TagFilter.filter_all(text)[1] if t.name == "feedback"]
