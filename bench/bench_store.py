"""Store benchmark: 10,000 sessions x 100 messages, whole-process CLI times vs bare sqlite3.

    .venv/bin/python bench/bench_store.py [--regen] [--repeat N] [--sessions N]

Generates (once, cached under bench/out/) a database through the real schema: the store
creates it and runs its migrations, then the rows go in with executemany in one
transaction, through the same triggers that keep counts and the FTS index up to date.
Then it times, as whole processes (what a user waits for):

    tutor sessions                 vs  sqlite3 DB "<the list query>"
    tutor export ID (md/json/html) vs  sqlite3 DB "<the messages query>"
    tutor search WORD              vs  sqlite3 DB "<the FTS query>"

and prints medians, the ratio to sqlite3, and the targets (sessions < 0.5 s, export < 0.3 s).
The python interpreter's own start-up is printed too, as the floor for any tutor command.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out"
TUTOR = [str(ROOT / ".venv" / "bin" / "tutor")]
if not Path(TUTOR[0]).exists():
    TUTOR = [sys.executable, "-m", "tutor"]
SQLITE3 = shutil.which("sqlite3")

SESSIONS = 10_000
MESSAGES = 100
EXPLAINERS = 40
RARE_WORD = "pelican"  # in about 1 message in 500
COMMON_WORD = "page"  # in most messages

_WORDS = (
    "the a of to and is in that it for on with as this be are by or from at an was which can "
    "page pages database file write log wal checkpoint reader writer transaction commit lock "
    "journal frame header index btree cell overflow freelist vacuum sync fsync durable crash "
    "recovery snapshot isolation read consistent shared memory wal-index salt checksum size "
    "block disk cache hot cold busy timeout retry understand explain again example why how "
    "what when does mean think right wrong almost exactly yes no maybe sure question answer"
).split()


def _text(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) if rng.random() < 0.7 else rng.choice(_WORDS[:20]) for _ in range(n_words)]
    if rng.random() < 0.4:
        words[rng.randrange(n_words)] = COMMON_WORD
    if rng.random() < 0.002:
        words[rng.randrange(n_words)] = RARE_WORD
    return " ".join(words).capitalize() + "."


def generate(path: Path, n_sessions: int) -> None:
    tmp = path.with_suffix(".tmp")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    Store.open(tmp).close()  # the real schema, through the real migrations
    rng = random.Random(42)
    t0 = time.perf_counter()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    explainers = []
    for i in range(EXPLAINERS):
        h = f"{i:064x}"
        explainers.append((h, f"/home/reader/explainers/topic-{i}.md"))
        conn.execute(
            "INSERT INTO explainers (hash, path, title, format_version, plain, concepts, first_seen, last_seen)"
            " VALUES (?, ?, ?, 1, 0, '[]', ?, ?)",
            (h, f"/home/reader/explainers/topic-{i}.md", f"Topic {i}: how the {rng.choice(_WORDS)} works",
             start.isoformat(), start.isoformat()),
        )
    for s in range(n_sessions):
        sid = uuid.UUID(int=rng.getrandbits(128)).hex
        h, epath = explainers[s % EXPLAINERS]
        t = start + timedelta(minutes=s * 7)
        iso = lambda d: d.isoformat(timespec="microseconds").replace("+00:00", "Z")  # noqa: E731
        claude = s % 3 != 0
        conn.execute(
            "INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status,"
            " input_tokens, output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, h, epath, "claude:claude-sonnet-4-5" if claude else "offline", iso(t),
             iso(t + timedelta(minutes=MESSAGES)), "finished" if s % 5 else "active",
             50_000 if claude else 0, 8_000 if claude else 0, 0.27 if claude else 0.0),
        )
        rows = []
        for m in range(MESSAGES):
            role = "reader" if m % 2 == 0 else "tutor"
            text = _text(rng, 12 if role == "reader" else 45)
            rows.append((sid, m + 1, role, text, text if role == "tutor" else None,
                         iso(t + timedelta(minutes=m)), 1, 500 if claude and role == "tutor" else 0,
                         80 if claude and role == "tutor" else 0))
        conn.executemany(
            "INSERT INTO messages (session_id, seq, role, text, raw, created, complete, input_tokens,"
            " output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO concept_states (session_id, concept_id, state, evidence, message_seq, updated)"
            " VALUES (?, ?, ?, '', ?, ?)",
            [(sid, f"c{k}", rng.choice(["known", "understood", "shaky"]), k * 10, iso(t)) for k in range(5)],
        )
        if s % 1000 == 999:
            print(f"  generated {s + 1} sessions ({time.perf_counter() - t0:.0f} s)", flush=True)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    tmp.replace(path)
    print(f"generated {path} in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")


def timed(cmd: list[str], repeat: int) -> tuple[float, str]:
    """Median wall time of ``repeat`` runs (and the fastest, in FASTEST[cmd])."""
    times = []
    out = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
        out = proc.stdout
    FASTEST[tuple(cmd)] = min(times)
    return statistics.median(times), out


FASTEST: dict[tuple[str, ...], float] = {}


def in_process(argv: list[str], repeat: int) -> float:
    """Median time of the command's own work (imports already done): open, query, render."""
    import contextlib
    import io

    from tutor.cli import cli

    times = []
    for _ in range(repeat):
        buf = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            cli.main(argv, standalone_mode=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regen", action="store_true", help="regenerate the cached database")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--sessions", type=int, default=SESSIONS)
    args = ap.parse_args()
    from _bytecode import ensure_bytecode

    ensure_bytecode()  # time an installed tutor, not source compiled at start-up

    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"store-{args.sessions}x{MESSAGES}.db"
    if args.regen or not db.exists():
        print(f"generating {args.sessions} sessions x {MESSAGES} messages ...", flush=True)
        generate(db, args.sessions)
    Store.open(db).close()  # bring an old cached file up to the current schema (not timed)
    conn = sqlite3.connect(db)
    n_s, n_m = conn.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM messages)").fetchone()
    sid = conn.execute("SELECT id FROM sessions ORDER BY updated DESC LIMIT 1 OFFSET 17").fetchone()[0]
    rare = conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (RARE_WORD,)).fetchone()[0]
    common = conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (COMMON_WORD,)).fetchone()[0]
    conn.close()
    print(f"database: {db} ({db.stat().st_size / 1e6:.0f} MB, {n_s} sessions, {n_m} messages)")
    print(f"search words: {RARE_WORD!r} in {rare} messages, {COMMON_WORD!r} in {common} messages")
    print(f"median of {args.repeat} whole-process runs; machine load average {open('/proc/loadavg').read().split()[0]}")
    print()

    rows: list[tuple[str, float, float, float | None, float | None, float | None]] = []
    cmd = [sys.executable, "-c", "pass"]
    floor, _ = timed(cmd, args.repeat)
    rows.append(("python -c pass (interpreter floor)", floor, FASTEST[tuple(cmd)], None, None, None))
    cmd = [sys.executable, "-c", "import tutor.store"]
    t, _ = timed(cmd, args.repeat)
    rows.append(("python -c 'import tutor.store' (floor)", t, FASTEST[tuple(cmd)], None, None, None))

    list_sql = (
        "SELECT s.id, e.title, s.started, s.updated, s.turn_count, s.mode, s.cost_usd FROM sessions s"
        " LEFT JOIN explainers e ON e.hash = s.explainer_hash ORDER BY s.updated DESC LIMIT 50"
    )
    export_sql = (
        "SELECT seq, role, text, raw, created, complete, input_tokens, output_tokens,"
        f" cache_creation_input_tokens, cache_read_input_tokens, cost_usd FROM messages WHERE session_id = '{sid}'"
        " ORDER BY seq"
    )

    def search_sql(word: str, order: str = "messages_fts.rowid DESC") -> str:
        return (
            "SELECT m.session_id, m.seq, m.role, snippet(messages_fts, 0, '[', ']', '...', 12) FROM messages_fts"
            f" JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH '\"{word}\"'"
            f" ORDER BY {order} LIMIT 20"
        )

    cases = [
        ("tutor sessions", ["sessions"], list_sql, 0.5),
        ("tutor export ID (md)", ["export", sid[:8], "-o", "-"], export_sql, 0.3),
        ("tutor export ID --format json", ["export", sid[:8], "--format", "json", "-o", "-"], export_sql, 0.3),
        ("tutor export ID --format html -o -", ["export", sid[:8], "-f", "html", "-o", "-"], export_sql, 0.3),
        (f"tutor search {RARE_WORD}", ["search", RARE_WORD], search_sql(RARE_WORD), None),
        (f"tutor search {COMMON_WORD}", ["search", COMMON_WORD], search_sql(COMMON_WORD), None),
        (f"tutor search {RARE_WORD} --rank", ["search", RARE_WORD, "--rank"], search_sql(RARE_WORD, "rank"), None),
        (f"tutor search {COMMON_WORD} --rank", ["search", COMMON_WORD, "--rank"], search_sql(COMMON_WORD, "rank"), None),
    ]
    for label, argv, sql, target in cases:
        cmd = TUTOR + argv + ["--db", str(db)]
        t_tutor, out = timed(cmd, args.repeat)
        assert out.strip(), f"{label} printed nothing"
        t_sql = None
        if SQLITE3:
            t_sql, _ = timed([SQLITE3, str(db), sql], args.repeat)
        work = in_process(argv + ["--db", str(db)], args.repeat)
        rows.append((label, t_tutor, FASTEST[tuple(cmd)], work, t_sql, target))

    print(f"{'command':42} {'median':>8} {'fastest':>8} {'work':>8} {'sqlite3':>8} {'ratio':>7} {'target':>8}")
    for label, t, fastest, work, base, target in rows:
        ratio = f"{t / base:6.1f}x" if base else ""
        tgt = f"< {target:.1f} s" if target else ""
        verdict = ("ok" if t < target else "MISSED (median)") if target else ""
        b = f"{base * 1000:6.0f}ms" if base else ""
        w = f"{work * 1000:6.0f}ms" if work is not None else ""
        print(f"{label:42} {t * 1000:6.0f}ms {fastest * 1000:6.0f}ms {w:>8} {b:>8} {ratio:>7} {tgt:>8}  {verdict}")
    print("median/fastest: whole `tutor` processes (python start-up and imports included);")
    print("work: the same command run in-process after imports (open, query, render);")
    print("ratio: tutor median / sqlite3 median (the sqlite3 CLI is a C program with no start-up cost)")
    if not SQLITE3:
        print("(sqlite3 CLI not found: install the sqlite3 package for the baseline column)")


if __name__ == "__main__":
    main()
