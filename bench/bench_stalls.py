"""Every stalled-server mode at tutor's DEFAULT limits, in real time (issue 15.1).
Run: .venv/bin/python bench/bench_stalls.py [MODE ...]   (about 100 s: the modes run side by side)

The fault tests use short limits so they finish in seconds; this runs the real
`tutor open --plain` with no $TUTOR_* limit set against tests/fake_api.py: the opening
reply arrives, then the reader's message meets a server that stalls in one way for an
hour. Printed per mode: how long until tutor gave up, its exit status, the message the
reader read, whether the reader's words are in the database, integrity_check, and whether
any traceback was printed. Target: each ends within the documented turn deadline (300 s;
docs/reliability.md), says what happened, and keeps the words.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_api import (  # noqa: E402
    FakeAPI,
    hang,
    long_retry_after,
    ping_forever,
    stalled_body,
    stalled_headers,
    text,
    trickle,
)

HOUR = 3600.0
FIRST_WORD = "sent no reply within 90 seconds"  # Limits.first_token, the documented default
MODES = {  # mode: (the server's reply, what the reader must read)
    "stalled headers": (lambda: stalled_headers(HOUR), FIRST_WORD),
    "hang": (lambda: hang(HOUR), FIRST_WORD),
    "stalled body": (lambda: stalled_body(HOUR), FIRST_WORD),
    "ping forever": (lambda: ping_forever(HOUR), FIRST_WORD),
    "trickle": (lambda: trickle("word " * 100_000, every=0.05), "cut off at the length limit"),
    "429 retry-after 600": (lambda: long_retry_after(600), "asks to wait 600 seconds"),
}
WORDS = "my words must survive this"
DEADLINE = 300.0  # Limits.reply, the whole tutor turn


def run(mode: str, home: Path) -> tuple[str, float, int, str, bool, str, bool]:
    db = home / f"{mode.replace(' ', '-')}.db"
    with FakeAPI(thinking=True) as api:
        api.enqueue(text("I want to explain the WAL to you. Do you already know about pages?"))
        api.handler = lambda body: MODES[mode][0]()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUTOR_")}  # the defaults
        env.update(ANTHROPIC_API_KEY="k", ANTHROPIC_BASE_URL=api.url, TUTOR_MODEL="claude-sonnet-5-5", TUTOR_HOME=str(home))
        t0 = time.monotonic()
        try:
            r = subprocess.run(
                [sys.executable, "-m", "tutor", "open", str(ROOT / "explainers" / "sqlite-wal.md"), "--plain", "--db", str(db)],
                input=f"{WORDS}\n/quit\n", capture_output=True, text=True, env=env, timeout=DEADLINE * 2,
            )
        except subprocess.TimeoutExpired:
            return mode, time.monotonic() - t0, -1, "(still running: killed)", False, "not checked", False
        took = time.monotonic() - t0
    out = r.stdout + r.stderr
    said = next((line[len("[error] "):] for line in out.splitlines() if line.startswith("[error] ")), "")
    if not said and "cut off" in out:
        said = "[the reply was cut off at the length limit]"
    with sqlite3.connect(db) as con:
        kept = con.execute("SELECT count(*) FROM messages WHERE role = 'reader' AND text = ?", (WORDS,)).fetchone()[0] == 1
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    return mode, took, r.returncode, said, kept, ok, "Traceback" in out


def main(argv: list[str]) -> int:
    modes = [m for m in MODES if not argv or any(a in m for a in argv)]
    home = Path(tempfile.mkdtemp(prefix="tutor-stalls-"))
    print(f"stalled servers at the default limits (first word 90 s, SDK read 95 s, turn {DEADLINE:.0f} s), real time")
    with ThreadPoolExecutor(len(modes)) as pool:
        results = list(pool.map(lambda m: run(m, home), modes))
    bad = 0
    print(f"  {'mode':<20} {'ended after':>11}  exit  kept  integrity  traceback  the reader read")
    for mode, took, rc, said, kept, ok, tb in results:
        fine = took <= DEADLINE and kept and ok == "ok" and not tb and MODES[mode][1] in said
        bad += not fine
        print(f"  {mode:<20} {took:>9.1f} s  {rc:>4}  {'yes' if kept else 'NO':>4}  {ok:>9}  {'YES' if tb else 'no':>9}  {said[:70]}")
    print(f"target: every mode ends within {DEADLINE:.0f} s with its message and the words kept: {'OK' if not bad else 'MISSED'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
