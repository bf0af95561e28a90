"""What ``tutor compile`` asks Claude at each step, and how it reads the replies.

The steps: an outline with the first questions, up to two follow-up rounds on the author's
answers, the write, and one repair. Every request is ``system`` (rules and format, stable)
then one user message whose first block is all the notes with a cache breakpoint, so each
step re-reads the notes from the cache; the step's instruction follows, and last the request
for notes on the notes. Where the model takes structured output (docs/models.md) the outline
and the follow-ups come back as JSON of OUTLINE_SCHEMA / FOLLOW_UP_SCHEMA; elsewhere they come
as tags, read here. ``<feedback>`` notes are read with the tutor's one tag parser
(``tutor.engine.tagfilter``) and never reach the explainer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from tutor.authoring.notes import NoteFile
from tutor.authoring.skeleton import ai_preamble
from tutor.engine.tagfilter import feedback_notes, strip_tags
from tutor.errors import Problem
from tutor.text import note_key

MAX_FOLLOW_UP_ROUNDS = 2  # rounds of follow-up questions after the outline's (docs/authors.md)
FOLLOW_UPS_PER_ROUND = 3  # follow-ups and contradictions asked in one round, at most

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

# The same kind of note the tutor asks for (tutor/engine/prompt.py, "Feedback."), aimed at the
# author while they can still fix the notes. It goes last in what the model reads, and lists
# the notes already given so each issue is raised once per compile.
_FEEDBACK_REQUEST = """\
(Before you finish.) Notes on the notes: if a sentence in the notes is unclear, contradicts \
another, or could be improved, tell the author {where}: "the sentence, quoted" -- what is \
wrong, and a proposed rewrite. The author reads each note and can fix the notes now, so write \
one only for a real problem, one per issue, and none for an issue listed below. Most steps \
need none. Notes already given:
<feedback_sent>
{sent}
</feedback_sent>"""

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_FEEDBACK_FIELD: dict[str, Any] = {
    **_STRINGS,
    "description": 'Notes on the notes for the author: "the sentence, quoted" -- what is wrong, and a proposed rewrite.',
}


def _obj(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A schema object as structured output wants it: every field required, nothing extra."""
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {**out, "description": description} if description else out


OUTLINE_SCHEMA = _obj({
    "concepts": {"type": "array", "description": "In teaching order.", "items": _obj({
        "id": {"type": "string", "description": "Short, [a-z0-9-]."},
        "title": {"type": "string"},
        "summary": {"type": "string", "description": "One line."},
        "prerequisites": {**_STRINGS, "description": "Ids of earlier concepts."},
    })},
    "not_covered": {**_STRINGS, "description": "What the notes do not yet cover or leave unclear."},
    "questions": {**_STRINGS, "description": "Clarifying questions for the author, most important first."},
    "feedback": _FEEDBACK_FIELD,
})
FOLLOW_UP_SCHEMA = _obj({
    "follow_ups": {"type": "array", "items": _obj({
        "about": {"type": "integer", "description": "The number of the answer this follows up."},
        "question": {"type": "string"},
    })},
    "contradictions": {"type": "array", "items": _obj({
        "about": {"type": "integer", "description": "The number of the answer that disagrees with the notes."},
        "notes_say": {"type": "string", "description": "The notes' sentence, quoted."},
        "answer_says": {"type": "string", "description": "The answer's words, quoted."},
        "question": {"type": "string", "description": "Asking the author which is right."},
    })},
    "feedback": _FEEDBACK_FIELD,
})


class QA(BaseModel):
    """One question to the author and what became of it."""

    question: str
    answer: str | None = None  # None: skipped or not asked
    status: str = "pending"  # pending | answered | skipped | not_asked
    kind: str = "question"  # question | follow_up | contradiction
    round: int = 0  # 0: from the outline; 1..MAX_FOLLOW_UP_ROUNDS: follow-ups
    about: int | None = None  # the number (1-based) of the answer a follow-up is about
    notes_say: str = ""  # a contradiction: the two sides, quoted
    answer_says: str = ""


