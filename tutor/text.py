"""Untrusted text made safe, and the small wording helpers: one home for each rule.

Why one module: a terminal obeys escape sequences wherever they appear (``\\x1b]52;c;...``
writes the reader's clipboard, ``\\x1b]0;...\\x07`` retitles the window, ``\\x1b[2J``
clears the screen) and bidi controls reorder what is shown ("Trojan Source"). Eight
copies of that rule had drifted to five character sets; now there is one set, ``UNSAFE``,
and three named ways to neutralise it (docs/security.md has the table of who uses which):

- ``escape_controls``: visible ``\\xNN`` / ``\\uNNNN`` (CLI output, problem messages, the
  Markdown and HTML exports): lossless to the eye, and plain ASCII.
- ``strip_controls``: dropped, ANSI CSI sequences whole (model text printed by ``--plain``,
  ``tutor compile``, ``tutor feedback``, server error messages).
- ``control_pictures``: ``␛``-style pictures (the Textual app, where the reader should see
  that something was there).
- ``one_line``: any of the above on one line, runs of whitespace as one space, truncated.

Rich/Textual markup is the other trap; the app only builds ``Content`` objects, never
parses markup. Pure Python: the core, the engine and tests use it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Bidi controls: the Arabic letter mark, LRM/RLM, embeddings/overrides, isolates.
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls except tab and newline, DEL, C1 controls, the bidi controls, the line and
# paragraph separators (a terminal may break or hide the line on them) and lone surrogates
# (no terminal or file encoding can write one; ``str.encode`` would raise).
UNSAFE = f"\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{BIDI}\u2028\u2029\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[{UNSAFE}]")
# An ANSI CSI sequence (7- or 8-bit): stripping it whole leaves no "[31m" behind.
_CSI_RE = re.compile(r"(?:\x1b\[|\x9b)[0-9:;<=>?]*[ -/]*[@-~]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def escape_controls(text: str) -> str:
    """Every unsafe character as a visible ``\\xNN`` / ``\\uNNNN``; ``\\r\\n`` becomes ``\\n``
    first (a file saved on Windows is not hostile), a lone ``\\r`` shows as ``\\x0d``."""
    if not text:
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE_RE.sub(_escape, text)


def strip_controls(text: str) -> str:
    """Unsafe characters removed, a CSI sequence (``\\x1b[31m``) with its parameters;
    ``\\r\\n`` and a lone ``\\r`` become ``\\n`` (a carriage return would overwrite the line)."""
    if not text:
        return text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_RE.sub("", _CSI_RE.sub("", text))


def _picture(m: re.Match[str]) -> str:
    code = ord(m.group())
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400.. control pictures: ␀ ␇ ␛ ...
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def control_pictures(text: str) -> str:
    """Every unsafe character as a visible placeholder: C0 as its control picture (ESC is
    ``␛``, so ``␛]52;c;aGk=␇`` shows what was attempted), DEL as ``␡``, the rest as
    ``<U+XXXX>``. Newlines and tabs are kept; ``\\r\\n`` becomes ``\\n``."""
    if not text:
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE_RE.sub(_picture, text)


def one_line(text: str, limit: int | None = 200, *, safe: Callable[[str], str] = control_pictures) -> str:
    """``text`` made safe by ``safe``, on one line (runs of whitespace, newlines included,
    as one space), at most ``limit`` characters with ``…`` where it was cut."""
    line = " ".join(safe(text).split())
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


# JSON: tab, newline and C0 are escaped by json.dumps already; the rest of UNSAFE becomes
# ``\\uXXXX``: lossless (a lone surrogate too), and inert in a terminal.
_JSON_UNSAFE_RE = re.compile(f"[\\x7f-\\x9f{BIDI}\u2028\u2029\ud800-\udfff]")


def json_text(obj: Any, indent: int | None = 2) -> str:
    """JSON for files and ``--json`` output: UTF-8 kept readable, but C1 controls, bidi
    controls and lone surrogates written as ``\\uXXXX`` escapes, so printing it cannot drive
    or reorder a terminal (and a file write cannot fail on a surrogate)."""
    import json

    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False, indent=indent))


def utf8_text(text: str) -> str:
    """Text that SQLite and files can hold: each lone surrogate (legal in JSON from the API
    or a bundle, or from a mis-decoded terminal) becomes one U+FFFD instead of failing a write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)


def slug(text: str, *, limit: int | None = None, fallback: str = "section") -> str:
    """``text`` as ``[a-z0-9]+`` words joined by ``-`` (accents folded: "Ünïcödé" is
    "unicode"), at most ``limit`` characters; ``fallback`` when nothing is left. Concept ids
    and export file names use it, so one heading gets one id everywhere."""
    import unicodedata

    # Controls first: a heading's "\x1b[31mRed\x1b[0m" is "red", not "31mred-0m".
    s = unicodedata.normalize("NFKD", strip_controls(text)).encode("ascii", "ignore").decode().lower()
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    if limit is not None:
        s = s[:limit].strip("-")
    return s or fallback


def local_time(iso: str) -> str:
    """A stored UTC timestamp (``2026-01-02T03:04:05Z``) as local ``YYYY-MM-DD HH:MM``;
    text that is not a timestamp is returned as it was."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError, OverflowError, OSError):
        return iso


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "turn")`` is "1 turn", ``plural(3, "turn")`` "3 turns", with thousands commas;
    ``many`` for irregular words (``plural(2, "query", "queries")``). One home, so "1 turns"
    and "1 problem(s)" cannot come back in one place while fixed in another."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def note_key(text: str) -> str:
    """What makes two feedback notes "the same note": case, Unicode width forms, runs of
    whitespace and trailing full stops ignored. The store folds a session's repeats of one
    note into a count with it (m006), and ``tutor feedback`` groups notes across sessions."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).rstrip(" .")
