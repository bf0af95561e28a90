"""The author's feedback page: ``tutor feedback FILE --html PATH``.

Renders a ``tutor.authoring.report.FeedbackReport`` (built by ``report.build_report``) as one self-contained HTML page: per section, the notes from tutors and readers, and
an inline-SVG chart of where readers got stuck (sessions that marked the concept shaky, and
sessions that needed it explained twice or more). Every string is escaped; no script.
"""

from __future__ import annotations

import html

from tutor.authoring.report import ConceptGroup, FeedbackReport
from tutor.publish import CSP

_STYLE = """
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}
main{max-width:52rem;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:1.8rem;line-height:1.2;margin:.2rem 0 .4rem}
h2{margin-top:2.2rem;border-bottom:1px solid #dde2ea;padding-bottom:.3rem;font-size:1.25rem}
.meta{color:#5b6473}
.chart{width:100%;height:auto}
.chart text{font-family:system-ui,sans-serif;fill:#1d2330}
ul.notes{padding-left:1.1rem}
ul.notes li{margin:.5rem 0;white-space:pre-wrap;overflow-wrap:anywhere}
.tag{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:4px;background:#eef3fb;color:#3b6db3;margin-right:.4rem}
.tag.reader{background:#fdf1e3;color:#9a5b13}
.old{color:#9a5b13;font-size:.85rem}
.times{font-weight:600;color:#5b6473;font-size:.85rem}
"""

SHAKY, TWICE = "#d9822b", "#3b6db3"
#: Notes shown per section, newest first; the rest are counted (``tutor feedback FILE --json`` has all).
MAX_NOTES = 200


def stuck_chart(groups: list[ConceptGroup]) -> str:
    """Two bars per section that has stuck readers: shaky and explained twice, as a share of
    the sessions that reached it."""
    rows = [g for g in groups if g.stuck and g.stuck.sessions]
    if not rows:
        return ""
    e = html.escape
    label_w, bar_w, row_h = 260, 380, 34
    height = len(rows) * row_h + 40
    out = [
        f'<svg class="chart" viewBox="0 0 {label_w + bar_w + 190} {height}" role="img" '
        'aria-label="Where readers got stuck" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{label_w}" y="4" width="12" height="12" fill="{SHAKY}"/>'
        f'<text x="{label_w + 18}" y="15" font-size="13">shaky</text>'
        f'<rect x="{label_w + 80}" y="4" width="12" height="12" fill="{TWICE}"/>'
        f'<text x="{label_w + 98}" y="15" font-size="13">explained twice or more</text>',
    ]
    for i, g in enumerate(rows):
        s = g.stuck
        assert s is not None
        y = 30 + i * row_h
        title = g.title if len(g.title) <= 34 else g.title[:33] + "…"
        out.append(f'<text x="{label_w - 8}" y="{y + 17}" font-size="13" text-anchor="end">{e(title)}</text>')
        for j, (n, color) in enumerate(((s.shaky, SHAKY), (s.explained_twice, TWICE))):
            w = max(1.0, bar_w * n / s.sessions) if n else 0
            out.append(f'<rect x="{label_w}" y="{y + j * 12}" width="{w:.1f}" height="11" fill="{color}"/>')
        out.append(
            f'<text x="{label_w + bar_w + 8}" y="{y + 17}" font-size="12">'
            f"{s.shaky}/{s.sessions} · {s.explained_twice}/{s.sessions}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def render_html(rep: FeedbackReport) -> str:
    e = html.escape
    n_versions = len(rep.versions)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Feedback: {e(rep.title)}</title><style>{_STYLE}</style></head><body><main>",
        f"<h1>Feedback: {e(rep.title)}</h1>",
        f'<p class="meta">{e(rep.path)} · {rep.total} note(s): {rep.model} from tutors, {rep.reader} from readers · '
        f"{rep.sessions} session(s) · {n_versions} version(s) of the file</p>",
    ]
    chart = stuck_chart(rep.groups)
    if chart:
        out += ["<h2>Where readers got stuck</h2>", chart]
    if not rep.groups:
        out.append("<p>No feedback yet.</p>")
    for g in rep.groups:
        anchor = f' id="{e(g.concept_id)}"' if g.concept_id else ""
        out.append(f"<h2{anchor}>{e(g.title)}</h2>")
        if g.stuck:
            s = g.stuck
            out.append(
                f'<p class="meta">{s.sessions} session(s) reached it; {s.shaky} found it shaky; '
                f"{s.explained_twice} needed it explained twice or more.</p>"
            )
        if g.items:
            out.append('<ul class="notes">')
            for it in g.items[:MAX_NOTES]:
                who = {"reader": "reader", "rules": "tutor on its rules"}.get(it.source, "tutor")
                old = (
                    f' <span class="old">(on version {e(it.version)}; the section {e(it.section_status)} since)</span>'
                    if it.changed_since
                    else ""
                )
                times = (
                    f' <span class="times" title="given {it.count} times in {it.sessions} session(s)">×{it.count}</span>'
                    if it.count > 1
                    else ""
                )
                out.append(f'<li><span class="tag {who}">{who}</span>{e(it.text)}{times}{old}</li>')
            out.append("</ul>")
            if len(g.items) > MAX_NOTES:
                out.append(f'<p class="meta">and {len(g.items) - MAX_NOTES:,} older note(s) (all of them: tutor feedback FILE --json)</p>')
    out.append("</main></body></html>\n")
    return "\n".join(out)
