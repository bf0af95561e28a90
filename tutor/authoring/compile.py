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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from tutor.engine.events import TokenUsage
from tutor.engine.models import REPLY_TOKENS, CallKind
from tutor.errors import Problem, TutorError
from tutor.files import atomic_write
from tutor.text import plural, utf8_text

if TYPE_CHECKING:
    from tutor.engine.claude import Limits
    from tutor.engine.models import Reported
    from tutor.explainer import Explainer
    from tutor.store import CompileRow, Store

from tutor.authoring.compile_prompts import (
    FOLLOW_UP_SCHEMA,
    MAX_FOLLOW_UP_ROUNDS,
    OUTLINE_SCHEMA,
    QA,
    extract_document,
    follow_up_request,
    new_notes,
    notes_block,
    outline_request,
    read_follow_ups,
    read_outline,
    repair_messages,
    system_blocks,
    take_feedback,
    write_request,
)
from tutor.authoring.consistency import check_answers
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

CONTEXT_TOKENS = 200_000  # assumed when the Models API does not say (model_facts)
OUTLINE_MAX_TOKENS = REPLY_TOKENS[CallKind.COMPILE_OUTLINE]
WRITE_MAX_TOKENS = REPLY_TOKENS[CallKind.COMPILE_WRITE]
CHARS_PER_TOKEN = 4  # a deliberately rough estimate, checked before anything is sent


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


def model_facts(make) -> tuple[Reported | None, int, bool]:
    """(the Models API's report, the model's input window, whether it takes structured output),
    from one small request; the window is CONTEXT_TOKENS when the API does not say."""
    backend = make()
    ask = getattr(backend, "model_report", None)

    async def go() -> Reported | None:
        try:
            return await ask() if ask is not None else None
        finally:
            try:
                await backend.aclose()
            except Exception:  # closing a client must never hide the real outcome
                pass

    report = asyncio.run(go())
    structured = bool(getattr(getattr(backend, "profile", None), "structured_output", False))
    return report, (report.context_window if report else None) or CONTEXT_TOKENS, structured


def check_context(notes: list[NoteFile], model: str, *, context_tokens: int = CONTEXT_TOKENS) -> int:
    """Refuse, before sending anything, notes that cannot fit the model's context with the answer."""
    est = estimate_tokens(system_blocks()[0]["text"], notes_block(notes)["text"])
    room = context_tokens - WRITE_MAX_TOKENS - 4_000  # the answer, the outline and the Q&A
    if est > room:
        biggest = max(notes, key=lambda n: len(n.text))
        raise TutorError(
            f"{biggest.path}: the notes are about {est:,} tokens, more than {model} can read at once "
            f"(about {room:,} tokens with room for the explainer)",
            hint="Split the notes and compile each part separately, or leave some files out.",
        )
    return est


# -- compile state in the database (tables `compiles`, `compile_questions`, `compile_feedback`;
# migrations m003_authors, m008_compile_dialogue)


class CompileState(BaseModel):
    id: str
    output: str
    notes_hash: str
    model: str
    status: str  # outline | asking | writing | done | failed
    outline: str | None = None
    questions: list[QA] = []
    feedback: list[str] = []  # the model's notes on the notes, shown at the end, never written


