"""``tutor eval`` reports: a terminal table, JSON for scripts, a self-contained HTML page,
and the threshold check CI runs. No click or rich here: the command prints what this returns."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tutor.eval.run import Report

# (metric, short label, better when "high" / "low" / "" for neither, format)
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("diagnosis_accuracy", "diagnosis", "high", "{:.2f}"),
    ("overclaim_catch_rate", "overclaim caught", "high", "{:.2f}"),
    ("turns", "turns", "low", "{:.0f}"),
    ("turns_on_known", "on known", "low", "{:.0f}"),
    ("telling_rate", "told first", "low", "{:.2f}"),
    ("wrong_accepted_rate", "wrong ok'd", "low", "{:.2f}"),
    ("gave_in_after_pushback", "gave in", "low", "{:.2f}"),
    ("praised_wrong_rate", "praised wrong", "low", "{:.2f}"),
    ("misconception_remediation", "misconc. named", "high", "{:.2f}"),
    ("words_per_reply_median", "words/reply", "", "{:.0f}"),
    ("questions_per_reply", "?/reply", "", "{:.2f}"),
    ("citation_rate", "cites", "high", "{:.2f}"),
    ("tag_leaks", "tag leaks", "low", "{:.0f}"),
    ("checks_reasked", "re-checked", "low", "{:.1f}"),
    ("done_reexplained", "re-explained", "low", "{:.1f}"),
    ("replies_without_state_tag", "no state tag", "low", "{:.2f}"),
    ("concept_drift", "drift", "low", "{:.2f}"),
    ("cost_usd", "$ per run", "low", "{:.3f}"),
)


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


SHORT = {"overclaimer": "over", "underclaimer": "under", "half-known": "half", "misconception-holder": "misconc"}


def table(report: Report) -> str:
    """Plain text: one row per metric, one column per persona and "all"; fits 80 columns."""
    personas = report.personas()
    head = ["metric"] + [SHORT.get(p["name"], p["name"])[:8] for p in personas] + ["all"]
    rows = []
    overall = report.overall()
    for key, label, better, fmt in COLUMNS:
        arrow = {"high": " ↑", "low": " ↓"}.get(better, "")
        rows.append([label + arrow] + [_fmt(p["metrics"].get(key), fmt) for p in personas] + [_fmt(overall.get(key), fmt)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if not i else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    short = [f"{v} = {k}" for k, v in SHORT.items() if any(p["name"] == k for p in personas)]
    runs = len(report.runs)
    import textwrap

    legend = f"({runs} run{'s' if runs != 1 else ''}, {report.mode}; ↑ higher is better, ↓ lower" + "".join("; " + x for x in short) + ")"
    lines.extend(textwrap.wrap(legend, 80))
    for path, acc in report.routing.items():
        lines.append(f"search routing, {Path(path).name}: " + ("no labelled questions" if acc is None else f"{acc:.2f} top-1"))
    if report.defects:
        sc = report.defect_scores()
        lines.append("")
        lines.append(f"planted defects: {len(report.defects)}; lint caught {_fmt(sc['lint_recall'], '{:.2f}')}"
                     + ("" if sc["feedback_recall"] is None else
                        f"; tutor flagged {_fmt(sc['feedback_recall'], '{:.2f}')}, precision {_fmt(sc['feedback_precision'], '{:.2f}')}"))
        width = max(len(d.explainer) for d in report.defects)
        for d in report.defects:
            tutor = "" if d.tutor_flagged is None else ("  tutor: flagged" if d.tutor_flagged else "  tutor: missed")
            lines.append(f"  {d.explainer:{width}}  {d.kind:22} lint: {'caught' if d.lint_caught else 'missed'}{tutor}")
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "personas": [dict(p, intervals=report.intervals()[p["name"]]) for p in report.personas()],
        "overall": report.overall(),
        "routing": {Path(k).name: v for k, v in report.routing.items()},
        "defects": {"scores": report.defect_scores(), "planted": [vars(d) for d in report.defects]} if report.defects else None,
        "runs": [
            {"explainer": Path(r.explainer).name, "persona": r.persona, "seed": r.seed, "metrics": r.metrics,
             "final_states": r.states, "errors": r.errors}
            for r in report.runs
        ],
    }


def write_json(report: Report) -> str:
    return json.dumps(as_json(report), indent=2, ensure_ascii=False)


def html_page(report: Report) -> str:
    """One small bar chart per metric (a bar per persona), inline SVG: no script, no fetch."""
    personas = report.personas()
    charts = []
    for key, label, better, fmt in COLUMNS:
        values = [(p["name"], p["metrics"].get(key)) for p in personas]
        top = max([v for _, v in values if v is not None] + [1e-9])
        scale = 1.0 if top <= 1.0 and key.endswith(("rate", "accuracy", "remediation", "pushback")) else top
        bars = []
        for i, (name, v) in enumerate(values):
            y = 8 + i * 22
            w = 0 if v is None else max(1.0, 220 * v / scale)
            bars.append(
                f'<text x="0" y="{y + 13}" class="n">{html.escape(name)}</text>'
                f'<rect x="150" y="{y}" width="{w:.1f}" height="16" rx="2"></rect>'
                f'<text x="{156 + w:.1f}" y="{y + 13}" class="v">{html.escape(_fmt(v, fmt))}</text>'
            )
        hint = {"high": "higher is better", "low": "lower is better"}.get(better, "")
        h = 16 + 22 * len(values)
        charts.append(
            f'<figure><figcaption>{html.escape(label)} <small>{html.escape(key)}{" · " + hint if hint else ""}</small></figcaption>'
            f'<svg viewBox="0 0 420 {h}" width="420" height="{h}" role="img" aria-label="{html.escape(label)}">{"".join(bars)}</svg></figure>'
        )
    routing = "".join(
        f"<li>{html.escape(Path(p).name)}: {'no labelled questions' if a is None else f'{a:.2f} top-1'}</li>"
        for p, a in report.routing.items()
    )
    runs = len(report.runs)
    defects = ""
    if report.defects:
        rows = "".join(
            f"<tr><td>{html.escape(d.explainer)}</td><td>{html.escape(d.kind)}</td><td>{html.escape(d.description)}</td>"
            f"<td>{'caught' if d.lint_caught else 'missed'}</td>"
            f"<td>{'-' if d.tutor_flagged is None else ('flagged' if d.tutor_flagged else 'missed')}</td></tr>"
            for d in report.defects
        )
        defects = ("<h2>Planted defects</h2><table><tr><th>explainer</th><th>kind</th><th>what</th><th>lint</th><th>tutor</th></tr>"
                   f"{rows}</table>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>tutor eval ({html.escape(report.mode)})</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}}
main{{display:flex;flex-wrap:wrap;gap:1.5rem}} figure{{margin:0}} figcaption{{font-weight:600}}
small{{font-weight:400;color:#666}} td,th{{padding:.15rem .6rem;text-align:left}} rect{{fill:#3b6ea5}} .n{{font-size:12px}} .v{{font-size:12px;fill:#333}}
@media (prefers-color-scheme: dark){{body{{background:#1b1b1b;color:#ddd}} .v,.n{{fill:#ddd}} rect{{fill:#7aa7d8}}}}
</style></head><body>
<h1>tutor eval</h1>
<p>{runs} simulated reader{'s' if runs != 1 else ''}, {html.escape(report.mode)} mode. Metric definitions: docs/eval.md.</p>
<main>{''.join(charts)}</main>
<h2>Search routing</h2><ul>{routing}</ul>
{defects}
</body></html>
"""


