"""Benchmark the reader app (issue 5). Run: .venv/bin/python bench/bench_app.py [--quick]

Reports:
1. time to first paint of the real `tutor open explainers/sqlite-wal.md --offline`, in a
   real pseudo-terminal, next to a bare Textual hello-world            (target <= 0.6 s)
2. resume time of a generated 1,000-message session: TutorSession.open + app mounted
   and painted (in-process, headless)                                    (target <= 1 s)
3. added delay from a streamed token arriving from the SDK to it being painted, on the
   real ClaudeBackend against tests/fake_api.py; next to the raw SDK stream's own timing
                                                                         (target <= 20 ms)
4. CPU time of the app process while a 4,000-token reply streams at 100 tokens/s, and
   the keystroke latency while it streams (the fake server runs in another process so
   its CPU is not counted). --quick streams 1,000 tokens instead.

Instrumentation is by subclassing in this script only: a backend subclass timestamps each
text delta as the SDK hands it over, and an app subclass timestamps each paint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"
BIN = Path(sys.executable).parent
QUICK = "--quick" in sys.argv

HELLO = """
from textual.app import App
from textual.widgets import Static
class Hello(App):
    def compose(self):
        yield Static("Hello, world")
Hello().run()
"""


def ms(x: float) -> str:
    return f"{x * 1000:7.1f} ms"


# ------------------------------------------------------------------ 1. first paint
def first_paint(argv: list[str], marker: bytes, env: dict[str, str], timeout: float = 20.0) -> float:
    """Spawn argv in a 120x40 pty; seconds until `marker` appears in its output."""
    import fcntl
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # child
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.execvpe(argv[0], argv, env)
    start = time.perf_counter()
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    buf = b""
    found = None
    try:
        while time.perf_counter() - start < timeout:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                if marker in buf:
                    found = time.perf_counter() - start
                    break
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    if found is None:
        raise SystemExit(f"first paint: {marker!r} never appeared; output tail: {buf[-400:]!r}")
    return found


def bench_first_paint(runs: int) -> None:
    home = tempfile.mkdtemp(prefix="tutor-bench-")
    env = {**os.environ, "TUTOR_HOME": home, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("ANTHROPIC_API_KEY", None)
    hello_py = Path(home) / "hello.py"
    hello_py.write_text(HELLO)
    hello, tutor = [], []
    for _i in range(runs):
        hello.append(first_paint([sys.executable, str(hello_py)], b"Hello, world", env))
        tutor.append(first_paint([str(BIN / "tutor"), "open", str(SAMPLE), "--offline", "--new"], b"write-ahead log works", env))
    h, t = statistics.median(hello), statistics.median(tutor)
    print(f"1. first paint (real process in a 120x40 pty, median of {runs})")
    print(f"   bare Textual hello-world     {ms(h)}")
    print(f"   tutor open --offline         {ms(t)}   ratio {t / h:.2f}x   target <= 600 ms: {'OK' if t <= 0.6 else 'MISSED'}")


# ------------------------------------------------------------------ 2. resume
def make_long_session(db: Path, n: int) -> str:
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.store import Store

    explainer = load(SAMPLE)
    store = Store.open(db)
    s = TutorSession.open(explainer, store, new=True)
    body = (
        "Here is how it works: SQLite appends **changed pages** to the `-wal` file, and a reader "
        "looks up the newest copy of each page in the wal-index.\n\n- first point\n- second point\n"
    )
    for i in range(n // 2):
        store.add_message(s.id, "reader", f"question {i}: what happens to page {i}?")
        store.add_message(s.id, "tutor", f"Answer {i}. {body}")
    asyncio.run(s.aclose()) if hasattr(s, "aclose") else None
    store.close()
    return s.id


async def _resume_once(db: Path) -> tuple[float, float]:
    from tutor.app.app import TutorApp
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.store import Store

    t0 = time.perf_counter()
    session = TutorSession.open(load(SAMPLE), Store.open(db))
    t_open = time.perf_counter() - t0
    app = TutorApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.pane.children and app.is_running):
            await asyncio.sleep(0.005)
        await pilot.pause()  # one refresh: painted and taking keys
        t_ready = time.perf_counter() - t0
        assert session.resumed
        await pilot.press("ctrl+q")
    return t_open, t_ready


def bench_resume(runs: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    db = tmp / "long.db"
    make_long_session(db, 1000)
    results = [asyncio.run(_resume_once(db)) for _ in range(runs)]
    t_open = statistics.median(r[0] for r in results)
    t_ready = statistics.median(r[1] for r in results)
    print(f"2. resume a 1,000-message session (median of {runs})")
    print(f"   TutorSession.open            {ms(t_open)}")
    print(f"   open + app painted, keys live {ms(t_ready)}   target <= 1000 ms: {'OK' if t_ready <= 1.0 else 'MISSED'}")


# ------------------------------------------------------------------ 3/4. streaming
@contextlib.contextmanager
def server_process(n_tokens: int, delay: float) -> Iterator[str]:
    """The fake API in its own process, answering every request with n_tokens words; yields its URL."""
    code = f"""
import sys, time
sys.path.insert(0, {str(ROOT / 'tests')!r})
from fake_api import FakeAPI, text
# a reply in paragraphs of 50 tokens, the way a model writes (one 24 KB paragraph is not realistic)
words = ["t%04d" % i + ("\\n\\n" if i % 50 == 49 else " ") for i in range({n_tokens})]
api = FakeAPI()
calls = []
def handler(body):
    calls.append(1)
    if len(calls) == 1:  # the opening turn: short, so imports and setup are not measured
        return text("Hello. Ask me anything.")
    return text(chunks=words, delay={delay})
