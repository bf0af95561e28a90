"""tutor/text.py: the one home for making untrusted text inert (moved here from
tests/test_app_sanitize.py when tutor/app/sanitize.py became ``text.control_pictures``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tutor.text import control_pictures as clean
from tutor.text import escape_controls, json_text, local_time, one_line, slug, strip_controls, utf8_text

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
    # the bidi controls and the line/paragraph separators (one character set since issue 11)
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u200e\u200f\u2028\u2029")
    if not bidi & set(s):
        assert clean(s) == s


def test_one_line_collapses_and_truncates():
    assert one_line("a\n b\x1b") == "a b␛"
    assert one_line("x" * 300, 10) == "x" * 9 + "…"


def test_all_evil_samples_are_inert():
    for s in EVIL:
        assert "\x1b" not in clean(s) and "\x07" not in clean(s) and "\r" not in clean(s) and "\x9b" not in clean(s)


# -- every named behaviour keeps its promise (issue 11) --------------------------------------

BIDI_CHARS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def forbidden(ch: str) -> bool:
    """What no behaviour lets through: C0 but tab/newline (ESC included), DEL, C1, bidi
    controls, line/paragraph separators, lone surrogates."""
    c = ord(ch)
    return (c < 0x20 and ch not in "\n\t") or 0x7F <= c <= 0x9F or ch in BIDI_CHARS or ch in "\u2028\u2029" or 0xD800 <= c <= 0xDFFF


# Text rich in the dangerous characters, lone surrogates included (st.text() leaves them out).
hostile = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x9F),
        st.sampled_from(list(BIDI_CHARS + "\u2028\u2029\ud800\udbff\udc00\udfff\x1b[31m\x9b")),
        st.characters(codec=None),
    ),
    max_size=80,
)

BEHAVIOURS = {
    "escape_controls": escape_controls,
    "strip_controls": strip_controls,
    "control_pictures": clean,
    "one_line": one_line,
    "one_line(escape)": lambda s: one_line(s, None, safe=escape_controls),
}


@pytest.mark.parametrize("name", sorted(BEHAVIOURS))
@given(s=hostile)
def test_no_behaviour_lets_a_control_bidi_or_surrogate_through(name, s):
    out = BEHAVIOURS[name](s)
    assert not [ch for ch in out if forbidden(ch)], (name, s, out)
    out.encode("utf-8")  # printable and writable: no lone surrogate left


@given(s=hostile)
def test_one_line_is_one_line(s):
    assert "\n" not in one_line(s) and "\t" not in one_line(s)


@given(s=hostile)
def test_json_text_is_inert_and_lossless(s):
    import json

    out = json_text({"t": s})
    assert not [ch for ch in out if forbidden(ch) and ch != "\n"]
    assert json.loads(out) == {"t": s}


@given(s=hostile)
def test_utf8_text_only_replaces_lone_surrogates(s):
    out = utf8_text(s)
    out.encode("utf-8")
    assert len(out) == len(s) and all(a == b or (0xD800 <= ord(a) <= 0xDFFF and b == "\ufffd") for a, b in zip(s, out))


def test_the_three_ways_side_by_side():
    s = "a\x1b[31mred\x1b[0m\r\nb\u202ec\x07\rd"
    assert escape_controls(s) == "a\\x1b[31mred\\x1b[0m\nb\\u202ec\\x07\\x0dd"
    assert strip_controls(s) == "ared\nbc\nd"  # a CSI sequence goes whole, \r cannot overwrite
    assert clean(s) == "a␛[31mred␛[0m\nb<U+202E>c␇␍d"


def test_slug_and_local_time():
    assert slug("Ünïcödé  héading") == "unicode-heading" and slug("日本語") == "section"
    assert slug("A very long heading " * 5, limit=20) == "a-very-long-heading"
    assert slug("", fallback="session") == "session"
    assert local_time("not a time") == "not a time" and len(local_time("2026-01-02T03:04:05Z")) == 16


def test_slug_ignores_terminal_escapes():
    from tutor.text import slug

    assert slug("\x1b[31mRed pages\x1b[0m") == "red-pages"
    assert slug("\x1b[1m\x1b[0m") == "section"
