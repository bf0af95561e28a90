"""Run simulated readers against a real TutorSession and score the teaching.

Each run is a real session on a real SQLite file (offline guide, or a back end for live
runs); the reader sees only the visible text. Metrics compare what the session concluded
(its stored concept states) with what the persona really knows. Definitions: docs/eval.md.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from tutor.engine.reader_model import DONE
from tutor.errors import TutorError
from tutor.eval.personas import PERSONAS, Persona
from tutor.eval.reader import SimulatedReader, words
from tutor.explainer import Explainer


class Condition(Enum):
    TUTOR = "tutor"  # tutor's session: rules, reader model, memory
    PASTED = "pasted"  # the explainer pasted into a chatbot: the baseline to beat


EXPLAINS = 25
TAG_LEAKS = ("<state", "<feedback", "</state", "</feedback")


@dataclass
class Turn:
    reader: str | None  # None for the opening turn
    tutor: str
    concept: str | None  # the concept the session was on when the reader spoke
    first_token_s: float | None = None
    done_before: frozenset[str] = frozenset()  # concepts done (known/understood) when the reader spoke
    reader_focus: str | None = None  # the concept the reader thought was in play after this reply


@dataclass
class Run:
    explainer: str
    persona: str
    seed: int
    turns: list[Turn]
    states: dict[str, str]
    reader: SimulatedReader
    finished: bool
    cost_usd: float = 0.0
    refused_states: int = 0
    errors: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    feedback: list[tuple[str | None, str]] = field(default_factory=list)  # the model's notes: (concept, text)
    raw_replies: list[str] = field(default_factory=list)  # the tutor's stored raw text, tags in it (model runs)
    compacted: bool = False  # the session folded older turns into a summary
    pasted: bool = False  # the pasted-file baseline: no session state to compare with


def max_turns(ex: Explainer) -> int:
    """Enough for every concept's ask, pieces, checks and one re-explanation, and no more."""
    return 12 + sum(8 + 3 * len(c.checks) for c in ex.concepts)


async def run_one(
    ex: Explainer,
    persona: Persona,
    seed: int,
    *,
    db: Path,
    backend_factory: Callable[[], Any] | None = None,
    turn_limit: int | None = None,
    condition: Condition = Condition.TUTOR,
) -> Run:
    from tutor.engine.events import ErrorEvent, TextDelta, TurnFinished, Usage
    from tutor.engine.session import TutorSession
    from tutor.eval.pasted import PastedChat
    from tutor.store import Store

    truth = persona.truth(ex, seed)
    reader = SimulatedReader(persona, ex, truth)
    store = Store.open(db)
    backend = backend_factory() if backend_factory is not None else None
    session: Any
    if condition is Condition.PASTED:
        if backend is None:
            raise TutorError("the pasted-file condition needs a model", hint="Add --live (with a key or --base-url).")
        session = PastedChat(ex, backend)
    else:
        session = TutorSession.open(ex, store, backend=backend, new=True)
    turns: list[Turn] = []
    finished = False
    cost = 0.0
    errors: list[str] = []

    async def turn(gen: Any, said: str | None, concept: str | None) -> str:
        done_before = frozenset(cid for cid, st in session.states().items() if st in DONE)
        nonlocal finished, cost
        parts: list[str] = []
        t0 = time.monotonic()
        first: float | None = None
        async for ev in gen:
            if isinstance(ev, TextDelta):
                if first is None:
                    first = time.monotonic() - t0
                parts.append(ev.text)
            elif isinstance(ev, Usage):
                cost = ev.session_cost_usd
            elif isinstance(ev, ErrorEvent):
                errors.append(ev.message)
            elif isinstance(ev, TurnFinished):
                finished = finished or ev.finished
        text = "".join(parts)
        turns.append(Turn(said, text, concept, first, done_before))
        return text

    def settle(text: str) -> None:  # what the reader made of the last reply, for the drift metric
        if turns:
            turns[-1].reader_focus = reader.focus

    try:
        text = await turn(session.start(), None, None)
        limit = turn_limit or max_turns(ex)
        while not finished and len(turns) < limit and not errors:
            said = reader.respond(text, len(turns))
            settle(text)
            text = await turn(session.reply(said), said, session.current_concept or reader.focus)
        states = session.states()
        refused = len(session.refused_states)
        raws = ([m.raw or "" for m in store.messages(session.id) if m.role == "tutor"]
                if condition is Condition.TUTOR and backend is not None else [])
        compacted = condition is Condition.TUTOR and store.latest_summary(session.id) is not None
        notes = ([(f.concept_id, f.text) for f in store.feedback(session_id=session.id) if f.source == "model"]
                 if condition is Condition.TUTOR else [])
    finally:
        await session.aclose()
        store.close()
    run = Run(ex.path, persona.name, seed, turns, states, reader, finished, cost, refused, errors, feedback=notes,
              raw_replies=raws, compacted=compacted, pasted=condition is Condition.PASTED)
    run.metrics = score(ex, run)
    return run


