"""Two real processes write 500 turns each to one database at the same time.

Both must finish with no "database is locked" (or any other) error, every row must be
there, and sequence numbers in the session both write into must stay unique and gapless.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tutor.store import KNOWN_MIGRATIONS, SCHEMA_VERSION, Store

from store_workers import sample_explainer

WORKER = Path(__file__).with_name("store_workers.py")
TURNS = 500


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_500_turns_each_no_locked_errors(tmp_path):
    db = tmp_path / "shared.db"
    with Store.open(db) as store:
        ex = sample_explainer("shared.md")
        shared = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
    procs = [_spawn("concurrent", str(db), name, str(TURNS), shared) for name in ("alpha", "beta")]
    for p in procs:
        assert p.stdout.readline().strip() == "READY", p.stderr.read()
    for p in procs:  # release both at once
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        results.append((p.returncode, out, err))
    for rc, out, err in results:
        assert "locked" not in out + err
        assert rc == 0 and out.strip().endswith("DONE"), f"rc={rc}\n{out}\n{err}"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store.open(db) as store:
        for name in ("alpha", "beta"):
            (row,) = store.list_sessions(explainer_path=f"{name}.md")
            assert row.status == "finished"
            msgs = store.messages(row.id)
            assert len(msgs) == 2 * TURNS == row.message_count
            assert row.turn_count == TURNS
            assert all(m.complete for m in msgs)
            assert [m.text for m in msgs if m.role == "reader"] == [
                f"{name} reader {i}: what is a <script> [bold] page?" for i in range(1, TURNS + 1)
            ]
            assert row.input_tokens == 10 * TURNS and round(row.cost_usd, 6) == round(0.001 * TURNS, 6)
            assert len(store.feedback(session_id=row.id)) == TURNS // 10
        shared_msgs = store.messages(shared)
        assert [m.seq for m in shared_msgs] == list(range(1, 2 * TURNS + 1))
        for name in ("alpha", "beta"):
            # each writer's messages to the shared session kept their own order
            mine = [m.text for m in shared_msgs if m.text.startswith(name)]
            assert mine == [f"{name} shared {i}" for i in range(1, TURNS + 1)]


def test_many_processes_create_the_same_new_database_at_once(tmp_path):
    """Creating and migrating a fresh file is itself a race: four openers, one schema."""
    db = tmp_path / "fresh.db"
    procs = [_spawn("open", str(db)) for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "OPENED", err
    with Store.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = store.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id").fetchall()
        assert [r[0] for r in rows] == KNOWN_MIGRATIONS
