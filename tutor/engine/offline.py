"""The offline guided mode: a deterministic tutor that needs no model and no network.

It walks the explainer in teaching order as the Claude tutor is told to: ask what the
reader knows (prerequisites first), verify a claim with one check, present a section in
readable pieces, ask its checks, name a listed misconception as soon as an answer states
it, repair a miss with the part of the section that answers it, and answer questions from
a search of the explainer. The walk, step by step: docs/engine.md, "The offline guided mode".

Why a pure state machine: ``OfflineGuide.step(text)`` has no I/O, so resuming a session is
replaying the reader's stored messages through a fresh guide (turns/offline.py): no cursor
table, and the replay is exact because every step is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from enum import StrEnum

from pydantic import BaseModel, Field

from tutor.engine.reader_model import DONE, PRESENTED, ReaderModel, State, ending, find_concepts, in_sentence
from tutor.engine.search import Hit, SectionIndex, blocks
from tutor.explainer import CheckQuestion, Concept, Explainer
from tutor.explainer.terms import content_stems
from tutor.text import plural

CHUNK_CHARS = 900  # a "readable piece": at most about this many characters ...
CHUNK_BLOCKS = 3  # ... or this many paragraphs

YES = {
    "y", "yes", "yeah", "yep", "yup", "ya", "sure", "of course", "i do", "yes i do", "i know", "i know it",
    "i know that", "i already know", "i already know it", "i already know that", "definitely", "correct",
    "right", "i did", "got it", "yes i did", "indeed", "absolutely", "affirmative", "yes please",
}
NO = {
    "n", "no", "nope", "nah", "not really", "i don't", "i dont", "i do not", "no idea", "never heard of it",
    "i didn't", "i didnt", "i did not", "wrong", "no i didn't", "no i don't", "negative", "not at all",
    "i got it wrong",
}
UNSURE = {
    "not sure", "?", "??", "maybe", "kind of", "kinda", "sort of", "a bit", "a little", "unsure", "dunno",
    "i don't know", "i dont know", "idk", "somewhat", "partly", "i'm not sure", "im not sure", "not quite",
    "hmm", "no clue", "i have no idea", "vaguely", "a little bit",
}
MORE = {"", "more", "m", "continue", "go on", "next", "ok", "okay", "k", "yes", "y", "sure", "go", "and", "then?"}
SKIP = {"skip", "/skip", "skip it", "skip this", "skip this one", "pass", "move on", "next concept"}
HELP = {"help", "/help", "h", "commands", "what can i say", "what can i type"}
PROGRESS = {"progress", "status", "where am i", "summary", "outline", "/progress"}
QUESTION_WORDS = (
    "what", "why", "how", "when", "where", "who", "which", "whose", "is", "are", "does", "do", "can",
    "could", "should", "would", "will", "isn't", "doesn't", "aren't", "don't",
)

HELP_TEXT = (
    "You can answer yes / no / not sure, press Enter (or type 'more') to read on, ask a question "
    "(it ends with '?'), or type: skip · I know <topic> · explain <topic> again · progress."
)


def normalise(text: str) -> str:
    t = text.strip().casefold().replace("’", "'")
    t = re.sub(r"[.!,;:]+$", "", t)
    t = re.sub(r"^(?:um+|uh+|well|hmm+|oh)[, ]+", "", t)
    return " ".join(t.split())


# A hedge at the start makes the whole answer "not sure": "kind of, I've heard of it".
_UNSURE_START = re.compile(
    r"^(?:kind of|kinda|sort of|sorta|a bit|a little|somewhat|partly|vaguely|not really sure|"
    r"i think so|i guess|i've heard of it|i have heard of it|heard of it|i've heard|not sure|"
    r"i'm not sure|im not sure|more or less)\b"
)


def classify_yes_no(text: str) -> str | None:
    """'yes', 'no', 'unsure' or None, for answers like "yeah", "nope", "not sure", "?"."""
    t = normalise(text)
    if t in UNSURE or t.endswith(" not sure") or _UNSURE_START.match(t):
        return "unsure"
    if t.endswith("?") and t.rstrip("?").strip():  # "yes?" is a hesitant yes, not a question
        t = t.rstrip("?").strip()
    if t in YES:
        return "yes"
    if t in NO:
        return "no"
    first = re.split(r"[ ,]", t, maxsplit=1)[0]
    if first in {"yes", "yeah", "yep", "yup", "y"}:
        return "yes"
    if first in {"no", "nope", "nah", "n"}:
        return "no"
    return None


def looks_like_question(text: str) -> bool:
    t = text.strip()
    if t.endswith("?") and len(t) > 2:
        return True
    first = normalise(t).split(" ", 1)[0] if t else ""
    return first in QUESTION_WORDS and len(t.split()) >= 3


_KNOW_RE = re.compile(r"^(?:i )?(?:already |do )?know(?: about| all about)?\s+(.+)$")
_EXPLAIN_RE = re.compile(
    r"^(?:please |can you |could you )?(?:explain|re-explain|reexplain|tell me about|teach me|go back to|show me|"
    r"back to|revisit)\s+(.+?)(?:\s+again)?(?: please)?$"
)
_PRONOUNS = {"it", "that", "this", "again", "this one", "that again", "it again", "this again", "more"}


def chunks(text: str) -> list[str]:
    """Split a section into readable pieces of a few paragraphs; code blocks stay whole."""
    pieces: list[str] = []
    cur: list[str] = []
    size = 0
    for b in blocks(text):
        is_heading = b.lstrip().startswith("#")
        # "... as follows:" introduces the block after it (a list, code): never part them.
        introduced = bool(cur) and cur[-1].rstrip().endswith(":") and not is_heading
        if cur and not introduced and (is_heading or size + len(b) > CHUNK_CHARS or len(cur) >= CHUNK_BLOCKS):
            pieces.append("\n\n".join(cur))
            cur, size = [], 0
        cur.append(b)
        size += len(b)
    if cur:
        pieces.append("\n\n".join(cur))
    return pieces


class Phase(StrEnum):
    """Where the walk is: what the guide waits for from the reader."""

    START = "start"
    ASK = "ask"  # "do you already know X?"
    VERIFY = "verify"  # a claimed concept's check question
    VERIFY_GRADE = "verify-grade"  # the reader grades that answer against the key points
    EXPLAIN = "explain"  # reading the section piece by piece
    CHECK = "check"  # a check question after the section
    GRADE = "grade"  # the reader grades the check answer
    DONE = "done"


INPUT_HINTS = {
    Phase.ASK: "Answer yes, no or not sure, or ask a question",
    Phase.CHECK: "Type your answer to the check question",
    Phase.VERIFY: "Type your answer to the check question",
    Phase.VERIFY_GRADE: "Did your answer cover the points? yes or no",
    Phase.GRADE: "Did your answer match? yes, partly or no",
    Phase.DONE: "Ask about anything in the explainer, or press Ctrl+Q to quit",
}


class StateChange(BaseModel):
    concept_id: str
    state: State
    evidence: str


class Step(BaseModel):
    """What one guide step produced: the text to show and the reader-model changes."""

    text: str
    changes: list[StateChange] = Field(default_factory=list)
    finished: bool = False


class OfflineGuide:
    """The deterministic walk. Mutates the shared ReaderModel; the session persists it."""

    def __init__(self, explainer: Explainer, model: ReaderModel, index: SectionIndex | None = None):
        self.ex = explainer
        self.model = model
        self.index = index or SectionIndex(explainer)
        self.phase = Phase.START
        self.concept: str | None = None
        self.pieces: list[str] = []
        self.piece = 0
        self.check = 0
        self.right: set[int] = set()  # checks of the current concept answered right (at last)
        self.misses: dict[int, int] = {}  # times each check of the current concept was missed
        self.presented: set[str] = set()  # concepts whose section was shown in this session
        self.visited: list[str] = []  # concepts walked through in this session, in order
        # Headings with only subheadings under them are containers: the walk passes over them.
        empty = {c.id for c in explainer.concepts if not c.section.text.strip() and not c.summary and not c.checks}
        self.empty: set[str] = empty if len(empty) < len(explainer.concepts) else set()
        self._out: list[str] = []
        self._changes: list[StateChange] = []
        self._seq: int | None = None
        self._claim = ""  # the reader's words when claiming the concept in verification

    # -- public -------------------------------------------------------------------------
    def opening(self, seq: int | None = None) -> Step:
        self._begin(seq)
        first = self._next()
        if first is None:
            self._say(f"I want to explain {in_sentence(self.ex.title)} to you, but you already know everything in it.")
            step = self._finish_walk()
            assert step is not None  # not inline: the walk's end is a step of its own
            return step
        self._say(opening_question(self.ex, self.ex.concept(first)))
        self._ask(first, say=False)
        return self._end()

    def input_hint(self) -> str:
        """What the reader can type now, for the input's placeholder: at a yes/no question or a
        check, Enter alone does nothing useful, so the hint must not say "press Enter"."""
        return INPUT_HINTS.get(self.phase, "Ask a question, or press Enter to read on")

    def resume_note(self, seq: int | None = None) -> Step:
        """A short "welcome back" that repeats what we were waiting for."""
        self._begin(seq)
        if self.phase == Phase.DONE:
            self._say(f"Welcome back. We have been through all of {self.ex.title}. {progress_text(self.ex, self.model, self.empty)}")
        else:
            self._say("Welcome back. " + self._pending_prompt())
        return self._end()

    def step(self, text: str, seq: int | None = None) -> Step:
        """Interpret one reader message and produce the tutor's answer."""
        self._begin(seq)
        raw = text.strip()
        t = normalise(raw)
        if self.phase == Phase.START:
            return self.opening(seq)
        if t in HELP:
            self._say(HELP_TEXT + "\n\n" + self._pending_prompt())
            return self._end()
        if t in PROGRESS:
            self._say(progress_text(self.ex, self.model, self.empty) + ("" if self.phase == Phase.DONE else "\n\n" + self._pending_prompt()))
            return self._end()
        if t in SKIP and self.phase != Phase.DONE:
            self._skip()
            return self._end()
        strict = self.phase in (Phase.CHECK, Phase.GRADE, Phase.VERIFY, Phase.VERIFY_GRADE)  # there, "I know that ..." is an answer
        m = _KNOW_RE.match(t)
        if m and m.group(1) not in _PRONOUNS and classify_yes_no(t) is None:
            hits = find_concepts(self.ex, m.group(1), strict=strict)
            if len(hits) > 1:
                return self._which(m.group(1), hits, "I know")
            cid = hits[0] if hits else None
            if cid is not None:
                self._mark_known(cid, evidence=f"reader: {raw}")
                return self._end()
        m = _EXPLAIN_RE.match(t)
        if m:
            target = m.group(1).strip()
            if target in _PRONOUNS:
                hits = [self.concept] if self.concept else []
            else:
                hits = find_concepts(self.ex, target, strict=strict)
            if len(hits) > 1:
                return self._which(m.group(1), hits, "explain")
            cid = hits[0] if hits else None
            if cid is not None:
                self._explain(cid)
                return self._end()
            if not strict:
                titles = "; ".join(c.title for c in self.ex.concepts[:12])
                self._say(f"I couldn't find a section about \"{m.group(1)}\". The topics are: {titles}.")
                if self.phase != Phase.DONE:
                    self._say(self._pending_prompt())
                return self._end(finished=self.phase == Phase.DONE)
        if self.phase == Phase.ASK:
            return self._on_ask(raw, t)
        if self.phase == Phase.EXPLAIN:
            if t in MORE:
                self._continue_explaining()
                return self._end()
            if looks_like_question(raw):
                return self._answer_question(raw)
            self._continue_explaining()
            return self._end()
        if self.phase == Phase.VERIFY:
            return self._on_verify(raw, t)
        if self.phase == Phase.VERIFY_GRADE:
            return self._on_verify_grade(raw, t)
        if self.phase == Phase.CHECK:
            return self._on_check(raw, t)
        if self.phase == Phase.GRADE:
            return self._on_grade(raw, t)
        # done
        if raw and (looks_like_question(raw) or len(t.split()) >= 2):
            return self._answer_question(raw)
        self._say(
            f"We have been through all of {self.ex.title}. Ask me anything about it, "
            "or type 'explain <topic>' to go over a section again."
        )
        return self._end(finished=True)

    def skip(self, seq: int | None = None) -> Step:
        """Skip the current concept: not marked known, just not offered again."""
        self._begin(seq)
        self._skip()
        return self._end()

    def mark_known(self, concept_id: str, evidence: str = "", seq: int | None = None) -> Step:
        """The reader's override "I already know X"."""
        self._begin(seq)
        self._mark_known(concept_id, evidence)
        return self._end()

    def explain(self, concept_id: str, seq: int | None = None) -> Step:
        """The reader's override "explain X (again)": present X now, then carry on."""
        self._begin(seq)
        self._explain(concept_id)
        return self._end()

    def _skip(self) -> None:
        if self.phase == Phase.DONE or self.concept is None:
            self._say("There is nothing left to skip.")
            return
        c = self.ex.concept(self.concept)
        self.model.skipped.add(c.id)
        self._mark_visited(c.id)
        self._say(f"Skipping {ending(in_sentence(c.title), '.')}")
        self._advance()

    def _mark_known(self, concept_id: str, evidence: str = "") -> None:
        c = self.ex.concept(concept_id)
        self._set(c.id, State.KNOWN, evidence or f"reader: I already know {in_sentence(c.title)}")
        self._mark_visited(c.id)
        self._say(f"Noted: you already know {ending(in_sentence(c.title), '.')}")
        if self.concept == c.id or self.phase in (Phase.START, Phase.DONE):
            self._advance()
        else:
            self._say(self._pending_prompt())

    def _explain(self, concept_id: str) -> None:
        c = self.ex.concept(concept_id)
        self.concept = c.id
        self.check = 0
        self.model.skipped.discard(c.id)
        self._start_explaining(c, again=self.was_presented(c.id))

    def was_presented(self, concept_id: str) -> bool:
        """Whether the reader has already been shown this concept: this session's walk, or
        (after a changed explainer restarted the walk) a state only reading it could give."""
        return concept_id in self.presented or self.model.state(concept_id) in PRESENTED

    def _which(self, wording: str, hits: list[str], verb: str) -> Step:
        """An ambiguous name: ask which concept was meant instead of guessing."""
        options = "; ".join(f"{self.ex.concept(h).title} ({verb} {h})" for h in hits)
        self._say(f"\"{wording}\" could mean more than one section: {options}. Which one did you mean?")
        if self.phase != Phase.DONE:
            self._say(self._pending_prompt())
        return self._end(finished=self.phase == Phase.DONE)

    # -- phases -----------------------------------------------------------------------------
    def _on_ask(self, raw: str, t: str) -> Step:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        answer = classify_yes_no(raw)
        if answer is None and looks_like_question(raw):
            return self._answer_question(raw)
        if answer in ("yes", "unsure") and c.checks:
            # A claim is verified with one check before the concept is skipped: a reader who
            # says yes to everything would otherwise skip everything (tutor eval: the
            # overclaimer). "Not sure" gets the same short probe instead of the whole section.
            self.phase = Phase.VERIFY
            self.check = 0
            self._claim = raw
            lead = "Good. One quick question to confirm, then we move on:" if answer == "yes" else "Let's see what you already know:"
            self._say(f"{lead} {c.checks[0].question}\n\n(Type your answer, or 'not sure'.)")
            return self._end()
        if answer == "yes":
            return self._skip_known(c, f"reader: {raw} (claimed; the concept has no check to verify it)", "Good, then we skip")
        if answer in ("no", "unsure"):
            self._start_explaining(c, again=False)
            return self._end()
        self._say(f"Please answer yes, no or not sure: do you already know about {ending(in_sentence(c.title), '?')} (Or ask a question, or type 'skip'.)")
        return self._end()

    def _skip_known(self, c: Concept, evidence: str, lead: str) -> Step:
        """The reader knows ``c``: record why, say so, and ask about the next concept."""
        self._set(c.id, State.KNOWN, evidence)
        self._mark_visited(c.id)
        self._say(f"{lead} {ending(in_sentence(c.title), '.')}")
        self._advance()
        return self._end()

    def _on_verify(self, raw: str, t: str) -> Step:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        q = c.checks[0]
        if raw.endswith("?") and len(raw) > 2 and classify_yes_no(raw) is None:
            return self._answer_question(raw)
        if t == "" or t in UNSURE or t in NO:
            self._say("No problem: let's go through it.")
            self._start_explaining(c, again=False)
            return self._end()
        wrong = matched_misconception(raw, q.misconceptions)
        if wrong is not None:
            self._say(f"That is a common mix-up: {ending(wrong, '.')} Let's go through the section.")
            self._start_explaining(c, again=False)
            return self._end()
        if matches_reference(raw, q.answer):
            return self._skip_known(c, f"reader claimed it ({self._claim}) and answered a check: {q.question}",
                                    "Right, that matches the explainer. We skip")
        self.phase = Phase.VERIFY_GRADE
        self._say("The explainer's answer, point by point:\n\n" + key_points(q.answer)
                  + "\n\nOffline I can't judge a free-text answer: did yours cover these? (yes / no)")
        return self._end()

    def _on_verify_grade(self, raw: str, t: str) -> Step:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        answer = classify_yes_no(raw)
        if answer is None and looks_like_question(raw):
            return self._answer_question(raw)
        if answer == "yes":
            return self._skip_known(c, f"reader claimed it ({self._claim}) and self-graded a check right: {c.checks[0].question}",
                                    "Good, then we skip")
        if answer in ("no", "unsure"):
            self._say("Then let's go through it.")
            self._start_explaining(c, again=False)
            return self._end()
        self._say("Did your answer cover the explainer's points? Please say yes or no.")
        return self._end()

    def _on_check(self, raw: str, t: str) -> Step:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        q = c.checks[self.check]
        if raw.endswith("?") and len(raw) > 2 and classify_yes_no(raw) is None:
            return self._answer_question(raw)
        if t == "":
            self._say("Type your answer in your own words (or 'skip').")
            return self._end()
        wrong = matched_misconception(raw, q.misconceptions)
        if t in UNSURE or wrong is not None:
            why = f"reader's answer matched a known misconception: {q.question}" if wrong else f"reader could not answer: {q.question}"
            self._set(c.id, State.SHAKY, why)
            if wrong is not None:  # named at once: the reader said it word for word
                self._say(f"That is a common mix-up: {ending(wrong, '.')}")
            else:
                self._say("No problem.")
            self._repair(c, q)
            return self._end()
        if matches_reference(raw, q.answer):
            self._say("Right: that matches the explainer's answer.\n\n" + key_points(q.answer))
            return self._graded_right(c, q, how="matched the reference answer")
        self.phase = Phase.GRADE
        self._say(
            "The explainer's answer, point by point:\n\n"
            + key_points(q.answer)
            + "\n\nOffline I can't judge a free-text answer, so you decide: did yours cover these? (yes / no)"
        )
        return self._end()

    def _repair(self, c: Concept, q: CheckQuestion) -> None:
        """A missed check: the part of the section that answers it (not the whole section
        again), then the same question once more; after a second miss, the answer."""
        n = self.misses.get(self.check, 0) + 1
        self.misses[self.check] = n
        if n >= 2:
            answer = q.answer.strip() or "(The explainer gives no reference answer for this question.)"
            self._say("Here is the explainer's answer:\n\n" + _quote(answer))
            self._misconceptions(q.misconceptions)
            self._say("We can come back to it: type 'explain " + c.id + " again' any time.")
            self.check += 1
            self._after_check(c)
            return
        piece = best_piece(c.section.text, q.answer) or (chunks(c.section.text) or [c.summary])[0]
        self._say(f"This part of § {c.section.heading} answers it:\n\n{piece}")
        self.phase = Phase.CHECK
        self._say(f"So, once more: {q.question}\n\n(Type your answer, or 'skip'.)")

    def _graded_right(self, c: Concept, q: CheckQuestion, *, how: str) -> Step:
        self.right.add(self.check)
        if all(i in self.right for i in range(len(c.checks))):
            what = "the check" if len(c.checks) == 1 else f"all {len(c.checks)} checks"
            self._set(c.id, State.UNDERSTOOD, f"reader answered {what} correctly ({how}): {q.question}")
        self._say("Well done.")
        self.check += 1
        self._after_check(c)
        return self._end()

    def _on_grade(self, raw: str, t: str) -> Step:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        q = c.checks[self.check]
        answer = classify_yes_no(raw)
        if answer is None and looks_like_question(raw):
            return self._answer_question(raw)
        if answer == "yes":
            # Understood once every check has been answered right, a missed one at its
            # second try included (a missed check is asked again, see _repair).
            return self._graded_right(c, q, how="self-graded")
        if answer in ("no", "unsure"):
            self._set(c.id, State.SHAKY, f"reader's answer was wrong (self-graded): {q.question}")
            self._misconceptions(q.misconceptions)
            self._repair(c, q)
            return self._end()
        self._say("Did your answer match the explainer's? Please say yes or no.")
        return self._end()

    # -- walking ---------------------------------------------------------------------------
    def _next(self) -> str | None:
        return self.model.next_concept(exclude=set(self.visited) | self.empty)

    def _advance(self) -> None:
        nxt = self._next()
        if nxt is None:
            self._finish_walk(inline=True)
            return
        self._ask(nxt)

    def _ask(self, cid: str, *, say: bool = True) -> None:
        c = self.ex.concept(cid)
        self.concept = cid
        self.phase = Phase.ASK
        self.check = 0
        if self.model.state(cid) == State.UNKNOWN:
            self._set(cid, State.ASKED, f"asked whether the reader knows {in_sentence(c.title)}")
        if say:
            self._say(f"Next: {ending(c.title, '.')} Do you already know about it? (yes / no / not sure)")

    def _start_explaining(self, c: Concept, *, again: bool, say_intro: bool = True) -> None:
        self.phase = Phase.EXPLAIN
        self.concept = c.id
        self.pieces = chunks(c.section.text) or [c.summary or "(This section has no text of its own.)"]
        self.piece = 0
        self.presented.add(c.id)
        if say_intro and again:
            self._say(f"Let's go over {in_sentence(c.title)} again.")
        self._show_piece(c)

    def _show_piece(self, c: Concept) -> None:
        n = len(self.pieces)
        head = f"From § {c.section.heading}:" if self.piece == 0 else f"(§ {c.section.heading}, continued)"
        self._say(head + "\n\n" + self.pieces[self.piece])
        if self.piece + 1 < n:
            self._say(f"({self.piece + 1}/{n}. Press Enter or type 'more' to read on, or ask a question.)")
        else:
            self._done_explaining(c)

    def _continue_explaining(self) -> None:
        assert self.concept is not None
        c = self.ex.concept(self.concept)
        if self.piece + 1 < len(self.pieces):
            self.piece += 1
            self._show_piece(c)
        else:
            self._done_explaining(c)

    def _done_explaining(self, c: Concept) -> None:
        if self.model.state(c.id) not in (State.SHAKY, State.UNDERSTOOD, State.KNOWN):
            self._set(c.id, State.EXPLAINED, f"presented § {c.section.heading}")
        self._after_check(c, first=True)

    def _after_check(self, c: Concept, *, first: bool = False) -> None:
        if self.check < len(c.checks):
            if self.check == 0:  # a new round of this concept's checks
                self.right, self.misses = set(), {}
            self.phase = Phase.CHECK
            total = len(c.checks)
            label = "Check" if total == 1 else f"Check {self.check + 1} of {total}"
            self._say(f"{label}: {c.checks[self.check].question}\n\n(Type your answer, or 'skip'.)")
            return
        self._mark_visited(c.id)
        self._advance()

    def _finish_walk(self, inline: bool = False) -> Step | None:
        self.phase = Phase.DONE
        self.concept = None
        self._say(progress_text(self.ex, self.model, self.empty, final=True))
        self._finished = True
        return None if inline else self._end(finished=True)

    def _mark_visited(self, cid: str) -> None:
        if cid not in self.visited:
            self.visited.append(cid)

    # -- answers ---------------------------------------------------------------------------
    def _answer_question(self, question: str) -> Step:
        quote = best_passage(self.index, self.ex, question)
        if quote is not None:
            h = quote
            ahead = (h.concept_id != self.concept and not self.was_presented(h.concept_id)
                     and not self.model.is_done(h.concept_id) and self.phase != Phase.DONE)
            lead = f"We will get to this in § {h.heading}; for now, here is what it says" if ahead else f"Here is what the explainer says in § {h.heading}"
            self._say(f"{lead}:\n\n" + _quote(_trim(h.passage)))
        else:
            self._say(
                "I couldn't find that in the explainer. (Offline I can only search its text; "
                "with ANTHROPIC_API_KEY set, Claude can answer in its own words.)"
            )
        if self.phase != Phase.DONE:
            self._say("Back to where we were: " + self._pending_prompt())
        return self._end(finished=self.phase == Phase.DONE)

    def _pending_prompt(self) -> str:
        c = self.ex.concept(self.concept) if self.concept is not None and self.phase != Phase.DONE else None
        return pending_prompt(self.phase, c, part=(self.piece + 1, len(self.pieces)), check=self.check)

    def _misconceptions(self, items: list[str]) -> None:
        if items:
            self._say("A common mix-up: " + " Another: ".join(m.rstrip(".") + "." for m in items))

    # -- plumbing ---------------------------------------------------------------------------
    def _begin(self, seq: int | None) -> None:
        self._out = []
        self._changes = []
        self._seq = seq
        self._finished = False

    def _say(self, text: str) -> None:
        if text:
            self._out.append(text)

    def _set(self, cid: str, state: State, evidence: str) -> None:
        if self.model.set(cid, state, evidence, seq=self._seq):
            self._changes.append(StateChange(concept_id=cid, state=state, evidence=evidence))

    def _end(self, finished: bool = False) -> Step:
        return Step(text="\n\n".join(self._out), changes=list(self._changes), finished=finished or self._finished)


