"""Benchmark saving a long streamed reply (issue 15.2). Run: .venv/bin/python bench/bench_stream.py [MB ...]

Streams one reply of 1, 2.5 and 5 MB (default) through the real TutorSession and the
real ClaudeBackend against tests/fake_api.py (in-process server thread), with the real
store on a file (WAL, synchronous=FULL), and prints the time per MB at each size. Saving
is linear when the time per MB stays the same as the reply grows (ratio ~1). Beside it,
the baseline: the same reply read by the bare SDK stream with no session and no store.

After each run the reply is read back from a fresh connection and compared with what was
streamed, and the words of its last line are searched for, so a fast but wrong save fails.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"
CHUNK = 64  # characters per text_delta from the fake server (a real token is ~4)
MB = 1_000_000

_LINE = "The write-ahead log keeps each change in a separate file until a checkpoint copies it back. "


def reply_text(size: int) -> str:
    paras: list[str] = []
    n = 0
    i = 0
    while n < size:
        p = f"Paragraph {i}: " + _LINE * 6 + "\n\n"
        paras.append(p)
        n += len(p)
        i += 1
    return "".join(paras)[:size - 20] + "\n\nlastwordzebra end."


async def bare_sdk(url: str) -> float:
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(base_url=url, api_key="test-key", max_retries=0)
    t0 = time.perf_counter()
    async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64000, messages=[{"role": "user", "content": "hi"}]) as stream:
        async for _ in stream.text_stream:
            pass
    took = time.perf_counter() - t0
    await client.close()
    return took


async def through_session(url: str, db: Path, expect: str) -> float:
    from tutor.engine.claude import ClaudeBackend, Limits
    from tutor.engine.events import ErrorEvent
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.store import Store

    store = Store.open(db)
    backend = ClaudeBackend(api_key="test-key", base_url=url, max_retries=0,
                            limits=Limits(max_chars=50_000_000, reply=3600.0))  # the store, past the reply cap
    session = TutorSession.open(load(SAMPLE), store, backend=backend, new=True)
    t0 = time.perf_counter()
    async for ev in session.start():
        if isinstance(ev, ErrorEvent):
            raise SystemExit(f"the reply failed: {ev.message}")
    took = time.perf_counter() - t0
    await session.aclose()
    store.close()
    with Store.open(db) as check:
        got = [m for m in check.messages(session.id) if m.role == "tutor"]
        if not got or got[-1].text != expect or not got[-1].complete:
            raise SystemExit("the stored reply differs from the streamed one")
        if not check.search("lastwordzebra"):
            raise SystemExit("search does not find the reply's last word")
        if check.integrity_check() != "ok":
            raise SystemExit("integrity_check failed")
    return took


def main(argv: list[str]) -> int:
    from fake_api import FakeAPI, text

    sizes = [float(a) for a in argv] or [1.0, 2.5, 5.0]
    rows = []
    for mb in sizes:
        body = reply_text(int(mb * MB))
        with FakeAPI() as api:
            api.handler = lambda req, body=body: text(body, chunk_size=CHUNK, output_tokens=len(body) // 4)
            base = asyncio.run(bare_sdk(api.url))
            with tempfile.TemporaryDirectory(prefix="tutor-bench-") as tmp:
                took = asyncio.run(through_session(api.url, Path(tmp) / "s.db", body))
        rows.append((mb, base, took))
        print(f"  {mb:4g} MB: session {took:7.2f} s ({took / mb:6.2f} s/MB)   bare SDK {base:6.2f} s ({base / mb:5.2f} s/MB)"
              f"   session/bare {took / base:4.2f}", flush=True)
    first = rows[0][2] / rows[0][0]
    last = rows[-1][2] / rows[-1][0]
    print(f"time per MB at {rows[-1][0]:g} MB / at {rows[0][0]:g} MB: {last / first:.2f}   target ~1 (linear): "
          f"{'OK' if last / first <= 1.3 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
