"""Notes -> explainer: the output checks, the offline compile and the Claude compile.

Authors dump rough notes (Markdown or text files, or folders of them). ``tutor compile
--offline`` turns their headings and paragraphs into a *valid* format-v1 skeleton with
visible DRAFT markers, so an author without a key still starts from a file ``tutor
check`` accepts. ``tutor compile`` with Claude drafts an outline, asks the author about
the gaps one question at a time, then writes the explainer, which is validated by the
loader (one repair round, then a draft + errors file, never a silent failure).

No textual, click or rich here (the terminal side is ``tutor/commands/compile_ui.py``); the
Claude pipeline imports anthropic only through ``tutor.engine.claude`` and only when it runs.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from tutor.engine.events import TokenUsage
from tutor.engine.models import REPLY_TOKENS, CallKind
from tutor.errors import Problem, TutorError
from tutor.files import atomic_write
from tutor.text import plural, utf8_text

if TYPE_CHECKING:
    from tutor.engine.claude import Limits
    from tutor.explainer import Explainer
    from tutor.store import CompileRow, Store

from tutor.authoring.notes import NoteFile, collect_notes, notes_hash
from tutor.authoring.skeleton import ai_preamble, offline_skeleton, yaml_str

GAP_MARKER = "[GAP:"  # the visible marker the Claude compile puts where the notes are silent


# --------------------------------------------------------------------------- output


def check_target(output: str | Path, *, force: bool, notes: list[NoteFile] | None = None) -> Path:
    """Refuse to overwrite an existing file (without --force) or one of the notes, before any work."""
    out = Path(output)
    if out.is_dir():
        raise TutorError(f"{out}: is a folder", hint="give a file name: -o explainers/NAME.md")
    if str(output).endswith(("/", os.sep)):  # Path() drops the slash that says "a folder"
        raise TutorError(f"{output}: no such folder", hint="create it first, or give a file name: -o explainers/NAME.md")
    if notes and any(Path(n.path).resolve() == out.resolve() for n in notes):
        raise TutorError(f"{out}: is one of the notes; choose another output file")
    if out.exists() and not force:
        raise TutorError(f"{out}: already exists", hint="use --force to overwrite it, or choose another -o")
    if not out.parent.exists():
        raise TutorError(f"{out.parent}: no such folder", hint="create it first, or choose another -o")
    return out


def validate_text(text: str, name: str) -> tuple[Explainer | None, list[Problem]]:
    """Run the real loader on ``text`` as the file ``name``.

    Returns (explainer, []) when valid, else (None, problems) with lines as the loader
    reported them, named ``name``.
    """
    from tutor.errors import ExplainerError
    from tutor.explainer import parse

    try:
        exp = parse(text, name)
    except ExplainerError as e:
        return None, list(e.problems)
    if exp.plain:
        return None, [Problem(name, 1, "no format-v1 front matter (expected a '---' block with 'tutor: 1')")]
    return exp, []


def with_feedback(text: str, address: str) -> str:
    """``text`` with a top-level ``feedback: ADDRESS`` line (after ``tutor:``, else after the
    opening fence) unless its front matter already has one."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return text
    close = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if close is None or any(ln.startswith("feedback:") for ln in lines[1:close]):
        return text
    at = next((i + 1 for i in range(1, close) if lines[i].startswith("tutor:")), 1)
    lines.insert(at, f"feedback: {yaml_str(address)}")
    return "\n".join(lines)


def compile_offline(
    notes_paths: list[str | Path], output: str | Path, *, force: bool = False, title: str | None = None, author: str = ""
) -> tuple[Path, Explainer]:
    """``tutor compile --offline``: write the skeleton and prove it loads."""
    notes = collect_notes(notes_paths)
    out = check_target(output, force=force, notes=notes)
    text = offline_skeleton(notes, title=title, author=author)
    exp, problems = validate_text(text, str(out))
    if problems or exp is None:  # a bug in the skeleton builder: still never lose the work
        draft, errors = save_draft(out, text, problems)
        raise TutorError(
            f"{out}: the skeleton did not validate ({plural(len(problems), 'problem')}); saved {draft} and {errors}",
            hint=str(problems[0]),
        )
    atomic_write(out, text)
    return out, exp


