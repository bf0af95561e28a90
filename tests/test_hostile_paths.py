"""Hostile and unusual paths through the real CLI: each case is one clear line, no traceback."""

from __future__ import annotations

import os
import time

import pytest

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


def _seed_session(tmp_path) -> str:
    db = str(tmp_path / "a.db")
    r = run_tutor(["open", "README.md", "--offline", "--plain", "--db", db], input="")
    assert "Traceback" not in r.stderr
    return db


def test_export_never_follows_a_planted_part_symlink(tmp_path):
    """16.2: `export -o T` wrote T.part through a planted symlink, overwriting its target."""
    db = _seed_session(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "T.md"
    (tmp_path / "T.md.part").symlink_to(victim)
    r = run_tutor(["export", "--last", "-o", str(out), "--db", db])
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious" and out.is_file() and not out.is_symlink()


def test_export_refuses_symlink_and_device_targets_even_with_force(tmp_path):
    """16.2: --force renamed over /etc/passwd (via a link) and device nodes."""
    db = _seed_session(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link.md"
    link.symlink_to(victim)
    r = run_tutor(["export", "--last", "-o", str(link), "--force", "--db", db])
    assert r.returncode == 1 and "symbolic link" in r.stderr and "Traceback" not in r.stderr
    assert link.is_symlink() and victim.read_text() == "precious"
    r = run_tutor(["export", "--last", "-o", "/dev/null", "--force", "--db", db])
    assert r.returncode == 1 and "not a regular file" in r.stderr and "Traceback" not in r.stderr


def test_export_to_a_path_component_over_255_bytes_is_one_line(tmp_path):
    """16.5: a name longer than NAME_MAX gave a traceback."""
    db = _seed_session(tmp_path)
    r = run_tutor(["export", "--last", "-o", str(tmp_path / ("x" * 300 + ".md")), "--db", db])
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_db_and_tutor_home_with_a_name_over_255_bytes_are_one_line(tmp_path):
    """16.5: a path component over NAME_MAX in --db or TUTOR_HOME was an OSError traceback."""
    long = tmp_path / ("x" * 300)
    r = run_tutor(["sessions", "--db", str(long / "t.db")])
    assert r.returncode == 1 and "Traceback" not in r.stderr and "--db" in r.stderr and "255" in r.stderr
    r = run_tutor(["sessions"], env={"TUTOR_HOME": str(long)})
    assert r.returncode == 1 and "Traceback" not in r.stderr and "TUTOR_HOME" in r.stderr


def test_a_malformed_base_url_is_one_clear_line(tmp_path):
    """Issue 16.5: ANTHROPIC_BASE_URL=http://[::1 was an httpx InvalidURL traceback."""
    from pathlib import Path

    sample = Path(__file__).parent.parent / "explainers" / "sqlite-wal.md"
    env = {"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": "http://[::1", "TUTOR_HOME": str(tmp_path / "home")}
    r = run_tutor(["open", str(sample), "--plain"], input="/quit\n", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-400:]
    assert "ANTHROPIC_BASE_URL is not a valid server address" in r.stderr and "sk-test" not in r.stderr


# ----------------------------------------------------------------- 16.4: every input path, every odd file

KINDS = ["dev-zero", "fifo", "directory", "huge"]


def _odd_file(tmp_path, kind: str) -> str:
    if kind == "dev-zero":
        return "/dev/zero"
    p = tmp_path / f"odd-{kind}.md"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(p)
    elif kind == "directory":
        p.mkdir()
        (p / "n.md").write_text("# n\n")  # a folder of notes is fine for compile; see below
    else:
        with p.open("wb") as f:
            f.truncate(3 * 2**30)  # sparse: 3 GB without using the disk
    return str(p)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["explainer", "notes", "bundle", "db"])
def test_every_input_path_refuses_odd_files_in_one_line_fast(tmp_path, where, kind):
    """16.4: /dev/zero read until memory ran out, a FIFO blocked, and `compile /dev/zero`
    said "no such file"; --db /dev/zero said "disk I/O error". Each is one clear line now."""
    odd = _odd_file(tmp_path, kind)
    db = str(tmp_path / "a.db")
    args = {
        "explainer": ["open", odd, "--offline", "--plain", "--db", db],
        "notes": ["compile", odd, "-o", str(tmp_path / "out.md"), "--offline"],
        "bundle": ["feedback", "import", odd, "--db", db],
        "db": ["sessions", "--db", odd],
    }[where]
    if where == "notes" and kind == "directory":
        pytest.skip("a folder is how notes are given")
    if where == "bundle" and kind == "directory":
        pytest.skip("a folder of bundles is imported file by file (test_hostile_bundles)")
    if where == "db" and kind == "directory":
        pytest.skip("--db FOLDER means FOLDER/tutor.db (docs/database.md)")
    t0 = time.monotonic()
    r = run_tutor(args, input="", timeout=30)
    assert time.monotonic() - t0 < 20
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, r.stderr
    expect = {"dev-zero": "not a regular file", "fifo": "not a regular file", "directory": "is a directory", "huge": "too big"}[kind]
    if where == "db" and kind == "huge":
        expect = "is not a tutor database"
    assert expect in r.stderr and (odd in r.stderr or os.path.basename(odd) in r.stderr), r.stderr
