"""`tutor eval --live` end to end against the fake Messages API, with a stand-in tutor.

Why: these machines have no key, yet the live metrics and the request layout must be
exercised through the real CLI, session, SDK and store. The stand-in answers each request
from what that request carries and nothing else: the system blocks and the newest user
message (what a request holds right after a memory compaction). It follows the rules'
protocol mechanically -- diagnose, explain a little, ask a check it has not asked, grade by
word overlap with the reference, name a matching misconception, send a note when a
reference answer's number is not in its section -- so a number that moves between two
versions of the prompt moves because the request carried (or lacked) what the stand-in
needed. It is not a model: teaching quality needs a run with a key (docs/eval.md).

    python bench/eval_fake.py [--seeds 1] [--max-turns 12] [FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from tutor.explainer import load, parse  # noqa: E402

from fake_api import FakeAPI, text  # noqa: E402


def _words(s: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", s.lower()) if len(w) > 3}


def _from_request(body: dict):
    sys_text = "".join(b.get("text", "") for b in body.get("system") or [] if isinstance(b, dict))
    m = re.search(r"<explainer_file>\n(.*)\n</explainer_file>", sys_text, re.S)
    if not m:
        return None
    try:
        return parse(m.group(1).replace("&lt;", "<"), "request.md")
    except Exception:  # noqa: BLE001 - a request this stand-in cannot read: fall back to the sample
        return None


WRITTEN = {"notes": 0, "requests": 0}  # feedback tags the stand-in wrote; tutor requests answered


def stand_in(explainers: dict[str, object]):
    def reply(body: dict) -> object:
        r = _reply(body)
        WRITTEN["requests"] += 1
        WRITTEN["notes"] += r.text.count("<feedback")
        return r

    def _reply(body: dict) -> object:
        system = json.dumps(body.get("system", ""))
        # The explainer as the request carries it (a planted defect is in this copy, not on disk);
        # the loaded sample only when the request has no whole file (progressive mode).
        ex = _from_request(body) or next((e for title, e in explainers.items() if title in system), None)
        last = body["messages"][-1]["content"]
        blocks = [b["text"] for b in last if isinstance(b, dict) and b.get("type") == "text"]
        if ex is None or not blocks:
            return text("(fake reply)")
        if "Pause the tutoring" in blocks[-1]:
            return text("Covered: some concepts.\nWhat the reader knows: see states.\nStruggled with: none.\nOpen questions: none.")
        model = next((b for b in blocks if b.startswith("<reader_model>")), "")
        said = [b for b in blocks if not b.startswith("(From the tutoring software.)")][-1]  # the feedback reminder
        m = re.search(r"<reader>\n?(.*?)\n?</reader>", said, re.S)
        said = (m.group(1) if m else said).strip()
        cur = re.search(r"current concept: (\S+)", model)
        cid = cur.group(1) if cur else ex.concepts[0].id
        if cid not in {c.id for c in ex.concepts}:
            cid = ex.concepts[0].id
        c = ex.concept(cid)
        # checks the reader model lists: asked (awaiting an answer) or answered
        listed = dict(re.findall(rf"\b{re.escape(cid)}#(\d+) (\w+)", model))
        notes_sent = "\n".join(re.findall(r"<feedback_sent>(.*?)</feedback_sent>", "\n".join(blocks), re.S))
        note = ""
        order = [x.id for x in ex.concepts]
        for i, q in enumerate(c.checks):
            if re.search(rf"^- {re.escape(cid)}:", notes_sent, re.M):
                break  # said once already: the rules ask for one note per issue
            nums = set(re.findall(r"\b\d{2,}\b", q.answer)) - set(re.findall(r"\b\d{2,}\b", c.section.text))
            if nums:
                note = (f'<feedback concept="{cid}">Check {i + 1}\'s answer says {sorted(nums)[0]}, which the '
                        f'section does not say; make them agree.</feedback>')
                break
            # An answer that shares far more with a later section than with its own (or an
            # earlier one) is answering that section's question, as a reader-tutor would notice.
            said_here = max(len(_words(q.answer) & _words(x.section.text)) for x in ex.concepts[: order.index(cid) + 1])
            later = [(len(_words(q.answer) & _words(x.section.text)), x) for x in ex.concepts[order.index(cid) + 1 :]]
            best = max(later, key=lambda t: t[0], default=(0, None))
            if best[1] is not None and best[0] >= 6 and best[0] >= 2 * max(said_here, 1):
                note = (f'<feedback concept="{cid}">Check {i + 1}\'s answer is about § {best[1].section.heading}, '
                        f'not § {c.section.heading}; give it an answer from this section.</feedback>')
                break
        low = said.lower()
        if said.startswith("(") or not said:
            return text(f'Hi! Do you already know about {c.title.lower()}? <state concept="{cid}" value="asked"/>{note}')
        q_no = next((i for i in range(len(c.checks)) if str(i + 1) not in listed), 0)  # the next one to ask
        pending = next((int(n) - 1 for n, o in listed.items() if o == "asked" and int(n) <= len(c.checks)), None)
        if low in ("yes", "no", "not sure", "kind of") or low.startswith(("yes", "no ", "got it")):
            q = c.checks[q_no] if c.checks else None
            lead = " ".join(c.section.text.replace("`", "").split()[:60])
            ask = f" Check: {q.question}" if q else ""
            tag = f' check="{q_no + 1}"' if q else ""
            return text(f'{lead} (see § {c.section.heading}).{ask} <state concept="{cid}" value="explained"{tag}/>{note}')
        if pending is not None:
            q_no = pending  # grade the check that is waiting for this answer
        q = c.checks[q_no] if c.checks else None
        if q is None:
            return text(f'Thanks. <state concept="{cid}" value="understood">answered</state>{note}')
        for mis in q.misconceptions:
            if len(_words(mis) & _words(said)) >= max(2, len(_words(mis)) // 2):
                return text(f'Not quite: that is the idea that {mis.rstrip(".").lower()}. What does § {c.section.heading} '
                            f'say instead? <state concept="{cid}" value="shaky" check="{q_no + 1}">misconception</state>{note}')
        if len(_words(q.answer) & _words(said)) >= max(2, len(_words(q.answer)) // 3):
            order = [x.id for x in ex.concepts]
            nxt = order[order.index(cid) + 1] if order.index(cid) + 1 < len(order) else None
            more = (f' Next: {ex.concept(nxt).title}. Do you already know about it? <state concept="{nxt}" value="asked"/>'
                    if nxt else "")
            return text(f'Right. <state concept="{cid}" value="understood" check="{q_no + 1}">check {q_no + 1} right</state>'
                        f'{more}{note}')
        return text(f'Not yet. Hint: look at § {c.section.heading} again. '
                    f'<state concept="{cid}" value="shaky" check="{q_no + 1}">missed</state>{note}')

    return reply


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", default=[str(ROOT / "explainers")])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--max-turns", type=int, default=12)
    ap.add_argument("--defects", action="store_true")
    args = ap.parse_args()
    paths = [p for f in args.files for p in (sorted(Path(f).glob("*.md")) if Path(f).is_dir() else [Path(f)])]
    explainers = {load(p).title: load(p) for p in paths}
    with FakeAPI() as api:
        api.handler = stand_in(explainers)
        env = {**os.environ, "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
        env.pop("TUTOR_BASE_URL", None)
        cmd = [sys.executable, "-m", "tutor", "eval", *map(str, paths), "--live", "--seeds", str(args.seeds),
               "--max-turns", str(args.max_turns), "--json", "--budget", "100"] + (["--defects"] if args.defects else [])
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return r.returncode
    data = json.loads(r.stdout)
    keys = ("telling_rate", "praised_wrong_rate", "misconception_remediation", "words_per_reply_median",
            "questions_per_reply", "tag_leaks", "refused_state_tags", "checks_reasked", "cost_usd")
    print("persona".ljust(22) + " ".join(k[:12].rjust(12) for k in keys))
    for p in data["personas"] + [{"name": "all", "metrics": data["overall"]}]:
        vals = [p["metrics"].get(k) for k in keys]
        print(p["name"].ljust(22) + " ".join("-".rjust(12) if v is None else f"{v:12.4g}" for v in vals))
    if "defects" in data:
        print("defects:", json.dumps(data["defects"].get("scores")))
        notes = sum(x.get("notes_on_target", 0) for x in data["defects"].get("planted", []))
        total = sum(x.get("notes", 0) for x in data["defects"].get("planted", []))
        print(f"notes stored: {total}, on target: {notes}")
    print(f"feedback tags written by the stand-in: {WRITTEN['notes']} in {WRITTEN['requests']} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