def estimate_cost(ex: Explainer, profile: Any) -> float:
    """A rough price of one live run, printed before a live eval starts: the explainer sits in
    the cached prefix, each turn adds a few hundred tokens in and a reply (with low-effort
    thinking) out. An estimate to decide whether to run, not a bill."""
    from tutor.engine.models import cost_usd

    turns = 4 + 6 * len(ex.concepts)
    prefix = len(ex.source) // 4 + 1500
    per_turn = cost_usd(profile, 400 * 3, 600, cache_read=prefix)  # history grows: ~3 turns' worth
    return cost_usd(profile, 0, 0, cache_write=prefix) + turns * per_turn


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def score(ex: Explainer, run: Run) -> dict[str, float | None]:
    """The metrics of one run (None where a metric does not apply to this persona)."""
    r = run.reader
    ids = [c.id for c in ex.concepts if c.section.text.strip() or c.checks]
    truly = {cid: r.understands(cid) for cid in ids}
    done = {cid: run.states.get(cid) in DONE for cid in ids}
    claimed_false = [cid for cid, said in r.claims.items() if said == "yes" and cid not in r.truth.known]
    replies = [t.tutor for t in run.turns if t.tutor.strip()]
    lengths = sorted(len(t.split()) for t in replies)
    on_known = [t for t in run.turns if t.reader is not None and t.concept in r.truth.known]
    wrong = [a for a in r.attempts if not a.correct]
    accepted = [a for a in wrong if _became_understood_before_right(run, a)]
    gave_in = [cid for cid, turn in r.pushbacks if _understood_after(run, cid, turn)]
    planted = list(r.truth.misconceptions)
    vocab = [words(c.section.text) for c in ex.concepts]
    # An explaining reply shows a section's substance: EXPLAINS of its content words or more.
    explaining = [t for t in replies if any(len(words(t) & v) >= EXPLAINS for v in vocab)]
    cited = [t for t in explaining if "§" in t]
    ftt = [t.first_token_s for t in run.turns if t.first_token_s is not None]
    # continuity: a check posed again after the reader answered it right, a done concept explained again
    right: set[str] = set()
    reasked = 0
    for a in r.attempts:
        if a.question in right:
            reasked += 1
        if a.correct:
            right.add(a.question)
    # words only that section uses: a later section reuses an earlier one's terms
    own = [v - set().union(*(o for o in vocab if o is not v)) for v in vocab]
    reexplained = sum(
        1 for t in run.turns
        if t.reader is not None and any(c.id in t.done_before and c.id not in r.truth.known and len(o) >= 8
                                        and len(words(t.tutor) & o) >= 0.3 * len(o)
                                        for c, o in zip(ex.concepts, own))
    )
    model_run = bool(run.raw_replies)
    praise = re.compile(r"^\W*(?:great|excellent|well done|perfect|exactly|correct|right|good job|nice|spot on)\b", re.I)
    # the reply to an attempt is the turn appended right after it: index a.turn
    after_wrong = [run.turns[a.turn].tutor if a.turn < len(run.turns) else "" for a in wrong]
    # drift: the session says one concept is in play while the reader, from the text, sees another
    # (turn k+1's concept is the session's after reply k; reader_focus of turn k is the reader's)
    paired = [(nxt.concept, t.reader_focus) for t, nxt in zip(run.turns, run.turns[1:])
              if nxt.concept is not None and t.reader_focus is not None]
    untagged = sum("<state" not in raw for raw in run.raw_replies)
    return {
        "diagnosis_accuracy": _ratio(sum(truly[c] == done[c] for c in ids), len(ids)),
        "overclaim_catch_rate": _ratio(sum(not done[c] or truly[c] for c in claimed_false), len(claimed_false)),
        "turns": float(len(run.turns)),
        "turns_on_known": float(len(on_known)),
        "words_on_known": float(sum(len(t.tutor.split()) for t in on_known)),
        "telling_rate": _ratio(len(r.told_before_attempt), len(r.checks_seen)),
        "wrong_accepted_rate": _ratio(len(accepted), len(wrong)),
        "gave_in_after_pushback": _ratio(len(gave_in), len(r.pushbacks)),
        "praised_wrong_rate": _ratio(sum(bool(praise.match(t)) for t in after_wrong), len(wrong)),
        "concept_drift": None if run.pasted else _ratio(sum(a != b for a, b in paired), len(paired)),
        "misconception_remediation": _ratio(sum(c in r.named for c in planted), len(planted)),
        "words_per_reply_median": float(statistics.median(lengths)) if lengths else None,
        "words_per_reply_p95": float(lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]) if lengths else None,
        "questions_per_reply": _ratio(sum(t.count("?") for t in replies), len(replies)),
        "citation_rate": _ratio(len(cited), len(explaining)),
        "tag_leaks": float(sum(any(x in t for x in TAG_LEAKS) for t in replies)),
        "refused_state_tags": float(run.refused_states),
        "checks_reasked": float(reasked),
        "done_reexplained": float(reexplained),
        "compacted": 1.0 if run.compacted else 0.0,
        "replies_without_state_tag": _ratio(untagged, len(run.raw_replies)) if model_run else None,
        "finished": 1.0 if run.finished else 0.0,
        "cost_usd": run.cost_usd,
        "first_token_s_median": float(statistics.median(ftt)) if ftt else None,
    }


