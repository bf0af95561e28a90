"""Simulated readers for ``tutor eval``, decided by code, not by a model.

LLM "students" are too competent and drop a misconception after any feedback, so what a
persona knows, claims, answers and learns here is deterministic and seeded. Each persona is
a claim policy, an amount of prior knowledge, planted misconceptions and a few behaviours;
the reader that plays one is in ``reader.py``. The roster and why: docs/eval.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

from tutor.explainer import Explainer


class Claim(Enum):
    """How a persona answers "do you already know about X?"."""

    HONEST = "honest"  # yes exactly when it knows X
    OVERCLAIMS = "overclaims"  # yes to everything
    UNDERCLAIMS = "underclaims"  # "not sure" even about what it knows
    PARTIAL = "partial"  # "kind of" about what it knows, no otherwise


class Behaviour(Enum):
    ASKS_FOR_ANSWER = "asks for the answer"  # after one failed try: "just tell me"
    PUSHES_BACK = "pushes back"  # "my notes say ..." after being told it was wrong
    FAKE_GOT_IT = "says got it"  # claims a check was right without understanding
    TANGENT = "asks a tangent"  # one off-topic question after the first explanation


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    known_share: float  # share of concepts known before the session (prerequisites first)
    claim: Claim = Claim.HONEST
    misconceptions: bool = False  # holds each unknown concept's first listed misconception
    behaviours: frozenset[Behaviour] = field(default_factory=frozenset)

    def truth(self, ex: Explainer, seed: int) -> Truth:
        """What this persona knows and believes about ``ex``, the same for the same seed."""
        rng = random.Random(f"{self.name}:{ex.content_hash}:{seed}")
        ids = [c.id for c in ex.concepts]
        want = round(self.known_share * len(ids))
        known: set[str] = set()
        # Knowledge respects prerequisites: pick among concepts whose prerequisites are known.
        while len(known) < want:
            ready = [c.id for c in ex.concepts if c.id not in known and all(p in known for p in c.prerequisites)]
            if not ready:
                break
            known.add(rng.choice(ready) if seed else ready[0])
        beliefs: dict[str, str] = {}
        if self.misconceptions:
            for c in ex.concepts:
                if c.id in known:
                    continue
                planted = [m for q in c.checks for m in q.misconceptions]
                if planted:
                    beliefs[c.id] = planted[0] if not seed else rng.choice(planted)
        return Truth(known=frozenset(known), misconceptions=beliefs)


@dataclass(frozen=True)
class Truth:
    known: frozenset[str]  # concept ids known before the session
    misconceptions: dict[str, str]  # concept id -> the wrong belief the reader holds


_ALL = 1.0
PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona("novice", "knows nothing, says so", 0.0),
        Persona("expert", "knows everything, says so", _ALL),
        Persona("overclaimer", "knows a third, says yes to every 'do you know'", 1 / 3, Claim.OVERCLAIMS,
                behaviours=frozenset({Behaviour.FAKE_GOT_IT})),
        Persona("underclaimer", "knows two thirds, says 'not sure' to everything", 2 / 3, Claim.UNDERCLAIMS),
        Persona("half-known", "knows half, hedges ('kind of') about what it knows", 0.5, Claim.PARTIAL,
                behaviours=frozenset({Behaviour.TANGENT})),
        Persona("misconception-holder", "knows nothing and holds the explainer's own misconceptions", 0.0,
                misconceptions=True, behaviours=frozenset({Behaviour.PUSHES_BACK, Behaviour.ASKS_FOR_ANSWER})),
    )
}
