"""``tutor publish``: an explainer as one self-contained static page plus the raw file.

The page is ``DIR/<stem>.html`` with the raw explainer copied beside it as ``DIR/<stem>.md``
(one folder can hold many explainers; see docs/publish.md). Everything taken from the
file is untrusted: Markdown is rendered with raw HTML and images off, every other string
is escaped, and a strict CSP (no scripts at all, inline styles only) keeps it inert.
"""

from __future__ import annotations

import html
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutor.explainer import Explainer, load
from tutor.files import atomic_write, safe_read_bytes

DRAFT_PREFIX = "DRAFT:"

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"  # frame-ancestors is ignored in <meta>
)

_MD: Any = None


def markdown_html(text: str) -> str:
    """Render untrusted Markdown to HTML: CommonMark plus tables, raw HTML shown as text,
    images off (they could only be remote loads). The one factory for published pages."""
    global _MD
    if _MD is None:
        from tutor.explainer import new_markdown

        _MD = new_markdown().disable("image")  # the loader's and the HTML export's setup
    return _MD.render(text)


@dataclass
class Published:
    page: Path
    raw: Path
    warnings: list[str]


def is_draft(ex: Explainer) -> bool:
    """A compile skeleton (no key) marks its summaries ``DRAFT:``."""
    texts = [ex.summary] + [c.summary for c in ex.concepts]
    return any(t.strip().startswith(DRAFT_PREFIX) for t in texts)


# --------------------------------------------------------------------------- graph


def _layers(ex: Explainer) -> dict[str, int]:
    """Longest-path layering: a concept sits one layer below its deepest prerequisite."""
    known = {c.id for c in ex.concepts}
    layer: dict[str, int] = {}
    for c in ex.concepts:  # teaching order is topological, so prerequisites come first
        pre = [layer[p] for p in c.prerequisites if p in known and p in layer]
        layer[c.id] = max(pre) + 1 if pre else 0
    return layer


