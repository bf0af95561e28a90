"""``load(path)`` and ``parse(text, name)``: the text checks, the front matter, then the v1
or the plain loader. ``load`` is a safe read plus ``parse``, so a caller holding the text
(standard input, a compile's draft) gets the same explainer and the same messages, named
as it says, without writing a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tutor.errors import ExplainerError, Problem
from tutor.explainer.frontmatter import FrontMatter, read_front_matter
from tutor.explainer.model import Explainer
from tutor.explainer.plain import load_plain
from tutor.explainer.spec import MAX_FILE_BYTES
from tutor.explainer.v1 import load_v1
from tutor.text import escape_controls


def load(path: str | Path, *, outline_on_error: bool = False) -> Explainer:
    """Load an explainer (format v1) or any plain Markdown file. Raises ExplainerError only;
    its problems (and the warnings) are safe to print: no control characters.

    ``outline_on_error`` is for readers: a v1 file whose front matter does not validate (one
    prerequisite typo in a shared file) opens as a plain heading outline with one warning
    naming the first problem, instead of not at all. ``tutor check`` still refuses it."""
    name = str(path)
    try:
        data = _read_bytes(Path(path), name)
    except ExplainerError as e:
        raise ExplainerError(_shown(e.problems)) from None
    return parse(data, name, outline_on_error=outline_on_error)


def parse(text: str | bytes, name: str, *, outline_on_error: bool = False) -> Explainer:
    """The explainer in ``text``, as ``load`` would give it for a file called ``name``:
    ``name`` is its ``path`` and the file of every problem. ``bytes`` get a file's checks
    (UTF-8, not UTF-16, no NUL bytes, the size limit); ``str`` is taken as its UTF-8 bytes."""
    try:
        ex = _parse(text, name, outline_on_error)
    except ExplainerError as e:
        raise ExplainerError(_shown(e.problems)) from None
    if ex.warnings:
        ex.warnings = _shown(ex.warnings)
    return ex


def _parse(raw: str | bytes, name: str, outline_on_error: bool) -> Explainer:
    data = raw if isinstance(raw, bytes) else _encoded(raw, name)
    text = _decoded(data, name)
    digest = hashlib.sha256(data).hexdigest()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    fm = read_front_matter(text, lines, name)
    if fm.meta is not None and ("tutor" in fm.meta or "concepts" in fm.meta):
        try:
            return load_v1(name, text, lines, fm, digest)
        except ExplainerError as e:
            if not outline_on_error:
                raise
            return _outline_instead(e, name, text, lines, fm, digest)
    return load_plain(name, text, lines, fm.body, digest, fm.meta or {})


def _outline_instead(e: ExplainerError, name: str, text: str, lines: list[str], fm: FrontMatter, digest: str) -> Explainer:
    """``outline_on_error``: the plain outline, its first warning the first problem."""
    ex = load_plain(name, text, lines, fm.body, digest, fm.meta or {})
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


def _shown(problems: list[Problem]) -> list[Problem]:
    """Control characters (ESC, BEL, C1, bidi) as \\xNN / \\uNNNN: a problem message quotes
    the file, and YAML escapes ("\\e") can put them there without a raw byte."""
    return [Problem(escape_controls(p.file), p.line, escape_controls(p.message)) for p in problems]


# --------------------------------------------------------------------------- the text checks


def _read_bytes(path: Path, name: str) -> bytes:
    from tutor.files import UnreadableFile, safe_read_bytes

    try:
        # One home for the limits (tutor/files.py): regular files only, opened without
        # blocking, at most MAX_FILE_BYTES read -- a FIFO swapped in after stat() cannot hang us.
        return safe_read_bytes(path, MAX_FILE_BYTES, what="Markdown file")
    except UnreadableFile as e:
        raise _fail(name, e.reason + (f"; {e.hint}" if e.hint else "")) from None


def _encoded(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate ("\ud800"), which no file can hold
        line = text.count("\n", 0, e.start) + 1
        raise _fail(name, f"contains U+{ord(text[e.start]):04X}, which UTF-8 cannot encode; expected UTF-8 text", line) from None


def _decoded(data: bytes, name: str) -> str:
    """The text of a file's bytes, or the ExplainerError saying why it is not Markdown text."""
    if len(data) > MAX_FILE_BYTES:  # load() read at most this much; parse() may be given more
        raise _fail(name, f"{len(data):,} bytes is too big for a Markdown file (limit {MAX_FILE_BYTES:,})")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(name, "file is UTF-16 text; expected UTF-8 (re-save the file as UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise _fail(name, "looks like a binary file (it contains NUL bytes); expected UTF-8 Markdown text", line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _fail(
            name,
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded); expected UTF-8 - re-save the file as UTF-8",
            line,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise _fail(name, "file is empty; an explainer needs at least some Markdown text")
    return text


def _fail(name: str, message: str, line: int | None = None) -> ExplainerError:
    return ExplainerError([Problem(name, line, message)])