def pending_prompt(phase: Phase, c: Concept | None, *, part: tuple[int, int], check: int) -> str:
    """What the walk is waiting for, said again after a question, a help text or a resume."""
    if c is None:
        return "We have been through everything. Ask a question, or type 'explain <topic>'."
    if phase == Phase.ASK:
        return f"Do you already know about {ending(in_sentence(c.title), '?')} (yes / no / not sure)"
    if phase == Phase.EXPLAIN:
        return f"We are reading § {c.section.heading} (part {part[0]} of {part[1]}). Press Enter or type 'more' to read on."
    if phase == Phase.CHECK:
        return f"{c.checks[check].question}\n\n(Type your answer, or 'skip'.)"
    if phase == Phase.VERIFY:
        return f"{c.checks[0].question}\n\n(Type your answer, or 'not sure'.)"
    if phase == Phase.VERIFY_GRADE:
        return f"Did your answer to \"{c.checks[0].question}\" cover the explainer's points? (yes / no)"
    if phase == Phase.GRADE:
        return f"Did your answer to \"{c.checks[check].question}\" match the explainer's? (yes / no)"
    return ""


def opening_question(ex: Explainer, c: Concept) -> str:
    """ "I want to explain X to you. Do you already know about Y?" for the first concept."""
    topic = in_sentence(ex.title)
    if in_sentence(c.title).casefold() == topic.casefold():
        # A file with no headings is one concept named like the file: never ask
        # "explain X; do you know about X?".
        ask = "Do you already know it well?"
    elif ex.plain:
        # Headings of a file nobody wrote for tutor read badly as "know about X?":
        # name them as the parts they are.
        ask = f"It has {plural(len(ex.concepts), 'part')}; the first is “{c.title}”. Do you already know that part?"
    else:
        ask = f"Do you already know about {ending(in_sentence(c.title), '?')}"
    return f"I want to explain {topic} to you. {ask} (yes / no / not sure)"


