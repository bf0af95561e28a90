"""Subprocess workers for the store's kill and concurrency tests.

Run as ``python tests/store_workers.py MODE DB ...``. They use the real Store on a real
file, exactly as the engine does for a turn: the reader's message is committed (then
acknowledged on stdout), the tutor's reply is created incomplete, grows through
update_message, and is marked complete at the end.

    kill DB RUN            write turns forever into the latest active session, printing
                           "ACK <run> <i>" after each reader message is committed
    concurrent DB NAME N SHARED_SID
                           wait for "go" on stdin, then write N turns into a session of
                           its own plus one message per turn into SHARED_SID; print
                           "DONE" or "ERROR <message>" and exit 0 / 1
    open DB                open (creating and migrating) the database, print "OPENED"
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tutor.engine.events import TokenUsage  # noqa: E402
from tutor.explainer import Concept, Explainer, Section  # noqa: E402
from tutor.store import Store  # noqa: E402

FINAL_MARK = "[end of reply]"


def sample_explainer(path: str = "workers.md") -> Explainer:
    """A small real Explainer model (no file needed: the store only reads its fields)."""
    concepts = [
        Concept(id=cid, title=cid.title(), section=Section(heading=cid, text="...", start_line=i, end_line=i))
        for i, cid in enumerate(["pages", "wal", "checkpoint"], start=1)
    ]
    return Explainer(
        path=path,
        title="Worker explainer",
        concepts=concepts,
        source="# Worker explainer\n",
        content_hash="f" * 64,
    )


def one_turn(store: Store, sid: str, label: str, i: int, ack: bool) -> None:
    store.add_message(sid, "reader", f"{label} reader {i}: what is a <script> [bold] page?")
    if ack:
        print(f"ACK {label} {i}", flush=True)
    # Saved the way a streaming reply is (session.py): the first piece, then appended tails.
    first, *rest = (f"{label} tutor {i}: a page ", "is a fixed-size block ", f"of the file. {FINAL_MARK}")
    mid = store.add_message(sid, "tutor", first, raw=first, complete=False)
    for chunk in rest:
        store.append_message(mid, chunk, chunk)
    usage = TokenUsage(input_tokens=10, output_tokens=5, cache_read_input_tokens=3, cost_usd=0.001)
    store.append_message(
        mid,
        "",
        ' <state concept="pages" value="asked">q</state>',
        complete=True,
        usage=usage,
    )
    store.add_usage(sid, usage)
    store.set_concept_state(sid, "pages", "asked" if i % 2 else "shaky", f"turn {i}", message_seq=i)
    if i % 10 == 0:
        store.add_feedback(sid, "f" * 64, "pages", f"{label} feedback {i}", "model")
        store.save_summary(sid, i, f"{label} summary up to {i}")


def kill_worker(db: str, run: str) -> None:
    store = Store.open(db)
    ex = sample_explainer()
    h = store.upsert_explainer(ex)
    row = store.latest_open_session(ex.path)
    sid = row.id if row else store.create_session(h, ex.path, "offline")
    print(f"READY {sid}", flush=True)
    i = 0
    while True:
        i += 1
        one_turn(store, sid, f"run{run}", i, ack=True)


def concurrent_worker(db: str, name: str, n: int, shared_sid: str) -> int:
    try:
        store = Store.open(db)
        ex = sample_explainer(f"{name}.md")
        h = store.upsert_explainer(ex)
        sid = store.create_session(h, ex.path, "offline")
        print("READY", flush=True)
        sys.stdin.readline()  # wait for "go" so both processes write at the same time
        for i in range(1, n + 1):
            one_turn(store, sid, name, i, ack=False)
            store.add_message(shared_sid, "reader", f"{name} shared {i}")
        store.set_status(sid, "finished")
        store.close()
    except Exception as e:  # report, so the parent can show what went wrong
        print(f"ERROR {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
        return 1
    print("DONE", flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "kill":
        kill_worker(argv[1], argv[2])
        return 0
    if mode == "concurrent":
        return concurrent_worker(argv[1], argv[2], int(argv[3]), argv[4])
    if mode == "open":
        Store.open(argv[1]).close()
        print("OPENED", flush=True)
        return 0
    print(f"unknown mode {mode!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
