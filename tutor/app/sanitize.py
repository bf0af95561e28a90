"""Make untrusted text (explainer files, model replies, stored transcripts) inert.

Why: a terminal obeys escape sequences wherever they appear. A reply containing
``\\x1b]52;c;...`` would write the reader's clipboard, ``\\x1b]0;...\\x07`` would retitle
the window and ``\\x1b[2J`` would clear the screen. Textual/Rich markup is a second
trap: ``[bold]``, ``[/`` and ``[link=...]`` must stay literal. This module handles the
first trap by replacing every control character with a visible placeholder; the app
handles the second by only ever building ``Content`` objects (never parsing markup).

Pure Python, no textual import, so the engine and tests can use it too.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, and the bidi overrides that
# can visually reorder text ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def _placeholder(match: re.Match[str]) -> str:
    ch = match.group(0)
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400.. control pictures: ␀ ␇ ␛ ...
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def clean(text: str) -> str:
    """Return ``text`` with every control character replaced by a visible placeholder.

    Newlines and tabs are kept; ``\\r\\n`` becomes ``\\n``. ESC becomes ``␛`` so an
    escape sequence shows up as harmless text such as ``␛]52;c;aGk=␇``.
    """
    if not text:
        return text
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return _CONTROL.sub(_placeholder, text)


def one_line(text: str, limit: int = 200) -> str:
    """A cleaned single line (for titles, notifications, list items)."""
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
