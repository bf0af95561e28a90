"""The sanitizer that keeps explainer and model text inert on the terminal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tutor.app.sanitize import clean, one_line

EVIL = [
    "\x1b]52;c;aGVsbG8=\x07",  # OSC 52: write the clipboard
    "\x1b]0;pwned title\x07",  # retitle the window
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x1b[31mred\x1b[0m",  # colours
    "\x9b2J",  # 8-bit CSI
    "\x1bP+q\x1b\\",  # DCS
    "a\rb",  # carriage return overwrites the line
    "\x08\x08\x08",  # backspaces
]


def test_escape_sequences_become_visible_placeholders():
    assert clean("\x1b]52;c;aGVsbG8=\x07") == "␛]52;c;aGVsbG8=␇"
    assert clean("\x1b[2J") == "␛[2J"
    assert clean("\x9b2J") == "<U+009B>2J"
    assert clean("a\rb") == "a␍b"
    assert clean("line\r\nnext") == "line\nnext"


def test_text_tabs_newlines_and_markup_are_kept_verbatim():
    s = "[bold]x[/bold] [/ [link=https://evil.example]y[/link]\n\tcode <b>"
    assert clean(s) == s


def test_bidi_overrides_are_neutralised():
    assert "\u202e" not in clean("abc\u202edef")


@given(st.text())
def test_no_control_character_survives(s):
    out = clean(s)
    for ch in out:
        code = ord(ch)
        assert ch in "\n\t" or not (code < 0x20 or 0x7F <= code <= 0x9F), repr(ch)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_printable_text_is_unchanged(s):
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    if not bidi & set(s):
        assert clean(s) == s


def test_one_line_collapses_and_truncates():
    assert one_line("a\n b\x1b") == "a b␛"
    assert one_line("x" * 300, 10) == "x" * 9 + "…"


def test_all_evil_samples_are_inert():
    for s in EVIL:
        assert "\x1b" not in clean(s) and "\x07" not in clean(s) and "\r" not in clean(s) and "\x9b" not in clean(s)