def draft_paths(out: Path) -> tuple[Path, Path]:
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.draft.md"), out.with_name(f"{stem}.errors.txt")


def save_draft(out: Path, text: str, problems: list[Problem]) -> tuple[Path, Path]:
    """Save an invalid result beside the target: NAME.draft.md + NAME.errors.txt."""
    draft, errors = draft_paths(out)
    atomic_write(draft, text)
    lines = [str(Problem(str(draft), p.line, p.message)) for p in problems]
    atomic_write(errors, "\n".join(lines) + "\n")
    return draft, errors


# --------------------------------------------------------------------------- Claude compile

CONTEXT_TOKENS = 200_000  # assumed when the Models API does not say (model_context_tokens)
OUTLINE_MAX_TOKENS = REPLY_TOKENS[CallKind.COMPILE_OUTLINE]
WRITE_MAX_TOKENS = REPLY_TOKENS[CallKind.COMPILE_WRITE]
CHARS_PER_TOKEN = 4  # a deliberately rough estimate, checked before anything is sent

SYSTEM_PROMPT = """\
You help an author turn their rough notes into an *explainer*: a Markdown document that a
tutor (a person or an AI) teaches from, one concept at a time.

Rules, in order of importance:
1. Never invent facts. Every claim in the explainer must come from the notes or from the
   author's answers. Where a reader would need something the notes do not give, write a
   visible gap marker in that place: [GAP: what is missing, as a question to the author].
2. Keep the author's voice: their wording, examples, tone and claims. Reorganise, connect
   and tidy; do not rewrite their style or soften their opinions.
3. One concept per section; order concepts so each builds on its prerequisites.
4. Check questions, one per key idea of the section: ask the reader to apply or predict
   ("what happens if...", "which of these..."), not to recall a sentence, because recall
   can be answered without understanding. Each must be answerable from its own section or
   earlier ones. Its reference answer must agree with the section point by point and state
   nothing the section does not.
5. Misconceptions: for each check, the wrong ideas a reader is likely to bring (from the
   notes, or ones the author confirmed), because a tutor uses them to spot and repair a
   wrong answer. Where the notes and the author's answers disagree, do not choose silently:
   write [GAP: the notes say ..., the answer says ... -- which is right?].

The explainer format (version 1) is Markdown with YAML front matter:

---
tutor: 1
title: The explainer's title
summary: One or two sentences on what the reader will understand.
audience: Who it is for and what they already know.
author: The author's name, if known
concepts:
  - id: pages                      # [a-z0-9][a-z0-9-]*, unique
    title: Pages and the database file
    summary: One line.
    prerequisites: []              # ids of concepts declared in this list
    checks:                        # questions a tutor asks to check understanding
      - question: "..."
        answer: "..."              # the reference answer, from the notes
        misconceptions: ["..."]    # wrong ideas a reader is likely to have (rule 5)
---

{preamble}

## Pages and the database file {{#pages}}

Section text. ### subheadings stay inside the section.

Format rules: every concept in the front matter has exactly one body section whose level-2
heading ends with {{#id}}; no two concepts share an id; prerequisites only name declared
ids and never form a cycle; quote YAML strings that contain a colon; the note to AI
assistants above goes, unchanged, between the front matter and the first section."""


def _system_blocks() -> list[dict]:
    return [{"type": "text", "text": SYSTEM_PROMPT.format(preamble=ai_preamble())}]


def notes_block(notes: list[NoteFile]) -> dict:
    """All notes in one text block with a cache breakpoint: every step re-reads them cheaply."""
    parts = ["The author's notes follow, file by file.\n"]
    for n in notes:
        parts.append(f'<notes file="{n.path}">\n{n.text.rstrip()}\n</notes>\n')
    return {"type": "text", "text": "".join(parts), "cache_control": {"type": "ephemeral"}}