def best_passage(index: SectionIndex, ex: Explainer, question: str) -> Hit | None:
    """The passage that answers ``question``: the best concept's best passage. The checks
    route a question to its section but are never quoted: that would hand the reader a
    reference answer before they try it."""
    hits = index.search(question, limit=8)
    defined = _definition_of(question, hits)
    if defined is not None:
        return defined
    top = hits[0].concept_id if hits else None
    quote = next((h for h in hits if h.concept_id == top and h.kind != "faq"), None)
    if quote is None and top is not None:
        c = ex.concept(top)
        pieces = chunks(c.section.text)
        quote = Hit(concept_id=top, heading=c.section.heading, passage=pieces[0] if pieces else c.summary, score=0.0)
    return quote


_WHAT_IS = re.compile(r"^\s*(?:what(?:'s| is| are)|define|meaning of)\s+(?:an?\s+|the\s+)?(.+?)\s*\??\s*$", re.I)


def _definition_of(question: str, hits: list[Hit]) -> Hit | None:
    """"What is a checkpoint?" wants the sentence that bolds **checkpoint**, not a shorter one
    that bolds **checkpoint starvation** (bm25 prefers short passages)."""
    m = _WHAT_IS.match(question)
    if not m:
        return None
    word = m.group(1).removesuffix("es") if m.group(1).endswith(("xes", "ses")) else m.group(1).removesuffix("s")
    term = re.compile(r"\*\*" + re.escape(word) + r"(?:es|s)?\*\*", re.I)
    return next((h for h in hits if h.kind == "term" and term.search(h.passage)), None)


