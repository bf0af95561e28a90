"""The simulated reader: reads the tutor's words, answers as its persona would, learns by rule.

It sees only what a reader sees (the tutor's visible text) plus the explainer, and finds in
that text what any reader would: a "do you know X?" question, one of the explainer's check
questions, an explanation of a section, a misconception being named. It never reads the
session's internal state, so the same reader plays against the offline guide and a model.

Learning rule: a concept is learned when the tutor has shown enough of its section's words
(LEARN_COVERAGE) while its prerequisites are known or learned, unless the reader holds a
misconception about it that the tutor has not named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tutor.engine.reader_model import in_sentence
from tutor.eval.personas import Behaviour, Claim, Persona, Truth
from tutor.explainer import CheckQuestion, Concept, Explainer

LEARN_COVERAGE = 0.4  # share of a section's content words the reader must have been shown
MATCH = 0.6  # share of a check question's (or misconception's) words that identify it
_WORD = re.compile(r"[a-z0-9][a-z0-9'+-]*")
_STOP = frozenset(
    "the a an and or of to in on is are was were be been it its this that these those for with as by at from "
    "what why how when where which who can does do did you your yes no not have has had will would should "
    "could than then there their they them we our us i me my so if but into about also just only each every "
    "one two any all some more most such very same other own".split()
)
_ASK = re.compile(r"\b(?:do|did) you (?:already )?know\b|\bare you familiar\b|\bhave you (?:met|seen|used|heard)\b", re.I)
_GRADE = re.compile(r"did you get it right|did (?:your answer|yours) (?:match|cover)|you decide", re.I)
_MORE = re.compile(r"press enter|type 'more'|read on|shall we (?:go on|continue)|ready to move on", re.I)


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if len(w) > 2 and w not in _STOP}


def pairs(text: str) -> set[tuple[str, str]]:
    """Consecutive content-word pairs: a sentence's gist, which a bag of words is not."""
    w = [x for x in _WORD.findall(text.casefold()) if len(x) > 2 and x not in _STOP]
    return set(zip(w, w[1:]))


def names(belief: str, text: str) -> bool:
    """Whether ``text`` names the misconception ``belief``: word for word, or most of its
    word pairs. (Its words alone are everywhere in the section that corrects it.)"""
    flat = " ".join(text.casefold().split())
    if " ".join(belief.casefold().split()).rstrip(".") in flat:
        return True
    want = pairs(belief)
    return bool(want) and len(want & pairs(text)) / len(want) >= MATCH


def overlap(part: str, whole_words: set[str]) -> float:
    """Share of ``part``'s content words that appear in ``whole_words``."""
    w = words(part)
    return len(w & whole_words) / len(w) if w else 0.0


@dataclass
class Attempt:
    concept_id: str
    question: str
    correct: bool
    turn: int


