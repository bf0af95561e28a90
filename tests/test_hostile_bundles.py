"""Hostile feedback bundles and input paths through the real CLI (docs/security.md)."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from compile_helpers import run_cli, run_tutor

HEADER = {"type": "header", "created": "2026-01-01T00:00:00Z", "title": "t", "file": "f.md"}


def _bundle(tmp_path, *lines: dict) -> str:
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(b)


def test_dev_zero_is_refused_not_read_until_memory_runs_out(tmp_path):
    """16.4: /dev/zero has st_size 0, so the old size check passed and read_bytes() never ended."""
    r = run_tutor(["feedback", "import", "/dev/zero", "--db", str(tmp_path / "a.db")], timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "/dev/zero: not a regular file" in r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    r = run_tutor(["feedback", "import", str(fifo), "--db", str(tmp_path / "a.db")], timeout=30)
    assert r.returncode == 1 and "not a regular file" in r.stderr and "Traceback" not in r.stderr


def test_a_directory_and_an_empty_path_are_clear_errors(tmp_path):
    r = run_cli(["feedback", "import", str(tmp_path), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 1 and "is a directory" in r.stderr
    r = run_cli(["feedback", "import", "", "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 1 and "no file given" in r.stderr


def test_a_count_of_2_to_the_63_is_a_bad_line_not_a_traceback(tmp_path):
    """16.5: SQLite's INTEGER is 64-bit; 2**63 raised OverflowError mid-import."""
    b = _bundle(tmp_path, HEADER, {"type": "stats", "session_key": "k" * 16, "explainer_hash": "ffff",
                                   "concept_id": "c", "explained": 2**63})
    db = tmp_path / "a.db"
    r = run_tutor(["feedback", "import", b, "--db", str(db)])
    assert r.returncode == 1 and "Traceback" not in r.stderr and ":2: bad stats line: explained" in r.stderr


@pytest.mark.parametrize("name", ["..", ".", "../..", "/"])
def test_a_bundle_naming_a_folder_does_not_become_the_explainer_path(tmp_path, monkeypatch, name):
    """16.7: `file: ".."` imported the parent folder as the explainer path."""
    monkeypatch.chdir(tmp_path)
    b = _bundle(tmp_path, {**HEADER, "file": name},
                {"type": "explainer", "hash": "ab" * 32, "title": "t", "file": name, "sections": []})
    db = tmp_path / "a.db"
    r = run_cli(["feedback", "import", b, "--db", str(db)])
    assert r.exit_code == 0, r.stderr
    with sqlite3.connect(db) as c:
        (path,) = c.execute("SELECT path FROM explainers").fetchone()
    assert path.endswith("explainer.md") and path != str(tmp_path.parent)
