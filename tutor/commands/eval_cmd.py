"""``tutor eval``: parse the options, run tutor.eval, print the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from tutor.errors import TutorError

QUESTIONS_DIR = Path("tests") / "eval" / "questions"


@click.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--offline/--live", default=True, show_default=True,
              help="Against the offline guide (no key, seconds), or against a model (ANTHROPIC_API_KEY or --base-url).")
@click.option("--personas", default="", metavar="NAMES", help="Comma-separated persona names (default: all; see --list).")
@click.option("--seeds", type=click.IntRange(1, 100), default=None, help="Seeds per persona and explainer [default: 1 offline, 3 live].")
@click.option("--budget", type=click.FloatRange(0, None), default=1.0, show_default=True, metavar="USD",
              help="Live: stop starting runs once this much is spent.")
@click.option("--max-turns", type=click.IntRange(2, 1000), default=None, help="Turns per run [default: enough for the outline].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (a personas list with metrics).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="Also write a self-contained HTML report.")
@click.option("--thresholds", type=click.Path(dir_okay=False), default=None,
              help="A YAML file of bounds (tests/eval/thresholds.yaml); exit 1 when a metric falls outside.")
@click.option("--questions", type=click.Path(file_okay=False), default=None,
              help=f"Folder of labelled questions for search routing, <explainer>.yaml [default: ./{QUESTIONS_DIR}].")
@click.option("--model", default=None, help="Live: the model id ($TUTOR_MODEL).")
@click.option("--base-url", default=None, envvar="TUTOR_BASE_URL", help="Live: a local Messages-API server ($TUTOR_BASE_URL).")
@click.option("--effort", default=None, envvar="TUTOR_EFFORT", help="Live: low, medium or high for tutor turns.")
@click.option("--record", "record_dir", type=click.Path(file_okay=False), default=None,
              help="Live: save each run's model calls as a cassette in this folder.")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Replay the cassettes in this folder instead of calling a model (no key).")
@click.option("--condition", type=click.Choice(["tutor", "pasted"]), default="tutor", show_default=True,
              help="Live: tutor's session, or the explainer pasted into a chatbot with no tutor rules (the baseline).")
@click.option("--defects", is_flag=True, help="Also plant known mistakes in each explainer: does the lint (and, live, the tutor) catch them?")
@click.option("--list", "list_personas", is_flag=True, help="List the personas and exit.")
@click.pass_context
def eval_cmd(ctx: click.Context, files, offline, personas, seeds, budget, max_turns, as_json, html_path, thresholds, questions,
             model, base_url, effort, record_dir, replay_dir, condition, defects, list_personas) -> int:
    """Measure the teaching with simulated readers (docs/eval.md).

    \b
    tutor eval explainers/ --offline            every persona against the offline guide
    tutor eval explainers/sqlite-wal.md --live --seeds 3 --budget 2
    tutor eval explainers/ --thresholds tests/eval/thresholds.yaml   (what CI runs)

    Each simulated reader is decided by code: what it knows, claims and learns is
    seeded, so an offline run gives the same numbers every time.
    """
    from tutor.eval.personas import PERSONAS

    if list_personas:
        for p in PERSONAS.values():
            click.echo(f"{p.name:22} {p.description}")
        return 0
    names = [n.strip() for n in personas.split(",") if n.strip()] or list(PERSONAS)
    unknown = [n for n in names if n not in PERSONAS]
    if unknown:
        raise click.BadParameter(f"no persona {unknown[0]!r}; choose from {', '.join(PERSONAS)}", param_hint="--personas")
    explainers = _load_all(files)
    qdir = Path(questions) if questions else QUESTIONS_DIR
    labelled = _questions(qdir, explainers, explicit=questions is not None)
    spec = _thresholds(Path(thresholds)) if thresholds else None
    if condition == "pasted" and (offline or replay_dir):
        raise click.UsageError("--condition pasted measures a model: add --live")
    if record_dir and offline:
        raise click.UsageError("--record saves live runs: add --live")
    factory = None
    if not offline and not replay_dir:
        factory = _live_factory(model, base_url, effort, explainers, names, seeds or 3, budget)
    from tutor.eval.report import check_thresholds, html_page, table, write_json
    from tutor.eval.run import evaluate

    def say(line: str) -> None:
        click.echo(line, err=True)

    from tutor.eval.run import Condition

    if replay_dir:
        from tutor.eval.run import evaluate_replay

        report = asyncio.run(evaluate_replay(explainers, Path(replay_dir), questions=labelled, progress=say))
    else:
        report = asyncio.run(evaluate(explainers, names, seeds or (1 if offline else 3), backend_factory=factory,
                                      questions=labelled, progress=say, budget_usd=None if offline else budget,
                                      max_turns=max_turns, record_dir=Path(record_dir) if record_dir else None,
                                      condition=Condition(condition)))
    if defects:
        from tutor.eval.run import evaluate_defects

        report.defects = asyncio.run(evaluate_defects(explainers, backend_factory=factory, max_turns=max_turns, progress=say))
    click.echo(write_json(report) if as_json else table(report))
    if html_path:
        from tutor.files import atomic_write

        atomic_write(html_path, html_page(report))
        say(f"Wrote {html_path}")
    if spec is not None:
        failures = check_thresholds(report, spec)
        for f in failures:
            say(f"below threshold: {f}")
        if failures:
            say(f"{len(failures)} metric{'s' if len(failures) != 1 else ''} outside {thresholds}.")
            ctx.exit(1)
        say(f"All metrics within {thresholds}.")
    return 0


def _load_all(files: tuple[str, ...]):
    from tutor.explainer import load

    paths: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(x for x in p.glob("*.md") if x.is_file())
            if not found:
                raise TutorError(f"{p}: no .md files in this folder", hint="Give explainer files or a folder of them.")
            paths.extend(found)
        else:
            paths.append(p)
    return [load(p) for p in paths]


def _questions(folder: Path, explainers, *, explicit: bool) -> dict[str, list[tuple[str, str]]]:
    """Labelled questions per explainer stem; a bad file names its line."""
    import yaml

    if not folder.is_dir():
        if explicit:
            raise TutorError(f"{folder}: no such folder of labelled questions")
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for ex in explainers:
        stem = Path(ex.path).stem
        f = folder / f"{stem}.yaml"
        if not f.is_file():
            continue
        try:
            items = yaml.safe_load(f.read_text(encoding="utf-8")) or []
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            raise TutorError(f"{f}{f', line {mark.line + 1}' if mark else ''}: not valid YAML",
                             hint="Each item is: - question: ...  concept: <concept id>") from None
        ids = {c.id for c in ex.concepts}
        pairs = []
        for i, item in enumerate(items if isinstance(items, list) else [], 1):
            if not isinstance(item, dict) or item.get("concept") not in ids or not str(item.get("question", "")).strip():
                raise TutorError(f"{f}: item {i} needs a question and one of the concept ids of {ex.path}",
                                 hint=f"Concept ids: {', '.join(sorted(ids))}")
            pairs.append((str(item["question"]), str(item["concept"])))
        out[stem] = pairs
    return out


def _thresholds(path: Path) -> dict:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TutorError(f"{path}: no such thresholds file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TutorError(f"{path}{f', line {mark.line + 1}' if mark else ''}: not valid YAML") from None
    if not isinstance(spec, dict):
        raise TutorError(f"{path}: expected overall / personas / routing sections", hint="See docs/eval.md.")
    return spec


def _live_factory(model, base_url, effort, explainers, names, seeds, budget):
    """A new back end per run, after printing what the run will probably cost."""
    from tutor.engine.claude import ClaudeBackend, has_api_key
    from tutor.engine.models import Effort
    from tutor.eval.run import estimate_cost

    if not (base_url or has_api_key()):
        raise TutorError("--live needs ANTHROPIC_API_KEY, or --base-url for a local server",
                         hint="Or run the offline eval: tutor eval FILE --offline")
    eff = Effort.parse(effort) if effort else None

    def make():
        if base_url:
            return ClaudeBackend(model, base_url=base_url, local=True, effort=eff)
        return ClaudeBackend(model, effort=eff)

    probe = make()
    runs = len(explainers) * len(names) * seeds
    est = sum(estimate_cost(ex, probe.profile) for ex in explainers) * len(names) * seeds
    click.echo(f"Live eval: {runs} run{'s' if runs != 1 else ''} on {probe.model or 'the server model'}, "
               f"estimated ${est:.2f}; stops starting runs at ${budget:.2f}.", err=True)
    asyncio.run(probe.aclose())
    return make