class OutlineReply(BaseModel):
    outline: str
    questions: list[str]
    feedback: list[str]


class FollowUpReply(BaseModel):
    questions: list[QA]  # follow-ups and contradictions, contradictions first
    feedback: list[str]


def system_blocks() -> list[dict]:
    return [{"type": "text", "text": SYSTEM_PROMPT.format(preamble=ai_preamble())}]


def notes_block(notes: list[NoteFile]) -> dict:
    """All notes in one text block with a cache breakpoint: every step re-reads them cheaply."""
    parts = ["The author's notes follow, file by file.\n"]
    for n in notes:
        parts.append(f'<notes file="{n.path}">\n{n.text.rstrip()}\n</notes>\n')
    return {"type": "text", "text": "".join(parts), "cache_control": {"type": "ephemeral"}}


def feedback_request(sent: list[str], *, structured: bool = False) -> str:
    where = 'as an item of the reply\'s "feedback" list' if structured else "in a <feedback>...</feedback> tag"
    listed = "\n".join(f"- {' '.join(n.split())[:200]}" for n in sent) or "(none yet)"
    return _FEEDBACK_REQUEST.format(where=where, sent=listed)


def _request(notes: list[NoteFile], step: str, sent: list[str], structured: bool) -> tuple[list[dict], list[dict]]:
    text = step.rstrip() + "\n\n" + feedback_request(sent, structured=structured)
    return system_blocks(), [{"role": "user", "content": [notes_block(notes), {"type": "text", "text": text}]}]


def outline_request(
    notes: list[NoteFile], *, max_questions: int, structured: bool = False, sent: list[str] | None = None
) -> tuple[list[dict], list[dict]]:
    where = "fill in the reply's fields" if structured else "put the outline inside <outline>...</outline>"
    ask = (
        "Step 1 (outline). Read the notes and draft an outline for the explainer: the concepts in "
        "teaching order (a short id, a title, prerequisites, one line each), then what the notes "
        f"do not yet cover or leave unclear; {where}.\n"
        + (
            f"Then write up to {max_questions} clarifying questions for the author, most important "
            "first" + (" (the questions list)" if structured else ", each inside its own <question>...</question> tag")
            + ". If the notes do not say who "
            "the readers are and what they should be able to do afterwards, ask that first: it "
            "decides what to explain and what to assume. Then ask what the notes leave open or "
            "contradict and a reader would need, and propose the likely misconception of a key "
            "concept for the author to confirm (\"Do readers often think ...?\"). One thing per "
            "question; short. If nothing is missing, ask no questions. You can follow up on the "
            "answers later, so ask the most important things now."
            if max_questions
            else "Do not ask the author questions: list the gaps in the outline instead."
        )
    )
    return _request(notes, ask, sent or [], structured)


def _qa_lines(qas: list[QA]) -> list[str]:
    out = []
    for n, q in enumerate(qas, 1):
        answer = q.answer if q.status == "answered" else f"({q.status.replace('_', ' ')})"
        out += [f'<qa n="{n}">', f"<question>{_question_text(q)}</question>", f"<answer>{answer}</answer>", "</qa>"]
    return out


def follow_up_request(
    notes: list[NoteFile], outline: str, qas: list[QA], *, round_no: int, structured: bool = False, sent: list[str] | None = None
) -> tuple[list[dict], list[dict]]:
    if structured:
        how_follow = "in follow_ups, with the number of the answer it is about"
        how_clash = "in contradictions, quoting both sides"
    else:
        how_follow = 'each inside <question about="N">...</question>, N the number of the answer it is about'
        how_clash = ('in <contradiction about="N">The notes say "...", your answer says "...": which is right?'
                     "</contradiction>")
    lines = [
        f"Follow-up round {round_no} of {MAX_FOLLOW_UP_ROUNDS}. Your outline was:", "<outline>", outline.strip(), "</outline>",
        "", "The author's answers so far:", *_qa_lines(qas), "",
        "Read the answers against the notes. Ask a follow-up only where an answer is unclear, "
        "incomplete, or opens something a reader would need, because each question interrupts "
        f"the author: {how_follow}. Where an answer disagrees with the notes, do not pick one, "
        f"because a silent choice can put a wrong fact into the explainer: ask the author {how_clash}. "
        f"At most {FOLLOW_UPS_PER_ROUND} in all, contradictions first; none is fine.",
    ]
    return _request(notes, "\n".join(lines), sent or [], structured)