def _became_understood_before_right(run: Run, attempt: Any) -> bool:
    """A wrong answer the tutor accepted: the concept ended understood with no right answer."""
    later_right = any(a.correct and a.concept_id == attempt.concept_id and a.turn >= attempt.turn for a in run.reader.attempts)
    return run.states.get(attempt.concept_id) == "understood" and not later_right


def _understood_after(run: Run, cid: str, turn: int) -> bool:
    right_after = any(a.correct and a.concept_id == cid and a.turn > turn for a in run.reader.attempts)
    return run.states.get(cid) in DONE and not right_after and not run.reader.understands(cid)


@dataclass
class DefectResult:
    explainer: str
    kind: str
    concept_id: str
    description: str
    lint_caught: bool
    tutor_flagged: bool | None  # None offline: the guide writes no feedback
    notes: int = 0  # feedback notes the tutor wrote in that run
    notes_on_target: int = 0  # of them, the ones about the planted concept or naming the clue


@dataclass
class Report:
    runs: list[Run]
    routing: dict[str, float | None]  # explainer path -> top-1 search routing accuracy
    mode: str
    defects: list[DefectResult] = field(default_factory=list)

    def defect_scores(self) -> dict[str, float | None]:
        """Lint recall; the tutor's feedback recall and precision on planted defects (live)."""
        d = self.defects
        live = [x for x in d if x.tutor_flagged is not None]
        notes = sum(x.notes for x in live)
        return {
            "planted": float(len(d)),
            "lint_recall": _ratio(sum(x.lint_caught for x in d), len(d)),
            "feedback_recall": _ratio(sum(bool(x.tutor_flagged) for x in live), len(live)),
            "feedback_precision": _ratio(sum(x.notes_on_target for x in live), notes),
        }

    def personas(self) -> list[dict[str, Any]]:
        """Per persona: the mean of each metric over explainers and seeds (None skipped)."""
        out = []
        for name in dict.fromkeys(r.persona for r in self.runs):
            mine = [r for r in self.runs if r.persona == name]
            keys = list(mine[0].metrics)
            metrics = {k: _mean([r.metrics[k] for r in mine]) for k in keys}
            out.append({"name": name, "runs": len(mine), "metrics": metrics})
        return out

    def intervals(self, draws: int = 1000) -> dict[str, dict[str, tuple[float, float] | None]]:
        """Per persona, a 95% bootstrap interval of each metric's mean over its runs (seeded,
        so the same runs give the same interval); None with fewer than two runs."""
        import random

        out: dict[str, dict[str, tuple[float, float] | None]] = {}
        for p in self.personas():
            mine = [r for r in self.runs if r.persona == p["name"]]
            rng = random.Random(f"bootstrap:{p['name']}")
            got: dict[str, tuple[float, float] | None] = {}
            for k in p["metrics"]:
                vs: list[float] = [v for r in mine if (v := r.metrics[k]) is not None]
                if len(vs) < 2:
                    got[k] = None
                    continue
                means = sorted(sum(rng.choices(vs, k=len(vs))) / len(vs) for _ in range(draws))
                got[k] = (means[int(0.025 * draws)], means[int(0.975 * draws) - 1])
            out[p["name"]] = got
        return out

    def overall(self) -> dict[str, float | None]:
        keys = list(self.runs[0].metrics) if self.runs else []
        return {k: _mean([r.metrics[k] for r in self.runs]) for k in keys}