def progress_text(ex: Explainer, model: ReaderModel, empty: AbstractSet[str], *, final: bool = False) -> str:
    """Where the reader is: what they knew, answered, read, should look at again, skipped."""
    groups: dict[str, list[str]] = {"known": [], "understood": [], "explained": [], "shaky": [], "skipped": []}
    for c in ex.concepts:
        if c.id in empty:
            continue
        st = model.state(c.id)
        if c.id in model.skipped and st not in DONE:
            groups["skipped"].append(c.title)
        elif st in groups:
            groups[st].append(c.title)
    lines = []
    labels = [
        ("known", "You already knew"),
        ("understood", "You answered the checks for"),
        ("explained", "We read through"),
        ("shaky", "Worth another look"),
        ("skipped", "Skipped"),
    ]
    for key, label in labels:
        if groups[key]:
            lines.append(f"- {label}: {', '.join(groups[key])}")
    head = f"That's everything in {ending(ex.title, '.')}" if final else "Where we are:"
    body = "\n".join(lines) if lines else "- Nothing covered yet."
    tail = (
        "\n\nAsk me anything about it, or type 'explain <topic>' to go over a section again."
        if final
        else ""
    )
    return f"{head}\n\n{body}{tail}"


def matches_reference(answer: str, reference: str) -> bool:
    """An answer that clearly says what the reference says: most of its content words are
    the reference's, and at least three of them. Anything less is left to the reader's own
    grading (offline cannot judge free text)."""
    if not _same_polarity(answer, reference):
        return False
    a = content_stems(answer)
    shared = a & content_stems(reference)
    return (len(shared) >= 3 and len(shared) >= 0.6 * len(a)) or _states_the_lead(a, reference)