def _question_text(q: QA) -> str:
    """The question as the model reads it back."""
    if q.kind == "contradiction" and (q.notes_say or q.answer_says):
        return f'The notes say "{q.notes_say}"; the answer to question {q.about} says "{q.answer_says}". {q.question}'
    if q.kind == "follow_up" and q.about:
        return f"(follow-up to question {q.about}) {q.question}"
    return q.question


def write_request(
    notes: list[NoteFile], outline: str, qas: list[QA], *, title: str | None, author: str, sent: list[str] | None = None
) -> tuple[list[dict], list[dict]]:
    lines = ["Final step (write). Your outline was:", "<outline>", outline.strip(), "</outline>", ""]
    answered = [q for q in qas if q.status == "answered"]
    open_qs = [q for q in qas if q.status != "answered"]
    if answered:
        lines.append("The author answered your questions (treat the answers as part of the notes; an answer "
                     "to a contradiction says which side is right):")
        for q in answered:
            lines += [f"<question>{_question_text(q)}</question>", f"<answer>{q.answer}</answer>"]
        lines.append("")
    if open_qs:
        lines.append("These questions have no answer; mark what they ask about as [GAP: ...] where it matters:")
        lines += [f"- {_question_text(q)}" for q in open_qs]
        lines.append("")
    if title:
        lines.append(f"Use this title: {title}")
    if author:
        lines.append(f"Author: {author}")
    lines.append(
        "Now write the complete explainer file in format v1, following the rules. Reply with the "
        "file only: start with the line '---' and write nothing after the last section except notes on the notes."
    )
    return _request(notes, "\n".join(lines), sent or [], False)


def repair_messages(messages: list[dict], draft: str, problems: list[Problem], *, cut_off: bool) -> list[dict]:
    errs = "\n".join(f"- line {p.line}: {p.message}" if p.line else f"- {p.message}" for p in problems)
    why = "Your reply was cut off at the output limit: write the file again, more concisely, complete.\n" if cut_off else ""
    ask = (
        f"{why}The explainer loader rejected the file:\n{errs}\n\n"
        "Fix these problems and reply with the complete corrected file only, starting with '---'. "
        "While you are at it, keep each check's reference answer to what its own or earlier sections "
        "say, because a tutor asks it right after that section."
    )
    return messages + [
        {"role": "assistant", "content": [{"type": "text", "text": draft.strip() or "(empty reply)"}]},
        {"role": "user", "content": [{"type": "text", "text": ask}]},
    ]


# --------------------------------------------------------------------------- reading replies

# The compile's own tags (not the tutor's protocol tags): a question, maybe about an answer.
_ASK_RE = re.compile(r'<(question|contradiction)(?:\s+about\s*=\s*"(\d+)")?\s*>(.*?)</\1\s*>', re.S | re.I)
_OUTLINE_RE = re.compile(r"<outline>(.*?)</outline>", re.S | re.I)


def take_feedback(reply: str) -> tuple[str, list[str]]:
    """(the reply without its <feedback> tags, the notes in them), by the one tag parser."""
    notes = [_flat(t.text) + ("" if t.complete else " [cut off]") for t in feedback_notes(reply)]
    return strip_tags(reply, ("feedback",)), [n for n in notes if n.removesuffix(" [cut off]")]


