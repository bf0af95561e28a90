"""tutor eval: simulated readers against real sessions, through the real CLI (issue 12)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tutor.cli import cli
from tutor.eval.personas import PERSONAS, Persona
from tutor.eval.reader import SimulatedReader
from tutor.explainer import load

from conftest import EXPLAINERS, ROOT

THRESHOLDS = ROOT / "tests" / "eval" / "thresholds.yaml"
QUESTIONS = ROOT / "tests" / "eval" / "questions"
UTF8 = EXPLAINERS / "unicode-utf8.md"


def run(*args, env=None):
    return CliRunner().invoke(cli, ["eval", *map(str, args)], env=env, catch_exceptions=False)


def run_main(*args, env=None):
    """The real entry point, for what main() turns into one or two lines on stderr."""
    full = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TUTOR_BASE_URL")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "tutor", "eval", *map(str, args)], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=120)


def test_the_offline_eval_holds_the_thresholds_kept_in_the_repo():
    """What CI enforces: every persona on every sample explainer, against the offline guide."""
    r = run(EXPLAINERS, "--offline", "--defects", "--thresholds", THRESHOLDS, "--questions", QUESTIONS)
    assert r.exit_code == 0, r.output
    assert "All metrics within" in r.output
    for name in ("novice", "expert", "over", "under", "half", "misconc"):
        assert name in r.stdout.splitlines()[0]


def test_json_names_each_persona_with_its_metrics_and_is_the_same_every_time():
    a = run(UTF8, "--json", "--questions", QUESTIONS)
    b = run(UTF8, "--json", "--questions", QUESTIONS)
    assert a.exit_code == 0, a.output
    data = json.loads(a.stdout)

    def untimed(d):  # the time to the first word is a measurement of the machine, not the reader
        for item in d["personas"] + d["runs"] + [{"metrics": d["overall"]}]:
            item["metrics"].pop("first_token_s_median")
        return d

    assert untimed(json.loads(b.stdout)) == untimed(json.loads(a.stdout))  # decided by code and seeded
    names = [p["name"] for p in data["personas"]]
    assert names == list(PERSONAS)
    for p in data["personas"]:
        assert {"diagnosis_accuracy", "turns", "turns_on_known"} <= set(p["metrics"])
    assert data["routing"]["unicode-utf8.md"] is not None


def test_an_overclaimer_is_caught_by_the_offline_guides_verification():
    """The issue's finding: yes to every "do you know" used to end with unknown concepts
    marked known (catch rate 0, diagnosis 0.29 on this file). Each claim is now verified
    with one check, and the eval shows it."""
    data = json.loads(run(UTF8, "--json", "--personas", "overclaimer").stdout)
    [p] = data["personas"]
    assert p["metrics"]["overclaim_catch_rate"] == 1.0
    assert p["metrics"]["diagnosis_accuracy"] >= 0.9
    [r] = data["runs"]
    assert not all(state == "known" for state in r["final_states"].values())


def test_a_threshold_that_does_not_hold_fails_with_the_metric_named(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("personas:\n  expert:\n    turns: {max: 9}\n")
    r = run(UTF8, "--personas", "expert", "--thresholds", spec)
    assert r.exit_code == 1
    assert "expert: turns 15.000 is above 9" in r.output


def test_bad_input_gets_a_clear_error(tmp_path):
    def clear(r, code, *words):
        assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
        lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith(("Usage:", "Try ")) and ln]
        assert len(lines) <= 2, r.stderr  # a usage error adds click's usage line
        for w in words:
            assert w in r.stderr, r.stderr

    bad = tmp_path / "t.yaml"
    bad.write_text("personas: [\n")
    clear(run_main(UTF8, "--thresholds", bad), 1, "t.yaml", "not valid YAML")
    clear(run_main(UTF8, "--personas", "genius"), 2, "novice")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "unicode-utf8.yaml").write_text("- question: what?\n  concept: nope\n")
    clear(run_main(UTF8, "--questions", tmp_path / "q"), 1, "item 1", "code-points")
    clear(run_main(UTF8, "--live"), 1, "--base-url")
    clear(run_main(tmp_path / "missing.md"), 1, "missing.md")
    (tmp_path / "tapes").mkdir()
    (tmp_path / "tapes" / "x.json").write_text("{not json")
    clear(run_main(UTF8, "--replay", tmp_path / "tapes"), 1, "x.json", "not a readable cassette")
    (tmp_path / "tapes" / "x.json").write_text('{"format": "something else"}')
    clear(run_main(UTF8, "--replay", tmp_path / "tapes"), 1, "x.json", "tutor-eval-cassette/1")
    clear(run_main(UTF8, "--record", tmp_path / "rec"), 2, "--live")


def test_the_reader_learns_only_when_prerequisites_are_there_and_its_misconception_was_named():
    ex = load(UTF8)
    p = Persona("t", "test", 0.0, misconceptions=True)
    reader = SimulatedReader(p, ex, p.truth(ex, 0))
    first, second = ex.concepts[0], ex.concepts[1]
    reader.respond(second.section.text, 0)  # the second section before the first: not learned
    assert not reader.understands(second.id)
    reader.respond(first.section.text, 1)  # its misconception was never named: still not learned
    assert not reader.understands(first.id)
    belief = reader.truth.misconceptions[first.id]
    reader.respond(f"A common mix-up: {belief}\n\n" + first.section.text, 2)
    assert reader.understands(first.id)


def test_a_check_question_is_answered_as_the_persona_would():
    ex = load(UTF8)
    c = ex.concepts[0]
    q = c.checks[0]
    expert = SimulatedReader(PERSONAS["expert"], ex, PERSONAS["expert"].truth(ex, 0))
    novice = SimulatedReader(PERSONAS["novice"], ex, PERSONAS["novice"].truth(ex, 0))
    holder = SimulatedReader(PERSONAS["misconception-holder"], ex, PERSONAS["misconception-holder"].truth(ex, 0))
    ask = f"Check: {q.question}\n\n(Type your answer, or 'skip'.)"
    assert expert.respond(ask, 0).startswith("I think it is the code point")
    assert novice.respond(ask, 0) == "not sure"
    assert holder.respond(ask, 0) == f"I think {q.misconceptions[0][0].lower()}{q.misconceptions[0][1:]}"
    assert novice.respond(f"Do you already know about {c.title.lower()}? (yes / no / not sure)", 1) == "no"
    assert expert.respond(f"Next: {c.title}. Do you already know about it?", 1) == "yes"


def test_live_mode_runs_against_a_server_prints_its_cost_first_and_stops_at_the_budget(api):
    from fake_api import text

    api.handler = lambda body: text("Let's begin. Do you already know about code points? <state concept=\"code-points\" value=\"asked\"/>")
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    r = run(UTF8, "--live", "--personas", "novice,expert", "--seeds", "1", "--max-turns", "3", "--json", env=env)
    assert r.exit_code == 0, r.output
    assert "estimated $" in r.stderr
    data = json.loads(r.stdout)
    assert data["mode"] == "live" and [p["name"] for p in data["personas"]] == ["novice", "expert"]
    assert all(run_["metrics"]["cost_usd"] > 0 and run_["metrics"]["turns"] == 3 for run_ in data["runs"])
    assert all(m["metrics"]["tag_leaks"] == 0 for m in data["runs"])  # the tag never reached the reader
    assert len(api.requests) == 6
    # a budget smaller than one run's cost: the first run happens, then it stops
    r = run(UTF8, "--live", "--personas", "novice,expert", "--max-turns", "2", "--budget", "0.000001", "--json", env=env)
    assert r.exit_code == 0 and "the budget of $0.00 is spent" in r.stderr
    assert len(json.loads(r.stdout)["runs"]) == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_the_html_report_renders_in_chromium_with_a_chart_per_metric(tmp_path):
    page = tmp_path / "eval.html"
    r = run(UTF8, "--html", page)
    assert r.exit_code == 0 and page.exists()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    proc = subprocess.run([*base, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1000,1600",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    assert [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Content Security Policy" in ln] == []
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    from tutor.eval.report import COLUMNS

    assert dom.count("<svg") == len(COLUMNS) and "diagnosis_accuracy" in dom and "misconception-holder" in dom


def test_each_planted_defect_changes_its_explainer_where_it_says(tmp_path):
    from tutor.eval.defects import MUTATIONS, lint_catches, plant_all

    ex = load(EXPLAINERS / "sqlite-wal.md")
    planted = plant_all(ex, tmp_path)
    kinds = {p.defect.kind for p in planted}
    assert len(planted) >= len(MUTATIONS) - 1 and {"check moved", "fact changed", "wrong reference answer"} <= kinds
    for p in planted:
        assert p.explainer.source != ex.source and p.defect.concept_id in {c.id for c in ex.concepts}
        if p.defect.kind == "prerequisite missing":
            assert not p.explainer.concept(p.defect.concept_id).prerequisites
        if p.defect.kind == "check moved":
            assert len(p.explainer.concepts[0].checks) == len(ex.concepts[0].checks) + 1
            assert lint_catches(p)  # the moved check rests on a later section's terms
    # the clean file gives the lint nothing to say about any concept
    from tutor.eval.lint import lint

    assert lint(ex) == []


def test_live_defects_score_the_tutor_feedback_against_what_was_planted(api):
    """A tutor that writes a <feedback> note about the planted concept is a hit; notes about
    other concepts count against precision."""
    def reply(body):
        system = json.dumps(body.get("system", ""))
        if "1001 pages" in system:  # the planted fact: the tutor notices it
            return text('Hello. <feedback concept="checkpoints">The section says 1001 pages but the answer says 1000.</feedback> Ready?')
        return text('Hello. <feedback concept="pages">Could use a diagram.</feedback> Ready?')

    from fake_api import text

    api.handler = reply
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    r = run(EXPLAINERS / "sqlite-wal.md", "--live", "--personas", "novice", "--seeds", "1", "--max-turns", "2",
            "--defects", "--json", "--budget", "100", env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)["defects"]
    fact = next(x for x in d["planted"] if x["kind"] == "fact changed")
    assert fact["tutor_flagged"] is True and fact["notes_on_target"] >= 1
    others = [x for x in d["planted"] if x["kind"] != "fact changed" and x["concept_id"] != "pages"]
    assert others and not any(x["tutor_flagged"] for x in others)
    assert 0 < d["scores"]["feedback_recall"] < 1 and 0 < d["scores"]["feedback_precision"] < 1


def test_a_recorded_live_run_replays_without_a_key_to_the_same_result(api, tmp_path):
    """--record saves each call (request and raw reply, tags included); --replay plays it
    back through the real session, tag filter and reader model, with no server at all."""
    from fake_api import text

    ex = load(UTF8)
    c0, c1 = ex.concepts[0], ex.concepts[1]
    script = [
        f'I want to explain Unicode to you. Do you already know about {c0.title.lower()}? <state concept="{c0.id}" value="asked"/>',
        f'{c0.summary} <state concept="{c0.id}" value="explained"/> Check: {c0.checks[0].question}',
        f'Right. <state concept="{c0.id}" value="understood">answered the check</state> Next: {c1.title}. Do you know it?',
    ]
    api.handler = lambda body: text(script[min(len(api.requests) - 1, len(script) - 1)])
    tapes = tmp_path / "tapes"
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    live = run(UTF8, "--live", "--personas", "expert", "--seeds", "1", "--max-turns", "3", "--json", "--record", tapes, env=env)
    assert live.exit_code == 0, live.output
    [tape] = tapes.glob("*.json")
    saved = json.loads(tape.read_text())
    assert saved["format"] == "tutor-eval-cassette/1" and len(saved["calls"]) == 3
    assert '<state concept="code-points" value="understood">' in saved["calls"][2]["reply"]
    assert "k" not in {saved.get("api_key"), saved.get("key")} and "ANTHROPIC_API_KEY" not in tape.read_text()

    replay = run(UTF8, "--replay", tapes, "--json", env={"ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    assert replay.exit_code == 0, replay.output
    a, b = json.loads(live.stdout)["runs"][0], json.loads(replay.stdout)["runs"][0]
    assert b["final_states"] == a["final_states"] and b["final_states"]["code-points"] == "understood"
    assert b["metrics"]["replay_divergence"] == 0.0 and b["metrics"]["turns"] == a["metrics"]["turns"]
    assert json.loads(replay.stdout)["mode"] == "replay"


def test_the_pasted_file_condition_sends_the_explainer_as_the_only_message_with_no_rules(api):
    from fake_api import text

    api.handler = lambda body: text("Sure! Unicode gives every character a number. Do you already know about code points?")
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    r = run(UTF8, "--live", "--condition", "pasted", "--personas", "novice,expert", "--seeds", "1", "--max-turns", "3",
            "--json", env=env)
    assert r.exit_code == 0, r.output
    first = api.bodies[0]
    assert not first.get("system")  # no tutor rules
    [msg] = first["messages"]
    assert load(UTF8).source in msg["content"][0]["text"]
    assert len(api.bodies[2]["messages"]) == 5  # the plain history: user, assistant, user, assistant, user
    data = json.loads(r.stdout)
    assert data["mode"] == "live, pasted file"
    by = {p["name"]: p["metrics"] for p in data["personas"]}
    # a chatbot keeps no record of the reader: right about the novice, wrong about the expert
    assert by["novice"]["diagnosis_accuracy"] == 1.0 and by["expert"]["diagnosis_accuracy"] == 0.0
    assert by["expert"]["turns_on_known"] >= 1  # the reader's own view of the concept in play
    r = run_main(UTF8, "--condition", "pasted")
    assert r.returncode == 2 and "--live" in r.stderr


def test_a_tutor_that_re_asks_an_answered_check_is_counted_and_live_means_get_intervals(api):
    from fake_api import text

    q = load(UTF8).concepts[0].checks[0].question
    api.handler = lambda body: text(f"Let's check. {q}")  # the same check, whatever the reader said
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    r = run(UTF8, "--live", "--personas", "expert", "--seeds", "2", "--max-turns", "4", "--json", env=env)
    assert r.exit_code == 0, r.output
    [p] = json.loads(r.stdout)["personas"]
    assert p["metrics"]["checks_reasked"] == 2.0  # answered right at turn 1, asked again at turns 2 and 3
    assert p["metrics"]["replies_without_state_tag"] == 1.0
    low, high = p["intervals"]["cost_usd"]
    assert 0 < low <= p["metrics"]["cost_usd"] <= high


def test_a_tutor_whose_state_tags_name_another_concept_than_it_talks_about_drifts(api):
    """The model tags the next concept as in play while asking about the first: drift 1."""
    from fake_api import text

    ex = load(UTF8)
    first, last = ex.concepts[0], ex.concepts[1]  # the next concept: a tag the trust rules accept
    api.handler = lambda body: text(f'<state concept="{last.id}" value="asked"/>Great! Do you already know about {first.title.lower()}?')
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "claude-sonnet-5-5"}
    r = run(UTF8, "--live", "--personas", "novice", "--seeds", "1", "--max-turns", "4", "--json", env=env)
    assert r.exit_code == 0, r.output
    [p] = json.loads(r.stdout)["personas"]
    assert p["metrics"]["concept_drift"] == 1.0