def check_thresholds(report: Report, spec: dict[str, Any]) -> list[str]:
    """What falls outside ``spec`` (the thresholds file): [] when all hold.

    ``spec`` holds ``overall: {metric: {min|max: x}}``, ``personas: {name: {metric: ...}}`` and
    ``routing: {min: x}``; a metric that did not apply (None) is not judged."""
    failures: list[str] = []

    def judge(where: str, metrics: dict[str, float | None], rules: dict[str, Any]) -> None:
        for metric, bound in (rules or {}).items():
            value = metrics.get(metric)
            if value is None:
                continue
            if "min" in bound and value < float(bound["min"]) - 1e-9:
                failures.append(f"{where}: {metric} {value:.3f} is below {bound['min']}")
            if "max" in bound and value > float(bound["max"]) + 1e-9:
                failures.append(f"{where}: {metric} {value:.3f} is above {bound['max']}")

    judge("overall", report.overall(), spec.get("overall", {}))
    by_name = {p["name"]: p["metrics"] for p in report.personas()}
    for name, rules in (spec.get("personas") or {}).items():
        if name in by_name:
            judge(name, by_name[name], rules)
    if report.defects:
        judge("planted defects", report.defect_scores(), spec.get("defects", {}))
    low = (spec.get("routing") or {}).get("min")
    if low is not None:
        for path, acc in report.routing.items():
            if acc is not None and acc < float(low) - 1e-9:
                failures.append(f"search routing, {Path(path).name}: {acc:.3f} is below {low}")
    return failures