def new_notes(notes: list[str], sent: list[str]) -> list[str]:
    """The notes not given before (the same note in other words of case or spacing is the same)."""
    seen = {note_key(n) for n in sent}
    out = []
    for n in notes:
        if n and note_key(n) not in seen:
            seen.add(note_key(n))
            out.append(n)
    return out


def _json(reply: str) -> dict[str, Any] | None:
    try:
        data = json.loads(reply)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _flat(value: Any) -> str:
    """A model's string on one line (runs of whitespace as one space); "" for none."""
    return " ".join(str(value or "").split())


def _strings(value: Any) -> list[str]:
    return [_flat(v) for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []


def parse_outline(reply: str) -> tuple[str, list[str]]:
    """(outline text, questions) from a step-1 reply in tags; tolerant of a missing <outline> tag."""
    questions = [_flat(m.group(3)) for m in _ASK_RE.finditer(reply) if m.group(1).lower() == "question"]
    questions = [q for q in questions if q]
    m = _OUTLINE_RE.search(reply)
    outline = m.group(1) if m else _ASK_RE.sub("", reply)
    return outline.strip(), questions


def outline_text(data: dict[str, Any]) -> str:
    """A structured outline as the author sees it (and as the later steps read it back)."""
    lines = []
    for n, c in enumerate([c for c in data.get("concepts") or [] if isinstance(c, dict)], 1):
        pre = _strings(c.get("prerequisites"))
        after = f" (after {', '.join(pre)})" if pre else " (no prerequisites)"
        summary = _flat(c.get("summary"))
        lines.append(f"{n}. {c.get('id', '')} - {c.get('title', '')}{after}" + (f": {summary}" if summary else ""))
    gaps = _strings(data.get("not_covered"))
    if gaps:
        lines += ["Not covered yet:"] + [f"- {g}" for g in gaps]
    return "\n".join(lines)


def read_outline(reply: str, *, structured: bool) -> OutlineReply:
    data = _json(reply) if structured else None
    if data is not None:
        return OutlineReply(outline=outline_text(data), questions=_strings(data.get("questions")),
                            feedback=_strings(data.get("feedback")))
    text, notes = take_feedback(reply)  # not JSON after all (cut off, a proxy): read the tags
    outline, questions = parse_outline(text)
    return OutlineReply(outline=outline, questions=questions, feedback=notes)


def _about(value: Any, answered: set[int]) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n in answered else None


def read_follow_ups(reply: str, qas: list[QA], *, structured: bool, round_no: int) -> FollowUpReply:
    """The follow-ups and contradictions in a follow-up reply, at most FOLLOW_UPS_PER_ROUND."""
    answered = {n for n, q in enumerate(qas, 1) if q.status == "answered"}
    data = _json(reply) if structured else None
    found: list[QA] = []
    if data is not None:
        feedback = _strings(data.get("feedback"))
        for c in data.get("contradictions") or []:
            if isinstance(c, dict) and _flat(c.get("question")):
                found.append(QA(question=_flat(c["question"]), kind="contradiction", round=round_no,
                                about=_about(c.get("about"), answered), notes_say=_flat(c.get("notes_say")),
                                answer_says=_flat(c.get("answer_says"))))
        for f in data.get("follow_ups") or []:
            if isinstance(f, dict) and _flat(f.get("question")):
                found.append(QA(question=_flat(f["question"]), kind="follow_up", round=round_no,
                                about=_about(f.get("about"), answered)))
    else:
        text, feedback = take_feedback(reply)
        for m in _ASK_RE.finditer(text):
            body = _flat(m.group(3))
            if body:
                kind = "contradiction" if m.group(1).lower() == "contradiction" else "follow_up"
                found.append(QA(question=body, kind=kind, round=round_no, about=_about(m.group(2), answered)))
    found.sort(key=lambda q: q.kind != "contradiction")
    return FollowUpReply(questions=found[:FOLLOW_UPS_PER_ROUND], feedback=feedback)


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