api.handler = handler
api.start()
print(api.url, flush=True)
sys.stdin.read()
api.stop()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()  # the server stops at end of input
        proc.wait(5)


async def raw_sdk(url: str, warmup: bool = False) -> list[tuple[str, float]]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0)
    if warmup:  # the server's first answer is the short opening
        async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
            async for _ in stream.text_stream:
                pass
    out: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=8000, messages=[{"role": "user", "content": "hi"}]) as stream:
        async for delta in stream.text_stream:
            out.append((delta, time.perf_counter() - t0))
    await client.close()
    return out


def _instrumented(url: str):
    from tutor.app.app import TutorApp
    from tutor.engine.claude import ClaudeBackend

    arrivals: dict[str, float] = {}
    paints: dict[str, float] = {}

    class TimedBackend(ClaudeBackend):
        async def stream(self, *, on_text, **kw):  # type: ignore[override]
            def timed(t: str):
                for w in t.split():
                    arrivals.setdefault(w, time.perf_counter())
                return on_text(t)

            return await super().stream(on_text=timed, **kw)

    class TimedApp(TutorApp):
        def _display(self, screen, renderable):  # type: ignore[override]
            if renderable is not None and arrivals:
                now = time.perf_counter()
                text = renderable.render_segments(self.console) if hasattr(renderable, "render_segments") else ""
                for w in list(arrivals):
                    if w not in paints and w in text:
                        paints[w] = now
            super()._display(screen, renderable)

    backend = TimedBackend(api_key="test-key", base_url=url, max_retries=0)
    return TimedApp, backend, arrivals, paints


async def app_stream(url: str, n_tokens: int, typing: bool) -> dict:
    from tutor.engine.session import TutorSession
    from tutor.explainer import load
    from tutor.store import Store

    TimedApp, backend, arrivals, paints = _instrumented(url)
    tmp = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    session = TutorSession.open(load(SAMPLE), Store.open(tmp / "s.db"), backend=backend, new=True)
    app = TimedApp(session)
    key_lat: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        last = f"t{n_tokens - 1:04d}"
        while app.busy or not app.pane.children:  # the short opening turn (warms up the SDK)
            await asyncio.sleep(0.01)
        arrivals.clear()
        paints.clear()
        app.input.text = "go on"
        await pilot.press("enter")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while last not in arrivals or app.busy:
            if typing and arrivals:
                # Post the key the way the terminal driver does (pilot.press would wait for idle).
                from textual import events

                t = time.perf_counter()
                before = app.input.text
                app.post_message(events.Key("x", "x"))
                while app.input.text == before:
                    await asyncio.sleep(0.001)
                key_lat.append(time.perf_counter() - t)
                await asyncio.sleep(0.1)
            else:
                await asyncio.sleep(0.01)
            if time.perf_counter() - wall0 > n_tokens / 50 + 30:
                raise SystemExit("stream did not finish")
        await pilot.pause(0.2)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await pilot.press("ctrl+q")
    delays = [paints[w] - arrivals[w] for w in arrivals if w in paints]
    return {"delays": delays, "missing": len(arrivals) - len(delays), "cpu": cpu, "wall": wall, "keys": key_lat, "n": len(arrivals)}


def bench_latency() -> None:
    n = 200
    with server_process(n, 0.01) as url:
        raw = asyncio.run(raw_sdk(url, warmup=True))
    with server_process(n, 0.01) as url:
        res = asyncio.run(app_stream(url, n, typing=False))
    gaps = [b[1] - a[1] for a, b in zip(raw, raw[1:])]
    worst = max(range(len(res["delays"])), key=res["delays"].__getitem__) if res["delays"] else -1
    d = sorted(res["delays"])
    p50, p95 = statistics.median(d), d[int(0.95 * (len(d) - 1))]
    print(f"3. token -> screen, {n} tokens at 100/s on the fake server (worst: delta #{worst + 1})")
    print(f"   raw SDK stream: first delta {ms(raw[0][1])}, mean gap between deltas {ms(statistics.mean(gaps))}")
    print(f"   app added delay (SDK delta -> painted): median {ms(p50)}, p95 {ms(p95)}, max {ms(d[-1])}"
          f"  ({res['missing']} of {res['n']} not matched)   target <= 20 ms: {'OK' if p95 <= 0.02 else 'MISSED (p95)' if p50 <= 0.02 else 'MISSED'}")


def bench_cpu() -> None:
    n = 1000 if QUICK else 4000
    with server_process(n, 0.01) as url:
        res = asyncio.run(app_stream(url, n, typing=True))
    k = sorted(res["keys"])
    print(f"4. CPU while a {n}-token reply streams at 100 tokens/s (server in another process)")
    print(f"   wall {res['wall']:.1f} s, app process CPU {res['cpu']:.2f} s = {100 * res['cpu'] / res['wall']:.0f}% of one core")
    if k:
        print(f"   keystroke -> input updated while streaming: median {ms(statistics.median(k))}, max {ms(k[-1])} ({len(k)} keys)")


if __name__ == "__main__":
    from _bytecode import ensure_bytecode

    ensure_bytecode()  # time an installed tutor, not source compiled at start-up
    which = [a for a in sys.argv[1:] if not a.startswith("--")] or ["paint", "resume", "latency", "cpu"]
    if "paint" in which:
        bench_first_paint(3)
    if "resume" in which:
        bench_resume(3)
    if "latency" in which:
        bench_latency()
    if "cpu" in which:
        bench_cpu()
