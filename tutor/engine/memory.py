"""Memory: the full LOG stays in the store; requests carry a SUMMARY plus recent turns.

Resending a whole long session every turn grows the request without bound and eventually
passes the context window. When what a compaction would drop (``foldable_tokens``) passes
a budget, the older turns (all but the last ``keep_recent``) fold, with the previous
summary, into a new summary by one model call (``store.save_summary``). A request then
carries rules + explainer + summary + reader model + the turns after it, a size that does
not depend on how long the session has run. Nothing is deleted: the log, older summaries
and the export keep everything. Why the default budget is 3,000 tokens and 2 turns are
kept, with the measurements: docs/fake-api.md, "Memory" (bench/bench_tokens.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tutor.engine.models import REPLY_TOKENS, CallKind
from tutor.engine.prompt import (
    CheckAsked,
    ReaderContext,
    Turn,
    build_request,
    cache_control,
    is_progressive,
    parse_summary,
    section_text,
    sections_due,
    sections_in_play,
    with_sections_marker,
)
from tutor.engine.prompt import history_tokens as request_history_tokens
from tutor.explainer import Explainer

if TYPE_CHECKING:
    from tutor.engine.backend import Backend
    from tutor.store import Store

INTERRUPTED = " [this reply was interrupted]"
SUMMARY_MAX_TOKENS = REPLY_TOKENS[CallKind.SUMMARY]
# The summary is resent (cached) every turn and rewritten at every compaction, so its
# size must not grow with the session: the instruction asks for 200 words, the call is
# capped at SUMMARY_MAX_TOKENS, and a longer answer is cut at a line end (truncate_summary).
SUMMARY_MAX_CHARS = 1_600
# Long explainers attach sections to the history, which count in the budget: past the
# budget, compact at the next concept boundary (when the next turn would attach a new
# section anyway, see prompt.sections_due, so carrying it costs nothing extra); past
# HARD_FACTOR x the budget, compact at once. What counts: foldable_tokens.
HARD_FACTOR = 2

SUMMARY_INSTRUCTION = """\
(A note from the tutoring software, not from the reader.) Pause the tutoring for one \
message. The transcript above will be replaced by notes, so write the notes the tutor \
needs to continue this session without it: plain text, at most 200 words, no XML tags, \
exactly these five headings:
Goal: the reader's goal, in a few of their words.
Covered: the concepts discussed so far (by id), in order, and how far each got; the ones \
the reader skipped.
What the reader knows: what they claimed, what a probe or a check verified (say which), \
with brief evidence; the checks asked (concept#number) and whether they were answered right.
Struggled with: wrong answers, confusions and misconceptions, by concept id, and the hint \
step reached.
Open questions: questions the reader asked that are not yet answered, and what the tutor \
was about to do next.
Fold in the earlier summary if there is one: keep what still matters for the rest of the \
session, shorten older detail, and stay within 200 words however long the session has been; \
keep facts, drop pleasantries."""


def approx_tokens(text: str) -> int:
    """About four characters per token: close enough to budget, and needs no tokenizer."""
    return len(text) // 4 + 1


_OUTCOME = {"understood": "right", "known": "right", "shaky": "wrong"}


def reader_context(store: Any, session_id: str, model: Any) -> ReaderContext:
    """The reader model's extras for the next request, from the whole log, not the turns
    after the latest summary: a check asked before a compaction stays listed, so it is not
    asked again. Checks come from the tutor's ``<state ... check="N">`` tags, the goal from
    the reader's first message (the answer to the opening's goal question), the notes sent
    from the feedback table."""
    from tutor.engine.prompt import tagged_checks

    checks: list[CheckAsked] = []
    goal = ""
    for row in store.messages(session_id):
        if row.role == "reader" and not goal and (row.text or "").strip():
            goal = row.text.strip()[:300]
        elif row.role == "tutor" and row.raw:
            for cid, value, n in tagged_checks(row.raw):
                if cid in model:
                    checks.append(CheckAsked(concept=cid, number=n, outcome=_OUTCOME.get(value, "asked")))
    sent = [f"{f.concept_id or 'general'}: {f.text}" for f in store.feedback(session_id=session_id) if f.source != "reader"]
    evidence = {cid: model.entry(cid).evidence for cid in model.order if model.entry(cid).evidence}
    return ReaderContext(evidence=evidence, skipped=sorted(model.skipped), checks=checks, goal=goal, feedback_sent=sent)


def _turn_from_row(row: Any) -> Turn | None:
    if row.role not in ("reader", "tutor"):
        return None
    text = (row.raw if row.role == "tutor" and row.raw else row.text) or ""
    if not text.strip():
        return None
    if row.role == "tutor" and not row.complete:
        text += INTERRUPTED
    return Turn(role=row.role, text=text)


def _history_rows(store: Store, session_id: str) -> tuple[str | None, list[tuple[int, Turn]]]:
    summary = store.latest_summary(session_id)
    after = summary.upto_seq if summary else 0
    rows: list[tuple[int, Turn]] = []
    for row in store.messages(session_id, after_seq=after):
        turn = _turn_from_row(row)
        if turn is not None:
            rows.append((row.seq, turn))
    return (summary.text if summary else None), rows


def recent_history(store: Store, session_id: str) -> tuple[str | None, list[Turn]]:
    """(latest summary text or None, the turns after it, oldest first)."""
    summary, rows = _history_rows(store, session_id)
    return summary, [t for _, t in rows]


def history_tokens(turns: list[Turn]) -> int:
    return sum(approx_tokens(t.text) for t in turns)


def truncate_summary(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    """Cut an over-long summary at the last line end (else word end) before ``limit``.

    Defensive: the instruction asks for 200 words, but a summary that grew anyway would be
    resent every turn and rewritten at every compaction, and fed into the next summary.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    at = cut.rfind("\n")
    if at < limit // 2:
        at = cut.rfind(" ")
    return (cut[:at] if at > 0 else cut).rstrip() + " [...]"