def outline_request(notes: list[NoteFile], *, max_questions: int) -> tuple[list[dict], list[dict]]:
    ask = (
        "Step 1 of 2. Read the notes and draft an outline for the explainer: the concepts in "
        "teaching order (a short id, a title, prerequisites, one line each), then what the notes "
        "do not yet cover or leave unclear. Put the outline inside <outline>...</outline>.\n"
        + (
            f"Then write up to {max_questions} clarifying questions for the author, most important "
            "first, each inside its own <question>...</question> tag. If the notes do not say who "
            "the readers are and what they should be able to do afterwards, ask that first: it "
            "decides what to explain and what to assume. Then ask what the notes leave open or "
            "contradict and a reader would need, and propose the likely misconception of a key "
            "concept for the author to confirm (\"Do readers often think ...?\"). One thing per "
            "question; short. If nothing is missing, ask no questions."
            if max_questions
            else "Do not ask the author questions: list the gaps in the outline instead."
        )
    )
    return _system_blocks(), [{"role": "user", "content": [notes_block(notes), {"type": "text", "text": ask}]}]


class QA(BaseModel):
    question: str
    answer: str | None = None  # None: skipped or not asked
    status: str = "pending"  # pending | answered | skipped | not_asked


def write_request(
    notes: list[NoteFile], outline: str, qas: list[QA], *, title: str | None, author: str
) -> tuple[list[dict], list[dict]]:
    lines = ["Step 2 of 2. Your outline was:", "<outline>", outline.strip(), "</outline>", ""]
    answered = [q for q in qas if q.status == "answered"]
    open_qs = [q for q in qas if q.status != "answered"]
    if answered:
        lines.append("The author answered your questions (treat the answers as part of the notes):")
        for q in answered:
            lines += [f"<question>{q.question}</question>", f"<answer>{q.answer}</answer>"]
        lines.append("")
    if open_qs:
        lines.append("These questions have no answer; mark what they ask about as [GAP: ...] where it matters:")
        lines += [f"- {q.question}" for q in open_qs]
        lines.append("")
    if title:
        lines.append(f"Use this title: {title}")
    if author:
        lines.append(f"Author: {author}")
    lines.append(
        "Now write the complete explainer file in format v1, following the rules. Reply with the "
        "file only: start with the line '---' and write nothing after the last section."
    )
    user = {"role": "user", "content": [notes_block(notes), {"type": "text", "text": "\n".join(lines)}]}
    return _system_blocks(), [user]


def repair_messages(messages: list[dict], draft: str, problems: list[Problem], *, cut_off: bool) -> list[dict]:
    errs = "\n".join(f"- line {p.line}: {p.message}" if p.line else f"- {p.message}" for p in problems)
    why = "Your reply was cut off at the output limit: write the file again, more concisely, complete.\n" if cut_off else ""
    ask = (
        f"{why}The explainer loader rejected the file:\n{errs}\n\n"
        "Fix these problems and reply with the complete corrected file only, starting with '---'."
    )
    return messages + [
        {"role": "assistant", "content": [{"type": "text", "text": draft.strip() or "(empty reply)"}]},
        {"role": "user", "content": [{"type": "text", "text": ask}]},
    ]


_QUESTION_RE = re.compile(r"<question>(.*?)</question>", re.S | re.I)
_OUTLINE_RE = re.compile(r"<outline>(.*?)</outline>", re.S | re.I)


def parse_outline(reply: str) -> tuple[str, list[str]]:
    """(outline text, questions) from the step-1 reply; tolerant of a missing <outline> tag."""
    questions = [" ".join(q.split()) for q in _QUESTION_RE.findall(reply)]
    questions = [q for q in questions if q]
    m = _OUTLINE_RE.search(reply)
    outline = m.group(1) if m else _QUESTION_RE.sub("", reply)
    return outline.strip(), questions


def extract_document(reply: str) -> str:
    """The explainer from the write reply: drop chatter before '---' and a ``` fence around it
    (with any chatter after the fence)."""
    lines = reply.strip("\n").split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "---"), None)
    if start is None:
        return reply.strip() + "\n"
    fence = None
    for ln in reversed(lines[:start]):
        if ln.strip():
            if ln.lstrip().startswith(("```", "~~~")):
                fence = ln.lstrip()[:3]
            break
    body = lines[start:]
    if fence is not None:
        for j in range(len(body) - 1, 0, -1):
            if body[j].strip() and set(body[j].strip()) == {fence[0]} and len(body[j].strip()) >= 3:
                body = body[:j]
                break
    return "\n".join(body).rstrip() + "\n"


