"""Helpers for the engine tests: small explainers built from text, event collection."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tutor.explainer import CheckQuestion, Concept, Explainer, Section

ROOT = Path(__file__).resolve().parent.parent


def make_explainer(specs: list[dict], *, title: str = "Test topic", path: str = "test.md") -> Explainer:
    """An Explainer without the loader: specs are dicts with id, title, prerequisites, text, checks."""
    concepts = []
    line = 10
    source_parts = []
    for s in specs:
        text = s.get("text", f"Text about {s['title']}.")
        n = text.count("\n") + 1
        checks = [CheckQuestion(**c) if isinstance(c, dict) else c for c in s.get("checks", [])]
        concepts.append(
            Concept(
                id=s["id"],
                title=s["title"],
                summary=s.get("summary", ""),
                prerequisites=s.get("prerequisites", []),
                checks=checks,
                section=Section(heading=s["title"], level=2, text=text, start_line=line, end_line=line + n),
            )
        )
        source_parts.append(f"## {s['title']}\n\n{text}\n")
        line += n + 2
    source = "\n".join(source_parts)
    return Explainer(
        path=path,
        title=title,
        concepts=concepts,
        source=source,
        content_hash=hashlib.sha256(source.encode()).hexdigest(),
    )


async def collect(aiter) -> list:
    return [e async for e in aiter]


def text_of(events) -> str:
    return "".join(e.text for e in events if getattr(e, "kind", None) == "text")
