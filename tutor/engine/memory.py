"""Memory: the full LOG stays in the store; requests carry a SUMMARY plus recent turns.

Why: resending a whole long session every turn grows the request without bound and
eventually passes the context window. When the verbatim history after the latest
summary would pass a token budget, the older turns (all but the last ``keep_recent``)
are folded, together with the previous summary, into a new summary by one model call,
and saved with ``store.save_summary(sid, upto_seq, text)``. A request then carries
rules + explainer + summary + reader model + the turns after ``upto_seq``, so its size
stays bounded however long the session runs. Nothing is deleted: the log, the older
summaries and the transcript export keep everything.

The default budget (4,500 tokens, about 16 short exchanges after the 6 kept turns) is
the cheapest cycle: between compactions each turn re-reads the growing history at 0.1x
(about 0.1 x g x N / 2 per turn for N turns of g tokens), and each compaction costs one
summary call plus rewriting the summary and the kept turns (C, ~3,000-4,500 billed
tokens), so the per-turn overhead 0.05 g N + C / N is smallest near N = sqrt(20 C / g),
about 16 turns of ~200 tokens. bench/bench_tokens.py measures it.
"""

from __future__ import annotations

from typing import Any

from tutor.engine.prompt import Turn, build_request, is_progressive, sections_in_play, with_sections_marker
from tutor.engine.prompt import history_tokens as prompt_history_tokens
from tutor.explainer import Explainer

INTERRUPTED = " [this reply was interrupted]"
SUMMARY_MAX_TOKENS = 700
# Long explainers attach sections to the history (prompt.py); fold when they pass this too,
# so a long session does not pile up every section it ever touched.
SECTIONS_BUDGET_TOKENS = 6_000

SUMMARY_INSTRUCTION = """\
(A note from the tutoring software, not from the reader.) Pause the tutoring for one \
message. The transcript above will be replaced by notes, so write the notes the tutor \
needs to continue this session without it: plain text, at most 250 words, no XML tags, \
exactly these four headings:
Covered: the concepts discussed so far (by id), in order, and how far each got.
What the reader knows: what they said they know or showed they understood, with brief evidence.
Struggled with: wrong answers, confusions and misconceptions, by concept id.
Open questions: questions the reader asked that are not yet answered, and what the tutor \
was about to do next.
Fold in the earlier summary if there is one; keep facts, drop pleasantries."""


def approx_tokens(text: str) -> int:
    """About four characters per token: close enough to budget, and needs no tokenizer."""
    return len(text) // 4 + 1


def _turn_from_row(row: Any) -> Turn | None:
    if row.role not in ("reader", "tutor"):
        return None
    text = (row.raw if row.role == "tutor" and row.raw else row.text) or ""
    if not text.strip():
        return None
    if row.role == "tutor" and not row.complete:
        text += INTERRUPTED
    return Turn(role=row.role, text=text)


def _history_rows(store: Any, session_id: str) -> tuple[str | None, list[tuple[int, Turn]]]:
    summary = store.latest_summary(session_id)
    after = summary.upto_seq if summary else 0
    rows: list[tuple[int, Turn]] = []
    for row in store.messages(session_id, after_seq=after):
        turn = _turn_from_row(row)
        if turn is not None:
            rows.append((row.seq, turn))
    return (summary.text if summary else None), rows


def recent_history(store: Any, session_id: str) -> tuple[str | None, list[Turn]]:
    """(latest summary text or None, the turns after it, oldest first)."""
    summary, rows = _history_rows(store, session_id)
    return summary, [t for _, t in rows]


def history_tokens(turns: list[Turn]) -> int:
    return sum(approx_tokens(t.text) for t in turns)


def summary_request(explainer: Explainer, previous: str | None, turns: list[Turn]) -> tuple[list[dict], list[dict]]:
    """The summarisation call, laid out like a tutor turn so it reads the cached prefix.

    Same system blocks (rules, explainer, previous summary) and the same verbatim history
    with the breakpoint on its last tutor block, then the instruction. The expensive part of the
    request -- the explainer and the turns being folded -- is then billed as cache reads
    (0.1x) instead of being sent again as fresh input.
    """
    system, messages = build_request(
        explainer, summary=previous, states={}, current_concept=None, history=turns, new_reader_text="x"
    )
    # build_request ended with the new turn's blocks (reader model, sections, text) after
    # the history's breakpoint; replace them with the instruction
    last = messages[-1]["content"]
    cut = max((i + 1 for i, b in enumerate(last) if "cache_control" in b), default=0)
    del last[cut:]
    if not last:
        messages.pop()
    # The previous tutor turn cached the prefix up to the last tutor reply; the reader's
    # newest message after it would be written to the cache for nothing (the next turn
    # starts from the new summary), so the breakpoint goes back to the last tutor block.
    assistants = [m for m in messages if m["role"] == "assistant"]
    if assistants:
        for m in messages:
            for b in m["content"]:
                b.pop("cache_control", None)
        assistants[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    instruction = {"type": "text", "text": SUMMARY_INSTRUCTION}
    if messages and messages[-1]["role"] == "user":
        messages[-1]["content"].append(instruction)
    else:
        messages.append({"role": "user", "content": [instruction]})
    return system, messages


async def maybe_compact(
    store: Any,
    session_id: str,
    backend: Any,
    explainer: Explainer,
    *,
    budget_tokens: int = 4500,
    keep_recent: int = 6,
) -> bool:
    """Fold older turns into a new summary when the verbatim history passes the budget.

    Returns True when a summary was saved. Raises the backend's BackendError if the
    summarisation call fails; nothing is lost then (the log is intact, the next turn
    simply carries the longer history and tries again).
    """
    previous, rows = _history_rows(store, session_id)
    turns = [t for _, t in rows]
    if len(rows) <= keep_recent:
        return False
    over_turns = history_tokens(turns) > budget_tokens
    over_sections = is_progressive(explainer) and (
        prompt_history_tokens(explainer, previous, turns) - history_tokens(turns) > SECTIONS_BUDGET_TOKENS
    )
    if not (over_turns or over_sections):
        return False
    fold = rows[: len(rows) - keep_recent] if keep_recent > 0 else rows
    upto_seq = fold[-1][0]
    # The summary is written from the whole verbatim history (it is cached anyway); the
    # last ``keep_recent`` turns also stay verbatim after it.
    system, messages = summary_request(explainer, previous, [t for _, t in rows])
    result = await backend.stream(system=system, messages=messages, max_tokens=SUMMARY_MAX_TOKENS, on_text=None)
    text = result.text.strip()
    if not text:
        return False
    if is_progressive(explainer):
        text = with_sections_marker(text, sections_in_play(explainer, previous, [t for _, t in fold]))
    if hasattr(store, "add_usage"):
        store.add_usage(
            session_id,
            result.input_tokens,
            result.output_tokens,
            result.cache_creation_input_tokens,
            result.cache_read_input_tokens,
            result.cost_usd,
        )
    store.save_summary(session_id, upto_seq, text)
    return True