def ensure_preamble(text: str) -> str:
    """Put the canonical note to AI assistants after the front matter if the model left it out."""
    if "Note to any AI assistant" in text:
        return text
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return text
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[: i + 1] + ["", ai_preamble(), ""] + lines[i + 1 :])
    return text


def estimate_tokens(*texts: str) -> int:
    return sum(len(t) for t in texts) // CHARS_PER_TOKEN + 1


def model_context_tokens(make) -> int:
    """The model's input window as the Models API states it, else CONTEXT_TOKENS."""
    backend = make()
    ask = getattr(backend, "context_tokens", None)

    async def go() -> int | None:
        try:
            return await ask() if ask is not None else None
        finally:
            try:
                await backend.aclose()
            except Exception:  # closing a client must never hide the real outcome
                pass

    return asyncio.run(go()) or CONTEXT_TOKENS


def check_context(notes: list[NoteFile], model: str, *, context_tokens: int = CONTEXT_TOKENS) -> int:
    """Refuse, before sending anything, notes that cannot fit the model's context with the answer."""
    est = estimate_tokens(_system_blocks()[0]["text"], notes_block(notes)["text"])
    room = context_tokens - WRITE_MAX_TOKENS - 4_000  # the answer, the outline and the Q&A
    if est > room:
        biggest = max(notes, key=lambda n: len(n.text))
        raise TutorError(
            f"{biggest.path}: the notes are about {est:,} tokens, more than {model} can read at once "
            f"(about {room:,} tokens with room for the explainer)",
            hint="Split the notes and compile each part separately, or leave some files out.",
        )
    return est


# -- compile state in the database (table `compiles`, migration m003_authors)


class CompileState(BaseModel):
    id: str
    output: str
    notes_hash: str
    model: str
    status: str  # outline | asking | writing | done | failed
    outline: str | None = None
    questions: list[QA] = []


def _state(row: CompileRow) -> CompileState:
    return CompileState(
        id=row.id, output=row.output, notes_hash=row.notes_hash, model=row.model, status=row.status, outline=row.outline,
        questions=[QA(question=q.question, answer=q.answer, status=q.status) for q in row.questions],
    )


def new_compile(store: Store, output: Path, notes: list[NoteFile], model: str) -> CompileState:
    return _state(store.create_compile(output, notes_hash(notes), [n.path for n in notes], model))


def find_unfinished(store: Store, output: Path) -> CompileState | None:
    row = store.unfinished_compile(output)
    return _state(row) if row else None


def save_outline(store: Store, st: CompileState, outline: str, questions: list[str]) -> None:
    st.outline, st.status = outline, "asking"
    st.questions = [QA(question=q) for q in questions]
    store.save_compile_outline(st.id, outline, questions, st.status)


def save_answer(store: Store, st: CompileState, index: int, answer: str | None, status: str) -> None:
    """One answer, committed as soon as it is typed: an interrupted compile loses nothing."""
    st.questions[index].answer, st.questions[index].status = answer, status
    store.save_compile_answer(st.id, index + 1, answer, status)


def set_compile_status(store: Store, st: CompileState, status: str) -> None:
    st.status = status
    store.set_compile_status(st.id, status)


class CompileUI(Protocol):
    """What the Claude compile needs of the author's terminal (``commands/compile_ui.TerminalUI``)."""

    def status(self, message: str) -> AbstractContextManager[Any]:
        """A spinner while a model call runs; what it yields has ``update(text)``."""
        ...

    def info(self, message: str) -> None: ...

    def show(self, text: str) -> None: ...

    def ask(self, question: str, number: int, total: int) -> str | None:
        """The answer; "" to skip; None to stop asking."""
        ...


class CompileResult(BaseModel):
    output: str
    concepts: int
    gaps: int
    repaired: bool
    answered: int
    skipped: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


def compile_hint(e: TutorError) -> str:
    """What to do next after a failed compile call, in an author's terms (the engine's hints
    speak to readers: "your message was kept", "the partial reply was kept")."""
    code = getattr(e, "code", "")
    if code == "auth":
        return (
            "Set your key with: export ANTHROPIC_API_KEY=sk-ant-...; or write a skeleton without one: "
            "tutor compile NOTES --offline -o FILE."
        )
    again = "Your answers so far are saved; run the same command with --resume to carry on from this step."
    if code == "deadline":
        return (
            f"Nothing was written for this step. {again} More time: --reply-timeout SECONDS (the whole reply) "
            "or $TUTOR_FIRST_TOKEN_TIMEOUT (the first word)."
        )
    if getattr(e, "retryable", False):
        return f"Nothing was written for this step. {again}"
    return f"Check --model and your account. {again}"


