"""Damaged and unusual databases through the real CLI (issue 15.4): every command that opens
the database, against every kind of damage, gives one or two lines naming the file and what
to do -- never a traceback -- and loses nothing already saved. A missing search index (or
its triggers, or an index) is rebuilt at open. Figures: docs/database.md, "Damaged databases".
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from compile_helpers import run_tutor
from conftest import ROOT

WAL = str(ROOT / "explainers" / "sqlite-wal.md")

# Every command that opens the database, read-only ones and writing ones.
COMMANDS: dict[str, list[str]] = {
    "open": ["open", WAL, "--offline", "--plain"],
    "sessions": ["sessions"],
    "sessions-json": ["sessions", "--json", "--all"],
    "search": ["search", "checkpoint"],
    "export": ["export", "--last", "-o", "-"],
    "feedback": ["feedback"],
    "feedback-file": ["feedback", WAL],
    "where": ["where"],
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """One real database with a session of a few turns, made by the real CLI."""
    db = tmp_path_factory.mktemp("seed") / "t.db"
    r = run_tutor(["open", WAL, "--offline", "--plain", "--db", str(db)],
                  input="what is a checkpoint\nthe log is appended\n")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM messages").fetchone()[0] >= 3
    return db


def _sql(db: Path, script: str) -> None:
    c = sqlite3.connect(db, isolation_level=None)
    c.executescript(script)
    c.close()


def _null_in_required(db: Path) -> None:
    """NULL in a NOT NULL column (sessions.mode), as another program with its own idea of
    the schema could leave it: the constraint is edited out of the stored schema."""
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA writable_schema = ON")
    c.execute("UPDATE sqlite_master SET sql = replace(sql, 'mode TEXT NOT NULL', 'mode TEXT') WHERE name = 'sessions'")
    c.execute("PRAGMA writable_schema = OFF")
    c.close()
    _sql(db, "UPDATE sessions SET mode = NULL;")


def _garbage(db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(os.urandom(8192))


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


# name -> (how to damage a copy, what the user must be told (a substring), whether every
# command succeeds, i.e. the damage is repaired or harmless)
DAMAGES: dict[str, tuple] = {
    "dropped-fts-table": (lambda db: _sql(db, "DROP TABLE messages_fts;"), "search index was missing", True),
    "dropped-fts-triggers": (lambda db: _sql(db, "DROP TRIGGER messages_fts_ai; DROP TRIGGER messages_fts_ad;"
                                               " DROP TRIGGER messages_fts_au;"), None, True),
    "dropped-count-triggers": (lambda db: _sql(db, "DROP TRIGGER messages_count_ai;"), None, True),
    "dropped-index": (lambda db: _sql(db, "DROP INDEX sessions_by_updated; DROP INDEX feedback_by_uid;"), None, True),
    "dropped-messages-table": (lambda db: _sql(db, "DROP TABLE messages;"), "table messages is missing", False),
    "dropped-sessions-table": (lambda db: _sql(db, "PRAGMA foreign_keys=OFF; DROP TABLE sessions;"),
                               "table sessions is missing", False),
    "dropped-column-messages": (lambda db: _sql(db, "ALTER TABLE messages DROP COLUMN cost_usd;"),
                                "column cost_usd is missing", None),
    "dropped-column-sessions": (lambda db: _sql(db, "ALTER TABLE sessions DROP COLUMN cost_usd;"),
                                "column cost_usd is missing", None),
    "text-in-real-column": (lambda db: _sql(db, "UPDATE sessions SET cost_usd = 'abc';"), "sessions row", None),
    "text-in-integer-column": (lambda db: _sql(db, "UPDATE messages SET input_tokens = 'lots';"), "messages row", None),
    "blob-in-text-column": (lambda db: _sql(db, "UPDATE messages SET text = x'fffe00' WHERE seq = 1;"),
                            "messages row", None),
    "null-in-required-column": (_null_in_required, "sessions row", None),
    "bad-json-column": (lambda db: _sql(db, "UPDATE explainers SET concepts = '{bad';"), "explainers row", None),
    "garbage-bytes": (_garbage, "not a tutor database", False),
    "truncated-file": (_truncated, "not a tutor database", False),
    "zero-length-file": (lambda db: db.write_bytes(b""), "no sessions yet", None),  # an empty database: made new
    "newer-user-version": (lambda db: _sql(db, "PRAGMA user_version = 99;"), "newer tutor", False),
    "newer-migration": (lambda db: _sql(db, "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                                           " VALUES ('tutor', 'm099_future', '2030-01-01');"), "newer tutor", False),
}


def _counts(db: Path) -> tuple[int, int] | None:
    """(sessions, messages), or None when the file cannot be read as ours."""
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return (c.execute("SELECT count(*) FROM sessions").fetchone()[0],
                    c.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            c.close()
    except sqlite3.Error:
        return None


def _copy(seeded: Path, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    db = where / "t.db"
    shutil.copy(seeded, db)
    return db


def _error_block(stderr: str) -> list[str]:
    """The error itself: from the last line starting "tutor:" to the end (notices of a
    session that started before the error are printed above it)."""
    lines = stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("tutor:")]
    return lines[starts[-1]:] if starts else lines


def _check(r: subprocess.CompletedProcess, db: Path, must_say: str | None, ok: bool | None) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    if ok is True:
        assert r.returncode == 0, r.stderr
    elif ok is False:
        assert r.returncode == 1, (r.returncode, r.stderr)
    if r.returncode != 0:
        assert r.returncode == 1, (r.returncode, r.stderr)
        block = _error_block(r.stderr)
        assert 1 <= len(block) <= 2, r.stderr
        assert str(db) in block[0] or db.name in block[0] or "no sessions yet" in block[0], r.stderr  # names the file
        assert len(block) == 2 or "--db" in block[0], r.stderr  # and what to do
        if must_say and ok is False:
            assert must_say in r.stderr, r.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_database_is_one_clear_error_or_repaired(seeded, tmp_path, damage, command):
    db = _copy(seeded, tmp_path / "d")
    hurt, must_say, ok = DAMAGES[damage]
    hurt(db)
    before = _counts(db)
    r = run_tutor([*COMMANDS[command], "--db", str(db)], input="hello\n")
    _check(r, db, must_say, ok)
    after = _counts(db)
    if before is not None:  # nothing saved is lost (open adds the new turn's messages)
        assert after is not None and after[0] >= before[0] and after[1] >= before[1], (before, after)
        if command != "open":
            assert after == before
    if ok is None and command == "export":  # the damaged row is named, not skipped
        assert r.returncode == 1 and must_say in r.stderr, r.stderr
    elif ok is None and r.returncode == 0 and damage != "zero-length-file":
        assert command == "open" or "left out" in r.stderr or not r.stderr, r.stderr  # skipped, and said so


@pytest.mark.parametrize("damage", ["dropped-fts-table", "dropped-fts-triggers"])
def test_the_search_index_rebuilds_itself_and_keeps_up(seeded, tmp_path, damage):
    db = _copy(seeded, tmp_path / "d")
    DAMAGES[damage][0](db)
    r = run_tutor(["search", "checkpoint", "--db", str(db)])
    assert r.returncode == 0 and "checkpoint" in r.stdout.lower(), r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) <= 1  # at most one quiet line about the repair
    r = run_tutor(["open", WAL, "--offline", "--plain", "--db", str(db)], input="zebrafish\n")
    assert r.returncode == 0, r.stderr
    r = run_tutor(["search", "zebrafish", "--db", str(db)])
    assert r.returncode == 0 and "zebrafish" in r.stdout and r.stderr == "", r.stdout + r.stderr
    with sqlite3.connect(db) as c:
        names = {n for (n,) in c.execute("SELECT name FROM sqlite_master")}
    assert {"messages_fts", "messages_fts_ai", "messages_fts_ad", "messages_fts_au"} <= names


def test_a_damaged_session_is_left_out_of_the_list_and_can_be_removed(seeded, tmp_path):
    db = _copy(seeded, tmp_path / "d")
    _sql(db, "UPDATE sessions SET cost_usd = 'abc';")
    sid = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    r = run_tutor(["sessions", "--db", str(db)])
    assert r.returncode == 0 and "left out" in r.stderr and sid[:8] in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_tutor(["sessions", "rm", sid[:8], "--yes", "--db", str(db)])
    assert r.returncode == 0 and "Removed 1 session" in r.stdout, r.stdout + r.stderr
    assert _counts(db) == (0, 0)


def _without_root_override() -> list[str]:
    """Root ignores file modes: run the CLI without CAP_DAC_OVERRIDE so a read-only file is
    read-only to it (util-linux setpriv), as it is to every reader."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made read-only")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def _run(prefix: list[str], args: list[str], *, preexec_fn=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "tutor", *args], input="hello\n", capture_output=True,
                          text=True, cwd=str(ROOT), env=dict(os.environ), timeout=timeout, preexec_fn=preexec_fn)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_database_file(seeded, tmp_path, command):
    """Reading works; a command that writes says the file is read-only and how to fix it."""
    prefix = _without_root_override()
    db = _copy(seeded, tmp_path / "d")
    db.chmod(0o444)
    before = _counts(db)
    r = _run(prefix, [*COMMANDS[command], "--db", str(db)])
    _check(r, db, None, None)
    if command == "open":
        assert r.returncode == 1 and "read-only" in r.stderr and "chmod" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr
    assert _counts(db) == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_database_in_a_read_only_folder(seeded, tmp_path, command):
    """SQLite's WAL needs <db>-wal and <db>-shm beside the file: the folder is named."""
    prefix = _without_root_override()
    db = _copy(seeded, tmp_path / "d")
    before = _counts(db)
    for suffix in ("-wal", "-shm"):  # (left by that read when the test runs as root)
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.parent.chmod(0o555)
    try:
        r = _run(prefix, [*COMMANDS[command], "--db", str(db)])
    finally:
        db.parent.chmod(0o755)
    _check(r, db, None, None)
    if r.returncode:
        assert "folder is read-only" in r.stderr, r.stderr
    assert _counts(db) == before