def summary_request(
    explainer: Explainer, previous: str | None, turns: list[Turn], *, last_reply_kept: bool = False
) -> tuple[list[dict], list[dict]]:
    """The summarisation call, laid out like a tutor turn so it reads the cached prefix.

    Same system blocks (rules, explainer, previous summary) and the same verbatim history
    up to the last tutor reply, with one breakpoint on the block before that reply (what
    the previous tutor turn cached), then the instruction.
    The expensive part of the request -- the explainer and the turns being folded -- is
    then billed as cache reads (0.1x) instead of being sent again as fresh input. The
    reader's newest message (and any section it would attach) is left out: it stays
    verbatim after the summary, and sending it here would be uncached input for nothing.
    For the same reason, with ``last_reply_kept`` (the reply is among the turns kept
    verbatim, as with the default keep_recent=2) the reply is left out too, and the
    instruction follows the reader message it answered: ~150 uncached tokens less per
    compaction.
    """
    last_tutor = max((i for i, t in enumerate(turns) if t.role == "tutor"), default=-1)
    history = turns[: last_tutor + 1]
    system, messages = build_request(
        explainer, summary=previous, states={}, current_concept=None, history=history, new_reader_text="x"
    )
    # build_request ended with the new turn's blocks (sections, reader model, text) after
    # the history; replace them with the instruction
    if history:
        messages.pop()  # the history ends with a tutor reply, so the new turn is its own message
    else:
        last = messages[-1]["content"]
        cut = max((i + 1 for i, b in enumerate(last) if "cache_control" in b), default=0)
        del last[cut:]
        if not last:
            messages.pop()
    # One breakpoint, on the last block before the last tutor reply: the previous tutor
    # turn cached everything up to there, so the call reads it all. The reply itself, when
    # it is folded, is sent as plain input (1x) rather than written to a cache entry (1.25x)
    # that no later request will read: the next turn starts from the new summary.
    for m in messages:
        for b in m["content"]:
            b.pop("cache_control", None)
    if last_reply_kept and messages and messages[-1]["role"] == "assistant":
        reply = messages[-1]["content"]
        reply.pop()  # only the last reply: tutor turns in a row share one message
        if not reply:
            messages.pop()
        if messages:
            messages[-1]["content"][-1]["cache_control"] = cache_control("history")
    elif len(messages) >= 2:
        messages[-2]["content"][-1]["cache_control"] = cache_control("history")
    elif messages:
        messages[-1]["content"][-1]["cache_control"] = cache_control("history")
    instruction = {"type": "text", "text": SUMMARY_INSTRUCTION}
    if messages and messages[-1]["role"] == "user":
        messages[-1]["content"].append(instruction)
    else:
        messages.append({"role": "user", "content": [instruction]})
    return system, messages


