"""Small wording helpers shared by every command and screen (one home, so "1 turns" and
"1 problem(s)" cannot come back in one place while fixed in another)."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "turn")`` is "1 turn", ``plural(3, "turn")`` "3 turns", with thousands commas;
    ``many`` for irregular words (``plural(2, "query", "queries")``)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def note_key(text: str) -> str:
    """What makes two feedback notes "the same note": case, Unicode width forms, runs of
    whitespace and trailing full stops ignored. The store folds a session's repeats of one
    note into a count with it (m006), and ``tutor feedback`` groups notes across sessions."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).rstrip(" .")
