"""Shared fixtures. Feature-specific helpers live in their own modules under tests/."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["fake_api"]  # the fake Messages API server and its fixtures

ROOT = Path(__file__).resolve().parent.parent
EXPLAINERS = ROOT / "explainers"
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test may see a real key or write to the real data home."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("TUTOR_MODEL", raising=False)
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / "tutor-home"))
    yield


@pytest.fixture
def notes(tmp_path):
    """A notes folder with one long file, what the compile tests give `tutor compile`."""
    from compile_helpers import big_notes

    d = tmp_path / "notes"
    d.mkdir()
    (d / "wal.md").write_text(big_notes(), encoding="utf-8")
    return d
