"""Token benchmark: what a tutoring session costs in billed input tokens.

    .venv/bin/python bench/bench_tokens.py              # 30 turns: ours vs naive vs llm; then 200 turns
    .venv/bin/python bench/bench_tokens.py --no-llm     # skip the llm comparison (needs bench/out/llm-venv)
    .venv/bin/python bench/bench_tokens.py --turns 30 --long 200

All three approaches run in the same process against the fake Messages API
(tests/fake_api.py), which reports cache usage by the documented prefix rules
(docs/fake-api.md). Billed input = input + 1.25 x 5-minute cache writes + 2 x 1-hour cache
writes + 0.1 x cache reads. The paced-reader section replays the session with a reader's
think times (``think_times``) and compares cache lifetimes (prompt.CACHE_TTL).

- ours:  tutor's real TutorSession + ClaudeBackend (rules + explainer cached, history
         cached, reader model in the newest turn, LOG+SUMMARY compaction).
- naive: the whole file and the whole history sent every turn, no cache_control.
- llm:   Simon Willison's `llm` CLI with llm-anthropic, `llm -f FILE` then
         `llm -c -o cache 1` for each later turn, pointed at the same fake server through
         ANTHROPIC_BASE_URL. Installed with:
         python -m venv bench/out/llm-venv && bench/out/llm-venv/bin/pip install llm llm-anthropic

Every approach makes the same number of model calls: an opening turn, then one per
reader message, with the same scripted reader texts and the same generated replies.
The document is /work/shared/corpus/commonmark-spec.md cut to ~60,000 characters.

Targets (issue 4): ours >= 7.5x cheaper than naive and below llm with caching; the
per-turn cost at turn 200 at most 1.2x that at turn 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_api import FakeAPI, billed_input  # noqa: E402

BUDGET: tuple[int, int] | None = None  # --budget/--keep override the session's memory settings
CORPUS_DOC = ROOT.parent / "shared" / "corpus" / "commonmark-spec.md"
DOC_CHARS = 60_000
MODEL = "claude-sonnet-5-5"
LLM_MODEL = "claude-sonnet-4.5"  # an id llm-anthropic knows; the fake server does not care

READER_SCRIPT = [
    "yes",
    "no, I don't know that",
    "not sure, can you explain?",
    "I think it means the parser treats the line as a paragraph continuation",
    "what happens with tabs inside a list item?",
    "ok, that makes sense",
    "I already know about block quotes",
    "can you give me an example?",
    "so a blank line ends it?",
    "why does the spec need so many examples?",
    "no",
    "yes, go on",
    "I'm confused about lazy continuation lines",
    "right, the paragraph keeps going",
    "explain backslash escapes again please",
    "what about entity references inside code spans?",
    "got it",
    "is indentation of four spaces always a code block?",
    "I think it is a code block unless it is inside a list",
    "next concept please",
]


def reader_text(i: int) -> str:
    return READER_SCRIPT[i % len(READER_SCRIPT)] + ("" if i < len(READER_SCRIPT) else f" (turn {i + 1})")


# -- the document -----------------------------------------------------------------------


def make_document() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "doc-60k.md"
    if CORPUS_DOC.exists():
        src = CORPUS_DOC.read_text(encoding="utf-8")
        cut = src[:DOC_CHARS]
        cut = cut[: cut.rfind("\n") + 1]
    else:  # generated stand-in: headings and paragraphs of plausible prose
        parts, n = [], 0
        while sum(map(len, parts)) < DOC_CHARS - 2000:
            n += 1
            parts.append(f"## Topic {n}\n\n" + (f"A paragraph about topic {n}, with enough words to read like prose. ") * 20 + "\n\n")
        cut = "# Generated document\n\n" + "".join(parts)
    path.write_text(cut, encoding="utf-8")
    return path


# -- the fake model's replies ---------------------------------------------------------------


def last_user_text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if isinstance(b, dict))


class Replies:
    """Deterministic tutor replies (~600 characters, with a state tag) and summaries."""

    def __init__(self, concept_ids: list[str]):
        self.ids = concept_ids
        self.n = 0

    def __call__(self, body: dict) -> str:
        last = last_user_text(body)
        if "Pause the tutoring for one message" in last:
            # a summary that moves with the session (a constant one would be a cache hit at
            # every compaction, which a real model's summary never is) and grows with what
            # was covered, up to every concept: the instruction bounds it to 200 words
            done = self.ids[: min(len(self.ids), self.n // 3)]
            now = self.ids[self.n // 3 % len(self.ids)]
            return (
                f"Covered (after {self.n} tutor replies): " + (", ".join(done) or "nothing yet") + f"; now on {now}.\n"
                "What the reader knows: " + (", ".join(done) or "nothing yet") + " (answered checks correctly).\n"
                "Struggled with: lazy continuation lines; tabs in list items.\n"
                "Open questions: whether four-space indentation is always a code block. "
                f"Next: finish {now} and check it."
            )
        # a tutor spends three replies on a concept: ask, explain, check; then moves on
        self.n += 1
        k = (self.n - 1) // 3 % len(self.ids)
        cid = self.ids[k]
        step = (self.n - 1) % 3
        tags = f'<state concept="{cid}" value="{("asked", "explained", "understood")[step]}">reply {self.n}</state>'
        if step == 2 and k + 1 < len(self.ids):
            tags += f' <state concept="{self.ids[k + 1]}" value="asked">moving on</state>'
        return (
            f"Good question. The spec's section on {cid} answers it: a line's meaning depends on the "
            "block it continues, so the parser first matches the open blocks, then decides whether the "
            "rest starts a new block or continues a paragraph. Try this: what would a line with four "
            "leading spaces be right after a paragraph? Think about whether it can interrupt the "
            "paragraph before you answer, and tell me your reasoning in a sentence or two. " + tags
        )


# -- ours -----------------------------------------------------------------------------------


async def run_ours(doc: Path, turns: int, *, whole: bool = False, pace: list[float] | None = None,
                   ttl: dict[str, str] | None = None) -> dict:
    """Our session; ``whole`` forces the whole-explainer layout (no outline + sections);
    ``pace`` is the reader's think time in seconds before each reader turn; ``ttl`` replaces
    prompt.CACHE_TTL (the cache lifetime of each breakpoint) for this run."""
    import tutor.engine.prompt as prompt

    saved = prompt.FULL_EXPLAINER_MAX_TOKENS, prompt.CACHE_TTL
    if whole:
        prompt.FULL_EXPLAINER_MAX_TOKENS = 10**9
    if ttl is not None:
        prompt.CACHE_TTL = ttl
    try:
        return await _run_ours(doc, turns, pace)
    finally:
        prompt.FULL_EXPLAINER_MAX_TOKENS, prompt.CACHE_TTL = saved


async def _run_ours(doc: Path, turns: int, pace: list[float] | None = None, *, effort: str | None = None) -> dict:
    from tutor.engine.claude import ClaudeBackend
    from tutor.explainer import load
    from tutor.store import Store

    explainer = load(doc)
    per_turn: list[float] = []
    sizes: list[int] = []
    compacted: list[bool] = []
    first_token: list[float] = []
    with FakeAPI(thinking=effort is not None) as api, tempfile.TemporaryDirectory() as tmp:
        api.handler = Replies([c.id for c in explainer.concepts])
        api.thinking_seconds_per_ktok = THINKING_PACE
        store = Store.open(Path(tmp) / "bench.db")
        from tutor.engine.models import Effort

        backend = ClaudeBackend(MODEL, api_key="test-key", base_url=api.url, max_retries=0, timeout=30,
                                effort=Effort.parse(effort))
        driver = "TutorSession"
        try:
            from tutor.engine.session import TutorSession

            session = TutorSession.open(explainer, store, backend=backend, new=True)
            if BUDGET:
                session.memory_budget_tokens, session.memory_keep_recent = BUDGET

            async def turn(i: int) -> None:
                t0 = time.perf_counter()
                seen = False
                it = session.start() if i == 0 else session.reply(reader_text(i - 1))
                async for ev in it:
                    if getattr(ev, "kind", "") == "text" and not seen:
                        seen = True
                        first_token.append(time.perf_counter() - t0)
                    if getattr(ev, "kind", "") == "error":
                        raise RuntimeError(f"turn {i}: {ev.message}")
        except ImportError:
            driver = "build_request + maybe_compact (TutorSession not available)"
            turn = await _direct_driver(explainer, store, backend)
        for i in range(turns + 1):
            if pace and i > 0:
                api.advance(pace[i - 1])  # the reader reads and thinks before answering
            before = len(api.requests)
            await turn(i)
            new = api.requests[before:]
            per_turn.append(sum(billed_input(r.usage) for r in new))
            sizes.append(len(json.dumps(new[-1].body)))
            compacted.append(len(new) > 1)  # a summary call came before the turn's own call
        summaries = len(store.summaries(session.id)) if driver == "TutorSession" else None
        row = store.get_session(session.id) if driver == "TutorSession" else None
        tutor_msgs = [m for m in store.messages(session.id) if m.role == "tutor"] if driver == "TutorSession" else []
        await backend.aclose()
        store.close()
        return {"driver": driver, "per_turn": per_turn, "sizes": sizes, "compacted": compacted,
                "usage": api.total_usage(), "calls": len(api.requests), "summaries": summaries,
                "cost_usd": row.cost_usd if row else 0.0,
                "output_tokens": sum(r.output_tokens for r in api.requests),
                "thinking_tokens": sum(r.thinking_tokens for r in api.requests),
                "bad_replies": sum(1 for m in tutor_msgs if not m.complete or not m.text.strip()),
                "first_token": first_token}


async def _direct_driver(explainer, store, backend):
    """Fallback when the session module is missing: the same calls the session makes."""
    from tutor.engine.memory import maybe_compact, recent_history
    from tutor.engine.prompt import build_request

    sid = store.create_session(store.upsert_explainer(explainer), explainer.path, backend.name)

    async def turn(i: int) -> None:
        reader = "" if i == 0 else reader_text(i - 1)
        if reader:
            store.add_message(sid, "reader", reader)
        await maybe_compact(store, sid, backend, explainer)
        summary, history = recent_history(store, sid)
        if reader:
            history = history[:-1]
        system, messages = build_request(explainer, summary=summary, states={}, current_concept=None, history=history, new_reader_text=reader)
        r = await backend.stream(system=system, messages=messages)
        store.add_message(sid, "tutor", r.text, raw=r.text)

    return turn


# -- naive ----------------------------------------------------------------------------------


async def run_naive(doc: Path, turns: int, concept_ids: list[str]) -> dict:
    import anthropic

    per_turn: list[float] = []
    with FakeAPI() as api:
        api.handler = Replies(concept_ids)
        client = anthropic.AsyncAnthropic(api_key="test-key", base_url=api.url, max_retries=0)
        from tutor.engine.prompt import explainer_text, rules_text
        from tutor.explainer import load

        # the same tutor rules and whole-explainer text ours would send, as one plain string
        system = rules_text() + "\n\n" + explainer_text(load(doc))
        history: list[dict] = []
        for i in range(turns + 1):
            reader = "(The reader has just opened the document.)" if i == 0 else reader_text(i - 1)
            messages = history + [{"role": "user", "content": reader}]
            before = len(api.requests)
            reply = await client.messages.create(model=MODEL, max_tokens=1024, system=system, messages=messages)
            per_turn.append(sum(billed_input(r.usage) for r in api.requests[before:]))
            history = messages + [{"role": "assistant", "content": reply.content[0].text}]
        await client.close()
        return {"per_turn": per_turn, "usage": api.total_usage(), "calls": len(api.requests)}


# -- llm ------------------------------------------------------------------------------------


def run_llm(doc: Path, turns: int, concept_ids: list[str]) -> dict | str:
    exe = OUT / "llm-venv" / "bin" / "llm"
    if not exe.exists():
        return ("not run: llm is not installed (python -m venv bench/out/llm-venv && "
                "bench/out/llm-venv/bin/pip install llm llm-anthropic)")
    home = OUT / "llm-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    per_turn: list[float] = []
    with FakeAPI() as api:
        api.handler = Replies(concept_ids)
        env = dict(os.environ, LLM_USER_PATH=str(home), ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=api.url)
        for i in range(turns + 1):
            if i == 0:
                cmd = [str(exe), "-m", LLM_MODEL, "-f", str(doc), "You are a tutor for this document. Teach it to me."]
            else:
                cmd = [str(exe), "-c", "-o", "cache", "1", reader_text(i - 1)]
            before = len(api.requests)
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                return f"not run: llm failed at turn {i}: {r.stderr.strip()[-300:]}"
            per_turn.append(sum(billed_input(q.usage) for q in api.requests[before:]))
            if i % 10 == 0:
                print(f"  llm turn {i}/{turns}", flush=True)
        return {"per_turn": per_turn, "usage": api.total_usage(), "calls": len(api.requests)}


# -- report ---------------------------------------------------------------------------------


def fmt(n: float) -> str:
    return f"{n:,.0f}"


def window(values: list[float], turn: int, width: int = 10) -> float:
    """Mean per-turn cost over the `width` turns ending at `turn` (turn 0 is the opening)."""
    lo = max(1, turn - width + 1)
    vals = values[lo : turn + 1]
    return sum(vals) / len(vals)


def measures(pt: list[float], end: int) -> dict[str, float]:
    """The three readings of "turn `end` costs at most 1.2x turn 10", as ratios.

    exact: that turn against turn 10; means: the 10 turns up to each; long: the mean of the
    second half of the session against turns 1-10 (this one does not depend on where a
    compaction happens to fall).
    """
    half = end // 2
    return {
        "exact": pt[end] / pt[10],
        "means": window(pt, end) / window(pt, 10),
        "long": sum(pt[half + 1 : end + 1]) / (end - half) / window(pt, 10),
    }


def verdict(m: dict[str, float]) -> str:
    return "; ".join(f"{k} {v:.2f}x {'OK' if v <= 1.2 else 'MISSED'}" for k, v in m.items())


def long_report(doc: Path, end: int) -> None:
    global BUDGET
    half = end // 2
    print(f"\n{end}-turn sessions (per-turn billed input, the summary call of a compaction counted in the turn it")
    print("precedes). 'progressive' is what tutor does for this document (outline + the sections being")
    print("taught); 'whole' forces the whole explainer into every request, for reference.")
    runs = {}
    for name, whole in (("progressive", False), ("whole", True)):
        t0 = time.perf_counter()
        runs[name] = r = asyncio.run(run_ours(doc, end, whole=whole))
        print(f"  {name:<12} {r['calls']} calls, {r['summaries']} summaries, billed input {fmt(billed_input(r['usage']))}, "
              f"largest request after turn 30: {max(r['sizes'][30:]):,} bytes ({time.perf_counter() - t0:.1f} s)")
    sample = ROOT / "explainers" / "sqlite-wal.md"
    if sample.exists():  # a normal-sized explainer: the whole file goes in every request
        runs[sample.name] = r = asyncio.run(run_ours(sample, end))
        print(f"  {sample.name:<12} ({len(sample.read_text()):,} characters, whole) {r['calls']} calls, {r['summaries']} summaries, "
              f"billed input {fmt(billed_input(r['usage']))}")
    names = list(runs)
    print("\n  " + f"{'turn':>9}" + "".join(f" {n[:12]:>12} {'mean of 10':>10}" for n in names))
    for t in sorted({t for t in (1, 10, 30, 50, 100, 150, 200, end) if t <= end}):
        row = "".join(f" {fmt(runs[n]['per_turn'][t]):>12} {fmt(window(runs[n]['per_turn'], t)):>10}" for n in names)
        print(f"  {t:>9}" + row)
    print(f"  {'1-10':>9}" + "".join(f" {fmt(window(runs[n]['per_turn'], 10)):>12} {'':>10}" for n in names))
    print(f"  {f'{half + 1}-{end}':>9}" + "".join(
        f" {fmt(sum(runs[n]['per_turn'][half + 1:]) / (end - half)):>12} {'':>10}" for n in names))
    print("  compactions in turns 1-10: " + ", ".join(f"{n} {sum(runs[n]['compacted'][1:11])}" for n in names))
    print(f"\ntarget: the per-turn cost at turn {end} at most 1.2x that at turn 10 (exact turn; 10-turn means;")
    print(f"mean of turns {half + 1}-{end} vs 1-10):")
    for n in names:
        print(f"  {n:<14} {verdict(measures(runs[n]['per_turn'], end))}")
    # Turns 1-10 above include any compaction that falls in them. For reference, the same
    # first ten turns with compaction switched off (what a session that never folds pays).
    saved, BUDGET = BUDGET, (10**9, 2)
    try:
        ref = asyncio.run(run_ours(doc, 10))["per_turn"]
    finally:
        BUDGET = saved
    p = runs["progressive"]["per_turn"]
    late = sum(p[half + 1 :]) / (end - half)
    print(f"  reference: progressive turns 1-10 with no compaction at all average {fmt(window(ref, 10))}; "
          f"turns {half + 1}-{end} average {fmt(late)} = {late / window(ref, 10):.2f}x that; "
          f"whole pays {fmt(window(runs['whole']['per_turn'], 10))} per turn at turns 1-10")


# -- a reader who reads and thinks ------------------------------------------------------------

PACE_SEEDS = (1, 2, 3, 4, 5)
LONG_PAUSE_P = 0.1
FIVE_MIN = {"stable": "5m", "summary": "5m", "history": "5m", "sections": "5m"}
TTL_VARIANTS = {  # values may only go from 1h to 5m in prompt order (the API's rule)
    "a: all 5m": FIVE_MIN,
    "b: stable 1h": {**FIVE_MIN, "stable": "1h"},
    "c: stable+summary 1h": {**FIVE_MIN, "stable": "1h", "summary": "1h"},
    "d: all 1h": {k: "1h" for k in FIVE_MIN},
}


def think_times(n: int, seed: int) -> list[float]:
    """Seconds between a tutor reply and the reader's next message, deterministic per seed.

    With probability 0.9 a reading-and-typing time, triangular on 20 s - 3 min with its mode
    at 40 s (mean 80 s: a ~600-character reply read and a short answer typed); with
    probability 0.1 a pause, uniform on 6-25 min (re-reading the section, a call, a coffee).
    A 30-turn session then lasts about an hour, with about three pauses past the 5-minute TTL.
    """
    rng = random.Random(seed)
    return [rng.uniform(360, 1500) if rng.random() < LONG_PAUSE_P else rng.triangular(20, 180, 40) for _ in range(n)]


def paced_report(doc: Path, turns: int, naive_billed: float) -> None:
    print(f"\nPaced reader: the same {turns}-turn session with think times between turns ({len(PACE_SEEDS)} seeds;")
    print("mostly 20 s-3 min, 1 in 10 a pause of 6-25 min; the fake server's clock is moved forward, nothing sleeps).")
    for seed in PACE_SEEDS:
        t = think_times(turns, seed)
        print(f"  seed {seed}: {sum(t) / 60:.0f} min in all, {sum(x > 300 for x in t)} pauses over 5 min "
              f"({', '.join(f'{x / 60:.0f}' for x in t if x > 300)} min)")
    sample = ROOT / "explainers" / "sqlite-wal.md"
    docs = [(f"{doc.name} (progressive)", doc, naive_billed)]
    if sample.exists():
        ids = [c.id for c in __import__("tutor.explainer", fromlist=["load"]).load(sample).concepts]
        docs.append((f"{sample.name} (whole)", sample, billed_input(asyncio.run(run_naive(sample, turns, ids))["usage"])))
    for title, path, naive in docs:
        print(f"\n  {title}: billed input, opening + {turns} turns; naive (no cache, pauses cost it nothing) {fmt(naive)}")
        print(f"  {'ttl policy':<22} {'unpaced':>9} {'paced mean':>11} {'min':>9} {'max':>9} {'vs a paced':>10} "
              f"{'naive/unpaced':>13} {'naive/paced':>11}")
        base = None
        for name, ttl in TTL_VARIANTS.items():
            unpaced = billed_input(asyncio.run(run_ours(path, turns, ttl=ttl))["usage"])
            paced = [billed_input(asyncio.run(run_ours(path, turns, pace=think_times(turns, seed), ttl=ttl))["usage"])
                     for seed in PACE_SEEDS]
            mean = sum(paced) / len(paced)
            base = base or mean
            print(f"  {name:<22} {fmt(unpaced):>9} {fmt(mean):>11} {fmt(min(paced)):>9} {fmt(max(paced)):>9} "
                  f"{mean / base:>9.2f}x {naive / unpaced:>12.2f}x {naive / mean:>10.2f}x")
    import tutor.engine.prompt as prompt

    chosen = next((n for n, t in TTL_VARIANTS.items() if t == prompt.CACHE_TTL), str(prompt.CACHE_TTL))
    print(f"  tutor's policy (prompt.CACHE_TTL): {chosen}")


# Seconds per 1,000 thinking tokens in the fake (its stand-in for a model's thinking speed): the
# time-to-first-word column compares efforts with each other, it does not predict Anthropic's.
THINKING_PACE = 0.5
EFFORTS = ("low", "medium", "high")


def effort_report(doc: Path, turns: int) -> None:
    """Issue 10: the same session against the thinking fake at each effort, in one run."""
    print(f"\nEffort: opening + {turns} turns on {MODEL} against the fake in thinking mode (thinking billed as output;")
    print(f"the fake thinks {', '.join(f'{e} {n:,}' for e, n in __import__('fake_api').THINKING_TOKENS.items() if e in EFFORTS)} tokens a call, "
          f"{THINKING_PACE:g} s per 1,000 before the first word)")
    print(f"  {'effort':<7} {'$ / session':>11} {'billed input':>13} {'output':>9} {'of it thinking':>15} "
          f"{'first word (median)':>20} {'empty/cut replies':>18}")
    for effort in EFFORTS:
        r = asyncio.run(_run_ours(doc, turns, effort=effort))
        ft = sorted(r["first_token"])
        median = ft[len(ft) // 2] if ft else float("nan")
        print(f"  {effort:<7} {r['cost_usd']:>11.4f} {fmt(billed_input(r['usage'])):>13} {fmt(r['output_tokens']):>9} "
              f"{fmt(r['thinking_tokens']):>15} {median:>18.2f} s {r['bad_replies']:>18}")
    print("  default for tutor turns: low, the cheapest effort with 0 empty or cut replies (docs/models.md)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=30)
    ap.add_argument("--long", type=int, default=200)
    ap.add_argument("--no-llm", action="store_true")
    ap.add_argument("--no-paced", action="store_true", help="skip the paced-reader TTL comparison")
    ap.add_argument("--no-effort", action="store_true", help="skip the effort comparison (issue 10)")
    ap.add_argument("--effort-only", action="store_true", help="only the effort comparison")
    ap.add_argument("--budget", type=int, help="memory budget in tokens (default: the session's)")
    ap.add_argument("--keep", type=int, default=6, help="turns kept verbatim at a compaction")
    args = ap.parse_args(argv)
    global BUDGET
    if args.budget:
        BUDGET = (args.budget, args.keep)

    doc = make_document()
    from tutor.explainer import load

    explainer = load(doc)
    ids = [c.id for c in explainer.concepts]
    print(f"document: {doc.relative_to(ROOT)} ({len(doc.read_text()):,} characters, {len(ids)} concepts)")
    if args.effort_only:
        effort_report(doc, args.turns)
        return 0
    print(f"session: opening turn + {args.turns} reader turns; billed input = input + 1.25 x 5m write + 2 x 1h write + 0.1 x cache read\n")

    t0 = time.perf_counter()
    ours = asyncio.run(run_ours(doc, args.turns))
    t_ours = time.perf_counter() - t0
    naive = asyncio.run(run_naive(doc, args.turns, ids))
    llm = "not run: --no-llm" if args.no_llm else run_llm(doc, args.turns, ids)

    rows = [("ours (tutor)", ours), ("naive (no cache)", naive)]
    if isinstance(llm, dict):
        rows.append(("llm -c -o cache 1", llm))
    print(f"{'approach':<20} {'calls':>5} {'input':>10} {'cache write':>12} {'of it 1h':>9} {'cache read':>12} {'billed input':>13} {'vs ours':>8}")
    ours_billed = billed_input(ours["usage"])
    for name, r in rows:
        u = r["usage"]
        b = billed_input(u)
        print(f"{name:<20} {r['calls']:>5} {fmt(u['input_tokens']):>10} {fmt(u['cache_creation_input_tokens']):>12} "
              f"{fmt(u['cache_creation']['ephemeral_1h_input_tokens']):>9} "
              f"{fmt(u['cache_read_input_tokens']):>12} {fmt(b):>13} {b / ours_billed:>7.2f}x")
    if not isinstance(llm, dict):
        print(f"llm: {llm}")
    print(f"(ours driven through {ours['driver']}; {ours['summaries']} summaries; {t_ours:.1f} s)")

    ratio_naive = billed_input(naive["usage"]) / ours_billed
    print(f"\ntarget: ours >= 7.5x cheaper than naive: {ratio_naive:.2f}x  {'OK' if ratio_naive >= 7.5 else 'MISSED'}")
    if isinstance(llm, dict):
        ratio_llm = billed_input(llm["usage"]) / ours_billed
        print(f"target: ours below llm with caching: llm costs {ratio_llm:.2f}x ours  {'OK' if ratio_llm > 1 else 'MISSED'}")

    if not args.no_effort:
        effort_report(doc, args.turns)
    if not args.no_paced:
        paced_report(doc, args.turns, billed_input(naive["usage"]))
    if args.long:
        long_report(doc, args.long)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
