"""An in-memory FTS5 index of passages, for the offline guide's section search.

It lives with the store because the store is the one place that issues SQL; it never
touches the session database. engine/search.py decides what the passages are and how
hits are grouped; this only indexes and ranks them (bm25 with the porter stemmer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

# (title, body, concept, kind, heading): title is what a heading match is scored on (the
# heading, plus the term for a glossary row); heading is what the reader is told to look under.
Passage = tuple[str, str, str, str, str]


class PassageIndex:
    def __init__(self, rows: Iterable[Passage]):
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute(
            "CREATE VIRTUAL TABLE passages USING fts5(title, body, concept UNINDEXED, kind UNINDEXED, heading UNINDEXED,"
            " tokenize='porter unicode61')"
        )
        rows = list(rows)
        self.conn.executemany("INSERT INTO passages (title, body, concept, kind, heading) VALUES (?, ?, ?, ?, ?)", rows)
        self.size = len(rows)

    def match(self, terms: list[str], limit: int) -> list[tuple[str, str, str, float, str]]:
        """(concept, heading, body, score, kind) for passages with any of ``terms``, best
        first; a higher score is better. Heading matches count double: a question naming a
        section wants that section."""
        if not terms:
            return []
        q = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        try:
            cur = self.conn.execute(
                "SELECT concept, heading, body, bm25(passages, 2.0, 1.0) AS s, kind FROM passages"
                " WHERE passages MATCH ? ORDER BY s, rowid LIMIT ?",
                (q, limit),
            )
        except sqlite3.OperationalError:
            return []
        return [(r[0], r[1], r[2], -float(r[3]), r[4]) for r in cur.fetchall()]

    def close(self) -> None:
        self.conn.close()