def foldable_tokens(explainer: Explainer, previous: str | None, turns: list[Turn], due: list[str]) -> int:
    """What the budget counts: the tokens every later turn re-reads that a compaction would
    drop, so the cost of keeping them is weighed against the cost of a summary call.

    The verbatim history, sections attached to it included (``prompt.history_tokens``),
    except the sections due (``prompt.sections_due``): those are paid for whether the next
    message attaches them or the new summary block carries them, and counting them made a
    large section (~2,800 tokens) trigger a summary call over a ~1,000-token history three
    turns after the previous one. Plus the sections the current summary block carries whose
    concept is no longer in progress: they are re-read every turn like the history, and the
    next summary block drops them. Measured (bench/bench_tokens.py, 200 turns of the
    60,000-character spec): each rule lowers the mean cost of turns 101-200 by ~1-3%
    (docs/fake-api.md).
    """
    used = request_history_tokens(explainer, previous, turns)
    if not is_progressive(explainer):
        return used
    used -= sum(approx_tokens(section_text(explainer, c)) for c in due)
    _, carried, _ = parse_summary(previous)
    in_play = sections_in_play(explainer, previous, turns)
    return used + sum(approx_tokens(section_text(explainer, c)) for c in carried if c not in in_play and c not in due)


async def maybe_compact(
    store: Store,
    session_id: str,
    backend: Backend,
    explainer: Explainer,
    *,
    budget_tokens: int = 3000,
    keep_recent: int = 2,
) -> bool:
    """Fold older turns into a new summary when the verbatim history passes the budget.

    The budget counts what the history costs in a request: the turns and, for long
    explainers, the sections attached to them. After a compaction the request is rules +
    explainer (or outline) + summary (+ the section in progress) + the kept turns, a size
    that does not depend on how long the session has run.

    Returns True when a summary was saved. Raises the backend's BackendError if the
    summarisation call fails; nothing is lost then (the log is intact, the next turn
    simply carries the longer history and tries again).
    """
    previous, rows = _history_rows(store, session_id)
    turns = [t for _, t in rows]
    if len(rows) <= keep_recent:
        return False
    due = sections_due(explainer, previous, turns)
    used = foldable_tokens(explainer, previous, turns, due)
    if used <= budget_tokens:
        return False
    if is_progressive(explainer) and used <= budget_tokens * HARD_FACTOR and not due:
        return False
    fold = rows[: len(rows) - keep_recent] if keep_recent > 0 else rows
    kept = [t for _, t in rows[len(fold) :]]
    upto_seq = fold[-1][0]
    # The summary is written from the whole verbatim history up to the last tutor reply
    # (it is cached anyway), that reply left out when it is one of the last ``keep_recent``
    # turns, which stay verbatim after the summary.
    last_tutor = max((i for i, t in enumerate(turns) if t.role == "tutor"), default=-1)
    system, messages = summary_request(explainer, previous, turns, last_reply_kept=last_tutor >= len(turns) - len(kept))
    result = await backend.complete(system=system, messages=messages, kind=CallKind.SUMMARY)
    text = truncate_summary(result.text)
    if not text:
        return False
    if is_progressive(explainer):
        # Carry the section in progress; the kept turns up to the last tutor reply were
        # answered already, so replaying them attaches nothing (prompt.parse_summary). With
        # none in progress (the tutor marked a concept understood without naming the next),
        # carry the section due instead: the quiet replay would not attach it.
        quiet = max((i + 1 for i, t in enumerate(kept) if t.role == "tutor"), default=0)
        carried = sections_in_play(explainer, previous, turns) or due[:1]
        text = with_sections_marker(text, carried, quiet)
    store.add_usage(session_id, result)
    store.save_summary(session_id, upto_seq, text)
    return True
