"""Feedback benchmark: many readers, one author.

    .venv/bin/python bench/bench_feedback.py [--rows N] [--bundles N]

Builds (under bench/out/feedback/) N bundles holding 100,000 feedback rows in all, plus
per-concept stats for every session, for explainers/sqlite-wal.md: a real export of a real
reader database gives the header and explainer lines, the rest are generated. Then times, as
whole processes (what an author waits for):

    tutor feedback import DIR --for FILE      all bundles into a fresh database
    tutor feedback import DIR --for FILE      again (everything is a duplicate)
    tutor feedback FILE --html PATH           the author's page from 100,000 rows

and prints the bare floor (`python -c pass`) beside them. Targets: import < 30 s, page < 5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.authoring import bundles as fb  # noqa: E402
from tutor.explainer import load  # noqa: E402
from tutor.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out" / "feedback"
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"
TUTOR = [str(ROOT / ".venv" / "bin" / "tutor")]
if not Path(TUTOR[0]).exists():
    TUTOR = [sys.executable, "-m", "tutor"]


def build(rows: int, bundles: int) -> Path:
    shutil.rmtree(OUT, ignore_errors=True)
    inbox = OUT / "inbox"
    inbox.mkdir(parents=True)
    exp = load(SAMPLE)
    with Store.open(OUT / "reader.db") as store:
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, exp.concepts[0].id, "seed", "reader")
        fb.export_bundle(store, exp, OUT / "seed.jsonl")
    head = [ln for ln in (OUT / "seed.jsonl").read_text().splitlines() if json.loads(ln)["type"] in ("header", "explainer")]
    ids = [c.id for c in exp.concepts]
    per = rows // bundles
    for b in range(bundles):
        lines = list(head)
        sessions = [uuid.uuid4().hex for _ in range(max(1, per // 20))]
        for i in range(per):
            key = sessions[i % len(sessions)]
            lines.append(json.dumps({
                "type": "feedback", "uid": uuid.uuid4().hex, "explainer_hash": exp.content_hash,
                "concept_id": ids[i % len(ids)], "text": f"Note {b}-{i}: the example in this section needs a figure.",
                "source": "reader" if i % 3 else "model", "created": "2026-12-01T10:00:00+00:00", "session_key": key,
            }))
        for k, key in enumerate(sessions):
            for j, cid in enumerate(ids):
                lines.append(json.dumps({"type": "stats", "session_key": key, "explainer_hash": exp.content_hash,
                                         "concept_id": cid, "shaky": (k + j) % 4 == 0, "explained": (k + j) % 3}))
        (inbox / f"reader{b:03d}.jsonl").write_text("\n".join(lines) + "\n")
    return inbox


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bundles", type=int, default=20)
    a = ap.parse_args()
    inbox = build(a.rows, a.bundles)
    db = OUT / "author.db"
    floor = timed([sys.executable, "-c", "pass"])
    first = timed([*TUTOR, "feedback", "import", str(inbox), "--for", str(SAMPLE), "--db", str(db)])
    again = timed([*TUTOR, "feedback", "import", str(inbox), "--for", str(SAMPLE), "--db", str(db)])
    page = OUT / "report.html"
    report = timed([*TUTOR, "feedback", str(SAMPLE), "--html", str(page), "--db", str(db)])
    print(f"rows: {a.rows:,} in {a.bundles} bundles ({sum(f.stat().st_size for f in inbox.iterdir()) / 1e6:.1f} MB)")
    print(f"python -c pass           {floor:7.2f} s  (floor)")
    print(f"feedback import (new)    {first:7.2f} s  target < 30 s")
    print(f"feedback import (again)  {again:7.2f} s  (all duplicates)")
    print(f"feedback --html          {report:7.2f} s  target < 5 s  ({page.stat().st_size / 1e6:.1f} MB page)")


if __name__ == "__main__":
    main()