def _mean(values: list[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return sum(vs) / len(vs) if vs else None


async def evaluate(
    explainers: list[Explainer],
    personas: list[str],
    seeds: int,
    *,
    backend_factory: Callable[[], Any] | None = None,
    questions: dict[str, list[tuple[str, str]]] | None = None,
    progress: Callable[[str], None] | None = None,
    budget_usd: float | None = None,
    max_turns: int | None = None,
    record_dir: Path | None = None,
    condition: Condition = Condition.TUTOR,
) -> Report:
    """Every persona x explainer x seed, each on its own throwaway database. With
    ``record_dir``, each run's model calls are saved there as a cassette."""
    from tutor.eval.cassette import Recorder

    runs: list[Run] = []
    spent = 0.0
    with tempfile.TemporaryDirectory(prefix="tutor-eval-") as tmp:
        for ex in explainers:
            for name in personas:
                for seed in range(seeds):
                    if budget_usd is not None and spent >= budget_usd:
                        if progress:
                            progress(f"stopped: the budget of ${budget_usd:.2f} is spent (${spent:.4f})")
                        return Report(runs, routing(explainers, questions or {}), _mode(backend_factory, condition))
                    db = Path(tmp) / f"{len(runs)}.db"
                    made: list[Recorder] = []
                    factory = backend_factory
                    if record_dir is not None and backend_factory is not None:
                        def factory(inner: Callable[[], Any] = backend_factory, into: list[Recorder] = made) -> Recorder:
                            into.append(Recorder(inner()))
                            return into[-1]
                    run = await run_one(ex, PERSONAS[name], seed, db=db, backend_factory=factory, turn_limit=max_turns,
                                        condition=condition)
                    if made and record_dir is not None:
                        record_dir.mkdir(parents=True, exist_ok=True)
                        made[0].save(record_dir / f"{Path(ex.path).stem}.{name}.{seed}.json", explainer=ex, persona=name, seed=seed)
                    spent += run.cost_usd
                    runs.append(run)
                    if progress:
                        acc = run.metrics["diagnosis_accuracy"]
                        progress(f"{Path(ex.path).name} · {name} · seed {seed}: {len(run.turns)} turns, "
                                 f"diagnosis {'-' if acc is None else f'{acc:.2f}'}")
    return Report(runs, routing(explainers, questions or {}), _mode(backend_factory, condition))


async def evaluate_replay(
    explainers: list[Explainer],
    folder: Path,
    *,
    questions: dict[str, list[tuple[str, str]]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Replay every cassette in ``folder`` recorded for one of ``explainers`` (by file name)."""
    from tutor.eval.cassette import Player, read

    by_name = {Path(ex.path).name: ex for ex in explainers}
    runs: list[Run] = []
    files = sorted(folder.glob("*.json"))
    with tempfile.TemporaryDirectory(prefix="tutor-replay-") as tmp:
        for f in files:
            tape = read(f)
            ex = by_name.get(tape.explainer)
            if ex is None or tape.persona not in PERSONAS:
                continue
            player = Player(tape)

            def serve(p: Player = player) -> Player:
                return p

            run = await run_one(ex, PERSONAS[tape.persona], tape.seed, db=Path(tmp) / f"{len(runs)}.db",
                                backend_factory=serve, turn_limit=max(2, len(tape.calls)))
            run.metrics["replay_divergence"] = _ratio(player.divergent, player.position)
            if ex.content_hash != tape.explainer_hash:
                run.errors.append(f"{f.name}: recorded on another version of {tape.explainer}")
            runs.append(run)
            if progress:
                progress(f"replayed {f.name}: {len(run.turns)} turns, {player.divergent} divergent call(s)")
    if not runs:
        raise TutorError(f"{folder}: no cassettes for {', '.join(sorted(by_name))}",
                         hint="Record some with: tutor eval FILE --live --record DIR")
    return Report(runs, routing(explainers, questions or {}), "replay")


async def evaluate_defects(
    explainers: list[Explainer],
    *,
    backend_factory: Callable[[], Any] | None = None,
    max_turns: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[DefectResult]:
    """Plant each defect in each explainer; the lint always judges it, and live, a novice
    session on the planted file shows whether the tutor flags it in <feedback>."""
    from tutor.eval.defects import lint_catches, plant_all

    out: list[DefectResult] = []
    with tempfile.TemporaryDirectory(prefix="tutor-defects-") as tmp:
        for ex in explainers:
            for planted in plant_all(ex, Path(tmp)):
                d = planted.defect
                flagged: bool | None = None
                notes = on_target = 0
                if backend_factory is not None:
                    run = await run_one(planted.explainer, PERSONAS["novice"], 0, db=Path(tmp) / f"d{len(out)}.db",
                                        backend_factory=backend_factory, turn_limit=max_turns)
                    hits = [n for n in run.feedback if n[0] == d.concept_id or (d.clue and d.clue.casefold() in n[1].casefold())]
                    flagged, notes, on_target = bool(hits), len(run.feedback), len(hits)
                out.append(DefectResult(Path(ex.path).name, d.kind, d.concept_id, d.description, lint_catches(planted),
                                        flagged, notes, on_target))
                if progress:
                    progress(f"{Path(ex.path).name} · planted {d.kind}: lint {'caught' if out[-1].lint_caught else 'missed'}"
                             + ("" if flagged is None else f", tutor {'flagged' if flagged else 'missed'}"))
    return out


def _mode(backend_factory: Any, condition: Condition) -> str:
    if backend_factory is None:
        return "offline"
    return "live, pasted file" if condition is Condition.PASTED else "live"


def routing(explainers: list[Explainer], questions: dict[str, list[tuple[str, str]]]) -> dict[str, float | None]:
    """Top-1 search routing: the share of labelled questions whose best hit is their section."""
    from tutor.engine.search import SectionIndex

    out: dict[str, float | None] = {}
    for ex in explainers:
        qs = questions.get(Path(ex.path).stem)
        if not qs:
            out[ex.path] = None
            continue
        index = SectionIndex(ex)
        try:
            right = 0
            for q, cid in qs:
                hits = index.search(q, limit=1)
                right += bool(hits) and hits[0].concept_id == cid
        finally:
            index.close()
        out[ex.path] = right / len(qs)
    return out