async def _call(backend, ui, label: str, system, messages, kind: CallKind, usage: TokenUsage, notes_est: int):
    from tutor.engine.claude import BackendError

    got = [0]
    with ui.status(label) as status:

        def on_text(piece: str) -> None:
            got[0] += len(piece)
            status.update(f"{label} ({got[0]:,} characters)")

        def on_retry(ev) -> None:
            ui.info(f"{ev.reason} Retrying in {math.ceil(ev.seconds)} s (retry {ev.attempt} of {ev.of}; Ctrl-C to stop).")

        try:
            result = await backend.stream(system=system, messages=messages, kind=kind, on_text=on_text, on_retry=on_retry)
        except BackendError as e:
            if e.code == "context":
                raise TutorError(
                    f"the notes (about {notes_est:,} tokens) are too long for {backend.model}'s context window",
                    hint="Split the notes and compile each part separately, or leave some files out.",
                ) from None
            raise TutorError(e.message, hint=compile_hint(e)) from None
    usage.add(result)
    result.text = utf8_text(result.text)
    return result


def _model_call(make_backend, ui, label: str, system, messages, kind: CallKind, usage: TokenUsage, est: int):
    """One model call in its own event loop, with a fresh client closed afterwards.

    Each call gets its own ``asyncio.run`` so the questions in between run in plain
    blocking code, where Ctrl-C interrupts at once (inside a running loop the first
    Ctrl-C would only cancel the task at the next await).
    """

    async def go():
        be = make_backend()
        try:
            return await _call(be, ui, label, system, messages, kind, usage, est)
        finally:
            try:
                await be.aclose()
            except Exception:  # closing a client must never hide the real outcome
                pass

    return asyncio.run(go())


def compile_with_claude(
    notes_paths: list[str | Path],
    output: str | Path,
    *,
    force: bool = False,
    questions: bool = True,
    max_questions: int = 6,
    resume: bool = False,
    title: str | None = None,
    author: str = "",
    model: str | None = None,
    db: str | None = None,
    ui: CompileUI,
    backend_factory=None,
    limits: Limits | None = None,
) -> CompileResult:
    """``tutor compile``: outline -> questions -> explainer -> validate -> one repair round.

    ``ui``: the author's terminal (``commands/compile_ui.TerminalUI``; tests pass their own).
    ``backend_factory`` makes a ClaudeBackend-like object per call (default: a real
    ClaudeBackend for the resolved model, reading ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL,
    bounded by ``limits``, default ``Limits.from_env()``: docs/reliability.md).
    """
    from tutor.engine.claude import ClaudeBackend, has_api_key, resolve_model
    from tutor.paths import db_path
    from tutor.store import Store

    notes = collect_notes(notes_paths)
    out = check_target(output, force=force, notes=notes)
    if backend_factory is None and not has_api_key():
        raise TutorError(
            "no Anthropic API key: ANTHROPIC_API_KEY is not set",
            hint="Set it to compile with Claude, or run with --offline for a skeleton you fill in yourself.",
        )
    model_name = resolve_model(model)
    make = backend_factory or (lambda: ClaudeBackend(model_name, limits=limits))
    est = check_context(notes, model_name, context_tokens=model_context_tokens(make))
    store = Store.open(db_path(db))
    try:
        st = find_unfinished(store, out)
        if resume:
            if st is None:
                raise TutorError(
                    f"{out}: no interrupted compile to resume", hint="run the same command without --resume to start one"
                )
            if st.notes_hash != notes_hash(notes):
                ui.info("note: the notes changed since this compile started; the outline may miss the changes")
            done = sum(q.status != "pending" for q in st.questions)
            ui.info(f"Resuming compile {st.id[:8]}: {done} of {len(st.questions)} question(s) already handled.")
        else:
            if st is not None:
                ui.info(f"note: an unfinished compile for {out} exists; starting over (use --resume to continue it)")
            st = new_compile(store, out, notes, model_name)
        return _run(store, st, make, ui, notes, out, est, questions=questions, max_questions=max_questions, title=title, author=author)
    except KeyboardInterrupt:
        ui.info("Interrupted. Your answers so far are saved: run the same command with --resume to continue.")
        raise
    finally:
        store.close()