def _state(row: CompileRow) -> CompileState:
    return CompileState(
        id=row.id, output=row.output, notes_hash=row.notes_hash, model=row.model, status=row.status, outline=row.outline,
        questions=[QA(**q.model_dump(exclude={"seq"})) for q in row.questions], feedback=list(row.feedback),
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


def add_questions(store: Store, st: CompileState, questions: list[QA]) -> None:
    """Follow-ups and contradictions, numbered after the questions already there."""
    from tutor.store.rows import CompileQuestionRow

    first = len(st.questions) + 1
    rows = [CompileQuestionRow(seq=first + i, **q.model_dump(exclude={"answer", "status"})) for i, q in enumerate(questions)]
    store.add_compile_questions(st.id, rows)
    st.questions += questions


def save_answer(store: Store, st: CompileState, index: int, answer: str | None, status: str) -> None:
    """One answer, committed as soon as it is typed: an interrupted compile loses nothing."""
    st.questions[index].answer, st.questions[index].status = answer, status
    store.save_compile_answer(st.id, index + 1, answer, status)


def save_feedback(store: Store, st: CompileState, step: str, notes: list[str]) -> None:
    """The notes not given before, kept with the compile (so --resume still shows them)."""
    fresh = new_notes(notes, st.feedback)
    store.add_compile_feedback(st.id, step, fresh)
    st.feedback += fresh


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

    def ask(self, question: str, label: str) -> str | None:
        """The answer to ``question`` (introduced by ``label``, "Question 2 of 5"); "" to skip; None to stop asking."""
        ...


class CompileResult(BaseModel):
    output: str
    concepts: int
    gaps: int
    repaired: bool
    answered: int
    skipped: int
    follow_ups: int = 0  # questions asked in follow-up rounds (follow-ups and contradictions)
    warnings: int = 0  # check answers not answerable from their own or earlier sections
    feedback: list[str] = []  # notes on the notes
    usage: TokenUsage = Field(default_factory=TokenUsage)  # every call of the compile, summed


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


async def _call(backend, ui, label: str, system, messages, kind: CallKind, usage: TokenUsage, notes_est: int, schema=None):
    from tutor.engine.claude import BackendError

    got = [0]
    with ui.status(label) as status:

        def on_text(piece: str) -> None:
            got[0] += len(piece)
            status.update(f"{label} ({got[0]:,} characters)")

        def on_retry(ev) -> None:
            ui.info(f"{ev.reason} Retrying in {math.ceil(ev.seconds)} s (retry {ev.attempt} of {ev.of}; Ctrl-C to stop).")

        extra = {"json_schema": schema} if schema is not None else {}
        try:
            result = await backend.stream(system=system, messages=messages, kind=kind, on_text=on_text, on_retry=on_retry, **extra)
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
    """``tutor compile``: outline -> questions and follow-ups -> explainer -> validate -> one repair round.

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
    report, window, structured = model_facts(backend_factory or (lambda: ClaudeBackend(model_name, limits=limits)))
    make = backend_factory or (lambda: ClaudeBackend(model_name, limits=limits, reported=report))
    est = check_context(notes, model_name, context_tokens=window)
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
        run = ClaudeCompile(store, st, make, ui, notes, out, est, structured=structured)
        return run.run(questions=questions, max_questions=max_questions, title=title, author=author)
    except KeyboardInterrupt:
        ui.info("Interrupted. Your answers so far are saved: run the same command with --resume to continue.")
        raise
    finally:
        store.close()


class ClaudeCompile:
    """One compile's steps over its saved state: each model call in its own event loop, each
    answer saved as it is typed, so Ctrl-C or a failed call loses nothing (--resume)."""

    def __init__(self, store: Store, st: CompileState, make, ui: CompileUI, notes: list[NoteFile], out: Path, est: int, *,
                 structured: bool) -> None:
        self.store, self.st, self.make, self.ui, self.notes, self.out, self.est = store, st, make, ui, notes, out, est
        self.structured = structured  # the model takes output_config.format (docs/models.md)
        self.usage = TokenUsage()  # all calls of this compile

    def call(self, label: str, request: tuple[list[dict], list[dict]], kind: CallKind, schema: dict | None = None):
        """One model call in its own event loop, with a fresh client closed afterwards.

        Each call gets its own ``asyncio.run`` so the questions in between run in plain
        blocking code, where Ctrl-C interrupts at once (inside a running loop the first
        Ctrl-C would only cancel the task at the next await).
        """
        system, messages = request

        async def go():
            be = self.make()
            try:
                return await _call(be, self.ui, label, system, messages, kind, self.usage, self.est,
                                   schema if self.structured else None)
            finally:
                try:
                    await be.aclose()
                except Exception:  # closing a client must never hide the real outcome
                    pass

        return asyncio.run(go())

    def run(self, *, questions: bool, max_questions: int, title: str | None, author: str) -> CompileResult:
        st = self.st
        if st.outline is None:  # step 1, skipped when resuming a compile that has one
            req = outline_request(self.notes, max_questions=max_questions if questions else 0, structured=self.structured,
                                  sent=st.feedback)
            r = self.call("Claude is reading the notes and drafting an outline", req, CallKind.COMPILE_OUTLINE, OUTLINE_SCHEMA)
            got = read_outline(r.text, structured=r.structured)
            save_outline(self.store, st, got.outline, got.questions[:max_questions])
            save_feedback(self.store, st, "outline", got.feedback)
        self.ui.show("Outline (drafted by Claude from your notes)")
        self.ui.show("-------")
        self.ui.show(st.outline or "(no outline)")
        if questions and st.status == "asking":
            self.converse()
        for i, q in enumerate(st.questions):
            if q.status == "pending":
                save_answer(self.store, st, i, None, "not_asked")
        set_compile_status(self.store, st, "writing")
        return self.write(title=title, author=author)

    def ask_pending(self) -> bool:
        """Ask the pending questions one at a time; False when the author said stop."""
        st = self.st
        first = sum(q.round == 0 for q in st.questions)
        for i, q in enumerate(st.questions):
            if q.status != "pending":
                continue
            ans = self.ui.ask(*question_display(q, i + 1, first))
            if ans is None:
                return False
            save_answer(self.store, st, i, ans or None, "answered" if ans else "skipped")
        return True

    def converse(self) -> None:
        """The outline's questions, then up to MAX_FOLLOW_UP_ROUNDS rounds of follow-ups on what
        the author answered in the round before (none when nothing was answered)."""
        st = self.st
        if not self.ask_pending():
            return
        while True:
            last = max((q.round for q in st.questions), default=0)
            if last >= MAX_FOLLOW_UP_ROUNDS or not any(q.round == last and q.status == "answered" for q in st.questions):
                return
            req = follow_up_request(self.notes, st.outline or "", st.questions, round_no=last + 1,
                                    structured=self.structured, sent=st.feedback)
            r = self.call("Claude is reading your answers", req, CallKind.COMPILE_OUTLINE, FOLLOW_UP_SCHEMA)
            got = read_follow_ups(r.text, st.questions, structured=r.structured, round_no=last + 1)
            save_feedback(self.store, st, "follow_up", got.feedback)
            if not got.questions:
                return
            add_questions(self.store, st, got.questions)
            self.ui.show("")
            self.ui.show(f"Claude has {plural(len(got.questions), 'follow-up question')} on your answers "
                         f"(round {last + 1} of {MAX_FOLLOW_UP_ROUNDS}; Enter skips one, `stop` writes the explainer now).")
            if not self.ask_pending():
                return

    def draft(self, request, label: str) -> tuple[str, Explainer | None, list[Problem], bool]:
        """One write (or repair) reply: (the explainer text, the explainer or None, problems, cut off)."""
        r = self.call(label, request, CallKind.COMPILE_WRITE)
        body, notes = take_feedback(r.text)
        save_feedback(self.store, self.st, "write", notes)
        text = ensure_preamble(extract_document(body))
        exp, problems = validate_text(text, str(self.out))
        if not r.complete:
            problems = [Problem(str(self.out), None, "the reply was cut off at the output limit")] + problems
        return text, exp, problems, not r.complete

    def write(self, *, title: str | None, author: str) -> CompileResult:
        """The explainer, validated by the real loader, with one repair round; then its check answers."""
        st, ui, out = self.st, self.ui, self.out
        req = write_request(self.notes, st.outline or "", st.questions, title=title, author=author, sent=st.feedback)
        text, exp, problems, cut_off = self.draft(req, "Claude is writing the explainer")
        repaired = False
        if problems:
            ui.info(f"The draft has {plural(len(problems), 'problem')}; asking Claude to repair it once:")
            for p in problems[:10]:
                ui.info(f"  {p}")
            system, messages = req
            req = system, repair_messages(messages, text, problems, cut_off=cut_off)
            text, exp, problems, _ = self.draft(req, "Claude is repairing the explainer")
            repaired = not problems
        if problems:
            draft, errors = save_draft(out, text, problems)
            set_compile_status(self.store, st, "failed")
            self.show_feedback()
            raise TutorError(
                f"{out}: Claude's explainer is still invalid after one repair ({plural(len(problems), 'problem')}); "
                f"nothing was written to {out.name}",
                hint=f"the draft is in {draft} and the errors in {errors}; fix them and run `tutor check`, "
                "or run the same command with --resume to try again",
            )
        assert exp is not None  # no problems means the loader returned the explainer
        atomic_write(out, text)
        set_compile_status(self.store, st, "done")
        return self.finish(text, exp, repaired)

    def finish(self, text: str, exp: Explainer, repaired: bool) -> CompileResult:
        st, ui, usage = self.st, self.ui, self.usage
        gaps = text.count(GAP_MARKER)
        warnings = check_answers(exp, str(self.out))
        res = CompileResult(
            output=str(self.out), concepts=len(exp.concepts), gaps=gaps, repaired=repaired,
            answered=sum(q.status == "answered" for q in st.questions),
            skipped=sum(q.status == "skipped" for q in st.questions),
            follow_ups=sum(q.round > 0 and q.status in ("answered", "skipped") for q in st.questions),
            warnings=len(warnings), feedback=list(st.feedback),
            usage=usage.model_copy(),
        )
        ui.info(
            f"wrote {self.out}: {res.concepts} concept(s)"
            + (" (after one repair)" if repaired else "")
            + (f"; {gaps} gap(s) marked [GAP: ...] for you to fill" if gaps else "")
        )
        if warnings:
            ui.info(f"Check answers to look at ({plural(len(warnings), 'warning')}; a tutor asks each check right after "
                    "its section, so its answer should come from that section or an earlier one):")
            for p in warnings[:10]:
                ui.info(f"  {p}")
            if len(warnings) > 10:
                ui.info(f"  ... and {len(warnings) - 10} more")
        ui.info(
            f"tokens: {usage.input_tokens:,} in, {usage.cache_creation_input_tokens:,} cache write, "
            f"{usage.cache_read_input_tokens:,} cache read, {usage.output_tokens:,} out; about ${usage.cost_usd:.4f}"
        )
        self.show_feedback()
        return res

    def show_feedback(self) -> None:
        """The model's notes on the notes: for the author, never in the explainer."""
        if not self.st.feedback:
            return
        self.ui.show("")
        self.ui.show(f"Notes on your notes ({plural(len(self.st.feedback), 'note')} from Claude; not in the explainer):")
        for n in self.st.feedback:
            self.ui.show(f"- {n}")


def question_display(q: QA, number: int, first: int) -> tuple[str, str]:
    """(question, label) as the author sees them: the outline's are "Question 2 of 5"; a
    contradiction shows both sides before it asks which is right."""
    if q.kind == "contradiction":
        label = f"Question {number} (your notes and your answer {q.about} disagree)" if q.about else \
            f"Question {number} (your notes and an answer disagree)"
        sides = [f'  your notes:  "{q.notes_say}"'] if q.notes_say else []
        sides += [f'  your answer: "{q.answer_says}"'] if q.answer_says else []
        return ("\n".join(["", *sides, q.question]) if sides else q.question), label
    if q.kind == "follow_up":
        return q.question, (f"Question {number} (a follow-up to your answer {q.about})" if q.about else
                            f"Question {number} (a follow-up)")
    return q.question, f"Question {number} of {first}"