@pytest.mark.parametrize("command", ["open", "sessions", "search", "export"])
def test_a_database_locked_by_another_program(seeded, tmp_path, command):
    """Another program holds BEGIN EXCLUSIVE: reading goes on (WAL); writing waits the busy
    timeout, then says so."""
    db = _copy(seeded, tmp_path / "d")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\n"
         "print('held', flush=True)\ntime.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = _run([], [*COMMANDS[command], "--db", str(db)])
    finally:
        holder.kill()
        holder.wait()
    _check(r, db, None, None)
    if command == "open":
        assert r.returncode == 1 and "busy" in r.stderr and "another program" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr


def test_a_full_disk(seeded, tmp_path):
    """The file size limit (RLIMIT_FSIZE) makes the kernel refuse to grow the WAL, as a full
    disk does: the turn is refused in two lines and what was saved before is kept."""
    db = _copy(seeded, tmp_path / "d")
    before = _counts(db)
    limit = 40_000  # room for the 32 KiB -shm index, not for new WAL frames

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    for command in ("open", "sessions", "search"):
        r = _run([], [*COMMANDS[command], "--db", str(db)], preexec_fn=small_files)
        _check(r, db, None, None)
        if command == "open":
            assert r.returncode == 1 and "disk" in r.stderr, r.stderr
    after = _counts(db)  # what fitted before the limit is kept, nothing older is lost
    assert before is not None and after is not None and after[0] == before[0] and after[1] >= before[1]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_path_longer_than_the_system_allows(tmp_path, command):
    """Every name is short, the whole path is over PATH_MAX (4096 bytes on Linux)."""
    db = tmp_path.joinpath(*["d" * 200] * 22) / "t.db"
    r = run_tutor([*COMMANDS[command], "--db", str(db)])
    assert "Traceback" not in r.stderr, r.stderr[-500:]
    assert r.returncode == 1 and "path is too long" in r.stderr and len(r.stderr.strip().splitlines()) == 2, r.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_folder_where_the_database_file_should_be(tmp_path, command):
    home = tmp_path / "home"
    (home / "tutor.db").mkdir(parents=True)
    r = run_tutor(COMMANDS[command], input="hello\n", env={"TUTOR_HOME": str(home)})
    assert "Traceback" not in r.stderr, r.stderr
    if command == "where":
        return
    assert r.returncode == 1 and "is a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 2, r.stderr