@dataclass
class SimulatedReader:
    persona: Persona
    explainer: Explainer
    truth: Truth
    learned: set[str] = field(default_factory=set)
    shown: dict[str, set[str]] = field(default_factory=dict)  # concept -> section words seen
    named: set[str] = field(default_factory=set)  # concepts whose planted misconception was named
    claims: dict[str, str] = field(default_factory=dict)  # concept -> what the reader claimed first
    attempts: list[Attempt] = field(default_factory=list)
    pushbacks: list[tuple[str, int]] = field(default_factory=list)  # (concept, turn)
    told_before_attempt: list[str] = field(default_factory=list)  # check questions answered for it
    checks_seen: list[str] = field(default_factory=list)
    asked_tangent: bool = False
    asked_for_answer: set[str] = field(default_factory=set)
    focus: str | None = None  # the concept the reader thinks is in play (asked, checked, explained)
    _last_attempt: Attempt | None = None
    _pending_check: CheckQuestion | None = None

    def __post_init__(self) -> None:
        # A section's own words: the ones no earlier section used. Otherwise reading the
        # first section would teach the next by their shared words.
        self._vocab: dict[str, set[str]] = {}
        earlier: set[str] = set()
        for c in self.explainer.concepts:
            mine = words(c.section.text)
            self._vocab[c.id] = (mine - earlier) or mine
            earlier |= mine
        self._checks = [(c, q, words(q.question)) for c in self.explainer.concepts for q in c.checks]
        self._by_heading = {c.section.heading.casefold(): c for c in self.explainer.concepts}

    # -- truth -----------------------------------------------------------------------------
    def understands(self, cid: str) -> bool:
        return cid in self.truth.known or cid in self.learned

    # -- one turn --------------------------------------------------------------------------
    def respond(self, tutor_text: str, turn: int) -> str:
        """The reader's next message after ``tutor_text`` (an empty string is Enter)."""
        tw = words(tutor_text)
        self._see(tutor_text, tw)
        if self._pending_check is not None and overlap(self._pending_check.answer, tw) >= 0.7:
            if not self._answered(self._pending_check):
                self.told_before_attempt.append(self._pending_check.question)
        check = self._find_check(tutor_text)
        if _GRADE.search(tutor_text) and self._last_attempt is not None:
            # Offline self-grading: the honest reader says whether it was right.
            right = self._last_attempt.correct or Behaviour.FAKE_GOT_IT in self.persona.behaviours
            return "yes" if right else "no"
        if check is not None:
            c, q = check
            self.focus = c.id
            self._pending_check = q
            if q.question not in self.checks_seen:
                self.checks_seen.append(q.question)
            return self._answer(c, q, turn)
        asked = self._asked_about(tutor_text)
        if asked is not None:
            self.focus = asked
            return self._claim(asked)
        if self._last_attempt is not None and not self._last_attempt.correct and self._told_wrong(tutor_text):
            cid = self._last_attempt.concept_id
            if Behaviour.PUSHES_BACK in self.persona.behaviours and not any(p == cid for p, _ in self.pushbacks):
                self.pushbacks.append((cid, turn))
                belief = self.truth.misconceptions.get(cid, "my answer")
                return f"My notes say {belief.rstrip('.')}, so I think I was right."
        if (Behaviour.TANGENT in self.persona.behaviours and not self.asked_tangent and self.shown):
            self.asked_tangent = True
            last = self.explainer.concepts[-1]
            return f"Unrelated, but how does this connect to {in_sentence(last.title)}?"
        if _MORE.search(tutor_text):
            return ""
        return "ok, go on"

    # -- perception ------------------------------------------------------------------------
    def _see(self, text: str, tw: set[str]) -> None:
        for c in self.explainer.concepts:
            vocab = self._vocab[c.id]
            if not vocab:
                continue
            cited = f"§ {c.section.heading}".casefold() in text.casefold()
            got = vocab & tw
            if cited or len(got) >= 0.2 * len(vocab):
                before = len(self.shown.get(c.id, ()))
                self.shown.setdefault(c.id, set()).update(got)
                if len(self.shown[c.id]) - before >= 10:
                    self.focus = c.id  # a substantial new part of this section
            m = self.truth.misconceptions.get(c.id)
            if m and c.id not in self.named and names(m, text):
                self.named.add(c.id)
        for c in self.explainer.concepts:  # in teaching order, so a prerequisite learned now counts
            self._maybe_learn(c)

    def _maybe_learn(self, c: Concept) -> None:
        if self.understands(c.id):
            return
        vocab = self._vocab[c.id]
        seen = len(self.shown.get(c.id, ())) / len(vocab) if vocab else 0.0
        ready = all(self.understands(p) for p in c.prerequisites if p in self._vocab)
        blocked = c.id in self.truth.misconceptions and c.id not in self.named
        if seen >= LEARN_COVERAGE and ready and not blocked:
            self.learned.add(c.id)

    def _find_check(self, text: str) -> tuple[Concept, CheckQuestion] | None:
        low = " ".join(text.casefold().split())
        best: tuple[float, Concept, CheckQuestion] | None = None
        # A paraphrased check is where a tutor puts a question: at the end of its reply. Words
        # of the question spread over an explanation are not a check.
        tw = words(text[-400:])
        for c, q, qw in self._checks:
            score = 1.0 if " ".join(q.question.casefold().split()) in low else (len(qw & tw) / len(qw) if qw else 0)
            if score >= 0.85 and (best is None or score > best[0]):
                best = (score, c, q)
        if best is None:
            return None
        # A question quoted back in a grading prompt is not a new check.
        if _GRADE.search(text):
            return None
        return best[1], best[2]

    def _asked_about(self, text: str) -> str | None:
        found_asks = list(_ASK.finditer(text))
        if not found_asks:
            return None
        m = found_asks[-1]  # the last "do you know" is the one waiting for an answer
        low = text.casefold()
        stop = low.find("?", m.end())
        after = low[m.end() : stop if stop >= 0 else m.end() + 120]  # "... know about X?"
        before = low[: m.start()]  # "Next: X. Do you already know about it?"
        best_after: tuple[int, str] | None = None
        best_before: tuple[int, int, str] | None = None
        for c in self.explainer.concepts:
            # the title, the heading, or the id as words ("code-points" -> "code points"):
            # a model names a concept more loosely than the guide does
            for name in {c.title.casefold(), in_sentence(c.title).casefold(), c.section.heading.casefold(),
                         c.id.replace("-", " ").casefold()}:
                pos = after.find(name)
                if pos >= 0 and (best_after is None or (pos, -len(name)) < (best_after[0], 0)):
                    best_after = (pos, c.id)
                pos = before.rfind(name)
                end = pos + len(name)  # the name that ends last wins: "X turns code points into bytes" over "code points"
                if pos >= 0 and (best_before is None or (end, len(name)) > best_before[:2]):
                    best_before = (end, len(name), c.id)
        if best_after is not None:
            return best_after[1]
        return best_before[2] if best_before else None

    @staticmethod
    def _told_wrong(text: str) -> bool:
        return bool(re.search(r"go over (?:it|the section) again|not quite|a common mix-up|that's not right|not correct", text, re.I))

    def _answered(self, q: CheckQuestion) -> bool:
        return any(a.question == q.question for a in self.attempts)

    # -- answers ---------------------------------------------------------------------------
    def _claim(self, cid: str) -> str:
        knows = self.understands(cid)
        claim = self.persona.claim
        if claim is Claim.OVERCLAIMS:
            said = "yes"
        elif claim is Claim.UNDERCLAIMS:
            said = "not sure"
        elif claim is Claim.PARTIAL:
            said = "kind of" if knows else "no"
        else:
            said = "yes" if knows else "no"
        self.claims.setdefault(cid, said)
        return said

    def _answer(self, c: Concept, q: CheckQuestion, turn: int) -> str:
        belief = self.truth.misconceptions.get(c.id)
        if self.understands(c.id):
            first = re.split(r"(?<=[.!?])\s", q.answer.strip(), maxsplit=1)[0] if q.answer.strip() else "I think I know this."
            att = Attempt(c.id, q.question, True, turn)
            text = f"I think {first[0].lower() + first[1:] if first else first}"
        elif belief is not None and c.id not in self.named:
            att = Attempt(c.id, q.question, False, turn)
            text = f"I think {belief[0].lower() + belief[1:]}"
        elif Behaviour.ASKS_FOR_ANSWER in self.persona.behaviours and self._answered(q) and q.question not in self.asked_for_answer:
            self.asked_for_answer.add(q.question)
            att = Attempt(c.id, q.question, False, turn)
            text = "Can you just tell me the answer?"
        else:
            att = Attempt(c.id, q.question, False, turn)
            text = "not sure"
        self.attempts.append(att)
        self._last_attempt = att
        return text