def graph_svg(ex: Explainer) -> str:
    """The prerequisite graph as inline SVG: layers top to bottom, nodes in teaching order."""
    if not ex.concepts:
        return ""
    layer = _layers(ex)
    rows: dict[int, list[str]] = {}
    for c in ex.concepts:
        rows.setdefault(layer[c.id], []).append(c.id)
    w, h, gx, gy = 200, 44, 24, 46
    width = max(len(r) for r in rows.values()) * (w + gx) + gx
    height = len(rows) * (h + gy) - gy + 24
    pos: dict[str, tuple[float, float]] = {}
    for y_i, ids in rows.items():
        offset = (width - len(ids) * (w + gx) + gx) / 2
        for x_i, cid in enumerate(ids):
            pos[cid] = (offset + x_i * (w + gx), 12 + y_i * (h + gy))
    e = html.escape
    parts = [
        f'<svg class="graph" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="Prerequisite graph" xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#8a8f98"/></marker></defs>',
    ]
    for c in ex.concepts:
        for p in c.prerequisites:
            if p not in pos:
                continue
            (x1, y1), (x2, y2) = pos[p], pos[c.id]
            ax, ay, bx, by = x1 + w / 2, y1 + h, x2 + w / 2, y2
            # An edge that skips layers bends aside so it does not run through the nodes between.
            bend = (w / 2 + gx / 2) * (1 if bx >= ax else -1) if layer[c.id] - layer[p] > 1 else 0
            mx, my = (ax + bx) / 2 + bend, (ay + by) / 2
            parts.append(
                f'<path d="M{ax:.0f},{ay:.0f} Q{mx:.0f},{my:.0f} {bx:.0f},{by:.0f}" fill="none" '
                'stroke="#8a8f98" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    for n, c in enumerate(ex.concepts, 1):
        x, y = pos[c.id]
        label = c.title if len(c.title) <= 26 else c.title[:25] + "…"
        parts.append(
            f'<a href="#{e(c.id)}"><rect x="{x:.0f}" y="{y:.0f}" width="{w}" height="{h}" rx="8" '
            f'fill="#eef3fb" stroke="#3b6db3"/><text x="{x + w / 2:.0f}" y="{y + h / 2 + 5:.0f}" '
            f'text-anchor="middle" font-size="13">{n}. {e(label)}</text><title>{e(c.title)}</title></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- page


def assistant_prompt(raw_url: str) -> str:
    return (
        f"Please read the explainer at {raw_url} and follow its note to AI assistants: "
        "tutor me through it one concept at a time, starting by asking what I already know."
    )


def _q(url: str, prompt: str) -> str:
    return url + urllib.parse.quote(prompt, safe="")


_STYLE = """
:root{--fg:#1d2330;--muted:#5b6473;--line:#dde2ea;--accent:#3b6db3;--bg:#fff;--soft:#f6f8fb}
*{box-sizing:border-box}
body{margin:0;font:17px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:46rem;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:2rem;line-height:1.2;margin:.2rem 0 .6rem}
h2{margin-top:2.4rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
.summary{font-size:1.1rem;color:var(--muted)}
.meta{font-size:.95rem;color:var(--muted);margin:.2rem 0}
.box{background:var(--soft);border:1px solid var(--line);border-radius:10px;padding:1rem 1.2rem;margin:1.5rem 0}
.box h2{margin:0 0 .5rem;border:0;font-size:1.2rem}
.links a{display:inline-block;margin:.3rem .6rem .3rem 0;padding:.45rem .9rem;border-radius:7px;background:var(--accent);color:#fff;text-decoration:none}
pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.7rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse;display:block;overflow-x:auto;margin:1rem 0}
th,td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left}
.graph{width:100%;height:auto;max-height:32rem}
.graph text{fill:var(--fg);font-family:system-ui,sans-serif}
.checks{border-left:3px solid var(--accent);padding:.2rem 0 .2rem 1rem;margin:1.5rem 0}
.checks h3{margin:.2rem 0;font-size:1rem}
details{margin:.3rem 0 .8rem}
summary{cursor:pointer;color:var(--accent)}
blockquote{margin:1rem 0;padding:.2rem 1rem;border-left:3px solid var(--line);color:var(--muted)}
.prereq{font-size:.9rem;color:var(--muted)}
"""


def render_page(ex: Explainer, raw_name: str, url: str | None = None) -> str:
    """The whole HTML page for ``ex``; ``raw_name`` is the raw file's name beside the page,
    ``url`` the public URL of that raw file (for the commands and chatbot links)."""
    e = html.escape
    raw_url = url or raw_name
    prompt = assistant_prompt(raw_url)
    titles = {c.id: c.title for c in ex.concepts}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(ex.title)}</title>",
        f'<link rel="alternate" type="text/markdown" href="{e(raw_name)}">',
        f"<style>{_STYLE}</style></head><body><main>",
        f"<h1>{e(ex.title)}</h1>",
    ]
    if ex.summary:
        out.append(f'<p class="summary">{e(ex.summary)}</p>')
    if ex.audience:
        out.append(f'<p class="meta"><strong>For:</strong> {e(ex.audience)}</p>')
    if ex.author:
        out.append(f'<p class="meta"><strong>By:</strong> {e(ex.author)}</p>')
    if ex.feedback:
        href = ex.feedback if ex.feedback.startswith(("http://", "https://")) else "mailto:" + ex.feedback
        out.append(f'<p class="meta"><strong>Feedback:</strong> <a href="{e(href)}">{e(ex.feedback)}</a></p>')
    out += [
        '<section class="box" id="interactive"><h2>Learn this interactively</h2>',
        "<p>Let a tutor find out what you already know and teach you the rest:</p>",
        f"<pre><code>tutor open {e(raw_url)}</code></pre>",
        '<p class="links">'
        f'<a href="{e(_q("https://claude.ai/new?q=", prompt))}" rel="noopener noreferrer">Open in Claude</a>'
        f'<a href="{e(_q("https://chatgpt.com/?q=", prompt))}" rel="noopener noreferrer">Open in ChatGPT</a>'
        f'<a href="{e(raw_name)}">Raw explainer (Markdown)</a></p>',
        "<p>Or paste this into any AI assistant:</p>",
        f"<pre><code>{e(prompt)}</code></pre></section>",
    ]
    if ex.concepts:
        out += ["<h2>How the ideas build on each other</h2>", graph_svg(ex)]
    for c in ex.concepts:
        out.append(f'<h2 id="{e(c.id)}">{e(c.title)}</h2>')
        known = [p for p in c.prerequisites if p in titles]
        if known:
            links = ", ".join(f'<a href="#{e(p)}">{e(titles[p])}</a>' for p in known)
            out.append(f'<p class="prereq">Builds on: {links}</p>')
        out.append(markdown_html(c.section.text))
        if c.checks:
            out.append('<section class="checks"><h3>Check yourself</h3>')
            for q in c.checks:
                out.append(f"<p>{e(q.question)}</p>")
                if q.answer:
                    out.append(f"<details><summary>Show the answer</summary><p>{e(q.answer)}</p></details>")
                if q.misconceptions:
                    items = "".join(f"<li>{e(m)}</li>" for m in q.misconceptions)
                    out.append(f"<details><summary>Common misconceptions</summary><ul>{items}</ul></details>")
            out.append("</section>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def publish(source: str | Path, out_dir: str | Path, url: str | None = None) -> Published:
    """Write ``<stem>.html`` and the raw ``<stem>.md`` into ``out_dir``; ``url`` is the
    public URL the folder will be served from."""
    ex = load(source)
    src = Path(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / (src.stem + ".md")
    page = out / (src.stem + ".html")
    warnings = []
    if is_draft(ex):
        warnings.append(f"{src}: is a DRAFT skeleton (summaries start with 'DRAFT:'); finish it before sharing")
    if ex.plain:
        warnings.append(f"{src}: has no front matter, so the page has no checks or graph; see 'tutor check'")
    if src.resolve() != raw.resolve():
        from tutor.explainer import MAX_FILE_BYTES

        atomic_write(raw, safe_read_bytes(src, MAX_FILE_BYTES, what="Markdown file"))
    # --url is where DIR is served; the page links the raw file under it.
    raw_url = url.rstrip("/") + "/" + urllib.parse.quote(raw.name) if url else None
    atomic_write(page, render_page(ex, raw.name, raw_url))
    return Published(page, raw, warnings)