def _states_the_lead(a: set[str], reference: str) -> bool:
    """A short answer that gives the reference's first sentence when that sentence is the
    direct answer ("None.", "The version you added."), and adds little of its own. A bare
    yes or no has no content words, so it never passes: a coin flip verifies nothing. Nor
    does a lead's words turned round: "not none", "the edited version, not the one added"."""
    lead = _lead(reference)  # its polarity was checked by matches_reference
    want = content_stems(lead)
    return bool(want) and len(lead.split()) <= 8 and want <= a and not (a - want - _HEDGES)


_NEGATION = re.compile(r"\b(?:no|not|none|never|nothing|nobody|neither|nor|cannot)\b|n't\b", re.I)
_HEDGES = frozenset({"think", "guess", "maybe", "probably", "believe", "pretty", "sure", "would", "answer"})


def _negations(text: str) -> int:
    return len(_NEGATION.findall(text.replace("’", "'")))


def _same_polarity(answer: str, reference: str) -> bool:
    """Whether the answer says no where the reference's direct answer (its first sentence)
    says no: shared words cannot tell "it does not need to" from "it would need to"."""
    return _negations(answer) % 2 == _negations(_lead(reference)) % 2


def _lead(reference: str) -> str:
    """The reference answer's first sentence: where a direct answer ("None.", "No.") stands."""
    return re.split(r"(?<=[.!?])\s+", reference.strip(), maxsplit=1)[0]


def matched_misconception(answer: str, misconceptions: list[str]) -> str | None:
    """The listed misconception the answer states, if it states one nearly word for word."""
    a = content_stems(answer)
    for m in misconceptions:
        ms = content_stems(m)
        if ms and len(a & ms) >= max(2, 0.75 * len(ms)) and len(a & ms) >= 0.6 * len(a):
            return m
    return None


def key_points(answer: str) -> str:
    """The reference answer as a list to grade against, one sentence per point."""
    text = answer.strip() or "(The explainer gives no reference answer for this question.)"
    points = [p.strip() for p in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9`])", text) if p.strip()]
    return "\n".join(f"- {p}" for p in points)


def best_piece(section: str, reference: str) -> str | None:
    """The readable piece of a section that shares the most with a reference answer."""
    want = content_stems(reference)
    scored = [(len(content_stems(p) & want), -i, p) for i, p in enumerate(chunks(section))]
    best = max(scored, default=None)
    return best[2] if best and best[0] > 0 else None


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())


def _trim(text: str, limit: int = 700) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    dot = cut.rfind(". ")
    return (cut[: dot + 1] if dot > limit // 2 else cut.rstrip()) + " ..."