def _run(store, st: CompileState, make, ui, notes, out: Path, est: int, *, questions, max_questions, title, author):
    usage = TokenUsage()  # all calls of this compile
    # Step 1: the outline (skipped when resuming a compile that has one).
    if st.outline is None:
        system, messages = outline_request(notes, max_questions=max_questions if questions else 0)
        r = _model_call(make, ui, "Claude is reading the notes and drafting an outline", system, messages, CallKind.COMPILE_OUTLINE, usage, est)
        outline, qs = parse_outline(r.text)
        save_outline(store, st, outline, qs[:max_questions])
    ui.show("Outline (drafted by Claude from your notes)")
    ui.show("-------")
    ui.show(st.outline or "(no outline)")

    # Step 2: clarifying questions, one at a time, each answer committed as typed.
    pending = [i for i, q in enumerate(st.questions) if q.status == "pending"]
    if questions and pending:
        total = len(st.questions)
        for i in pending:
            ans = ui.ask(st.questions[i].question, i + 1, total)
            if ans is None:
                break
            save_answer(store, st, i, ans or None, "answered" if ans else "skipped")
    for i, q in enumerate(st.questions):
        if q.status == "pending":
            save_answer(store, st, i, None, "not_asked")
    set_compile_status(store, st, "writing")

    # Step 3: the explainer, validated by the real loader; one repair round.
    system, messages = write_request(notes, st.outline or "", st.questions, title=title, author=author)
    r = _model_call(make, ui, "Claude is writing the explainer", system, messages, CallKind.COMPILE_WRITE, usage, est)
    text = ensure_preamble(extract_document(r.text))
    exp, problems = validate_text(text, str(out))
    cut_off = not r.complete
    if cut_off:
        problems = [Problem(str(out), None, "the reply was cut off at the output limit")] + problems
    repaired = False
    if problems:
        ui.info(f"The draft has {plural(len(problems), 'problem')}; asking Claude to repair it once:")
        for p in problems[:10]:
            ui.info(f"  {p}")
        messages = repair_messages(messages, r.text, problems, cut_off=cut_off)
        r = _model_call(make, ui, "Claude is repairing the explainer", system, messages, CallKind.COMPILE_WRITE, usage, est)
        text = ensure_preamble(extract_document(r.text))
        exp, problems = validate_text(text, str(out))
        if not r.complete:
            problems = [Problem(str(out), None, "the reply was cut off at the output limit")] + problems
        repaired = not problems
    if problems:
        draft, errors = save_draft(out, text, problems)
        set_compile_status(store, st, "failed")
        raise TutorError(
            f"{out}: Claude's explainer is still invalid after one repair ({plural(len(problems), 'problem')}); "
            f"nothing was written to {out.name}",
            hint=f"the draft is in {draft} and the errors in {errors}; fix them and run `tutor check`, "
            "or run the same command with --resume to try again",
        )
    assert exp is not None  # no problems means the loader returned the explainer
    atomic_write(out, text)
    set_compile_status(store, st, "done")
    gaps = text.count(GAP_MARKER)
    res = CompileResult(
        output=str(out),
        concepts=len(exp.concepts),
        gaps=gaps,
        repaired=repaired,
        answered=sum(q.status == "answered" for q in st.questions),
        skipped=sum(q.status == "skipped" for q in st.questions),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cost_usd=usage.cost_usd,
    )
    ui.info(
        f"wrote {out}: {res.concepts} concept(s)"
        + (" (after one repair)" if repaired else "")
        + (f"; {gaps} gap(s) marked [GAP: ...] for you to fill" if gaps else "")
    )
    ui.info(
        f"tokens: {usage.input_tokens:,} in, {usage.cache_creation_input_tokens:,} cache write, "
        f"{usage.cache_read_input_tokens:,} cache read, {usage.output_tokens:,} out; about ${usage.cost_usd:.4f}"
    )
    return res

