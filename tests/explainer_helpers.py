"""Builders for explainer test files (loader tests only; not fixtures in conftest)."""

from __future__ import annotations

from pathlib import Path

from tutor.explainer import AI_PREAMBLE


def write(tmp_path: Path, text: str | bytes, name: str = "doc.md") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def v1(front: str, body: str, *, preamble: str = AI_PREAMBLE) -> str:
    """A format-v1 file: '---', the YAML, '---', the AI note, then the body."""
    return f"---\n{front.strip()}\n---\n\n{preamble}\n\n{body.lstrip()}"
