"""Hostile and unusual paths through the real CLI: each case is one clear line, no traceback."""

from __future__ import annotations

from compile_helpers import run_tutor


def test_open_with_an_empty_path_says_no_file_given(tmp_path):
    """16.7: `tutor open ''` said "tutor: : is a directory"."""
    r = run_tutor(["open", "", "--db", str(tmp_path / "a.db")])
    assert r.returncode == 2 and "no file given" in r.stderr and "Traceback" not in r.stderr
    assert "is a directory" not in r.stderr


def test_limits_too_big_for_sqlite_are_capped(tmp_path):
    """16.5: --limit 99999999999999999999 raised OverflowError from sqlite3."""
    db = str(tmp_path / "a.db")
    assert run_tutor(["open", "README.md", "--offline", "--plain", "--db", db], input="").returncode in (0, 1)
    for args in (["search", "checkpoint"], ["sessions"]):
        r = run_tutor([*args, "--limit", "99999999999999999999", "--db", db])
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
