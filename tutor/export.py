"""Transcript export: Markdown to read, JSON with everything, a self-contained HTML page.

Every format starts from ``Store.session_dump`` (the JSON shape, documented in
docs/database.md), so the three never disagree about what a session holds. Text from the
reader or the model is untrusted: in HTML every piece is escaped (tutor replies go through
markdown-it with raw HTML off), the page carries a Content-Security-Policy that forbids
scripts and remote loads; in Markdown every ``<`` that a viewer would read as raw HTML is
written ``&lt;`` (``inert_markdown``); no format passes terminal control characters through.
"""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tutor.errors import TutorError
from tutor.store import (
    TRANSCRIPT_FORMAT,
    TRANSCRIPT_VERSION,
    ConceptStateRow,
    ExplainerRow,
    FeedbackRow,
    MessageRow,
    SessionRow,
    StateLogRow,
    Store,
    SummaryRow,
)
from tutor.text import escape_controls, json_text, local_time, plural, slug

Format = Literal["md", "json", "html"]
FORMATS: tuple[str, ...] = ("md", "json", "html")
#: A transcript larger than this is refused before it is read (a long session is a few MB).
MAX_TRANSCRIPT_BYTES = 512 * 1024 * 1024



class Transcript(BaseModel):
    """A JSON export read back (``load_json_export``)."""

    model_config = ConfigDict(defer_build=True)

    format: Literal["tutor-transcript"]
    version: int
    exported_at: str
    include_feedback: bool = True
    session: SessionRow
    explainer: ExplainerRow | None = None
    messages: list[MessageRow]
    concept_states: list[ConceptStateRow]
    state_log: list[StateLogRow] = []
    feedback: list[FeedbackRow] = []
    summaries: list[SummaryRow] = []


def strip_feedback(raw: str | None) -> str | None:
    """Raw model text without its ``<feedback>`` notes, a cut-off one included (the tag
    filter decides what is a tag, so a note shown inside a code fence stays)."""
    if raw is None:
        return None
    from tutor.engine.tagfilter import strip_tags

    return strip_tags(raw, ("feedback",))


def transcript_data(
    store: Store, session_id: str, *, include_feedback: bool = False, include_paths: bool = False
) -> dict[str, Any]:
    """The export dict: the full dump, minus feedback (rows and tags) unless asked for, and
    with the explainer named by its file name only unless ``include_paths``: a transcript is
    made to be shared, the folders of the reader's files are not part of it."""
    data = copy.deepcopy(store.session_dump(session_id))
    data["include_feedback"] = include_feedback
    data["include_paths"] = include_paths
    if not include_paths:
        full = {data["session"].get("explainer_path") or "", (data.get("explainer") or {}).get("path") or ""}
        data["session"]["explainer_path"] = file_name(data["session"].get("explainer_path") or "")
        if data.get("explainer"):
            data["explainer"]["path"] = file_name(data["explainer"].get("path") or "")
        # A note such as "/home/ann/wal.md has changed since your last visit" names it too.
        for path in sorted((p for p in full if "/" in p and "://" not in p), key=len, reverse=True):
            for m in data["messages"]:
                for key in ("text", "raw"):
                    if m.get(key) and path in m[key]:
                        m[key] = m[key].replace(path, file_name(path))
    if not include_feedback:
        data["feedback"] = []
        for m in data["messages"]:
            m["raw"] = strip_feedback(m["raw"])
    return data


def file_name(path: str) -> str:
    """The last part of a stored path (``/home/ann/notes/wal.md`` -> ``wal.md``); a URL's
    explainer keeps its URL, which names no local folder."""
    if "://" in path:
        return path
    return Path(path.replace("\\", "/")).name or path


def to_json(data: dict[str, Any]) -> str:
    return json_text(data) + "\n"


def load_json_export(path: str | Path) -> Transcript:
    """Read a JSON transcript back, checking it is one (and one we understand)."""
    from tutor.files import safe_read_bytes

    p = Path(path)
    try:
        data = json.loads(safe_read_bytes(p, MAX_TRANSCRIPT_BYTES, what="JSON transcript").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        line = getattr(e, "lineno", None)
        where = f"{p}:{line}" if line else str(p)
        raise TutorError(f"{where}: not a JSON transcript ({e})") from None
    if not isinstance(data, dict) or data.get("format") != TRANSCRIPT_FORMAT:
        raise TutorError(f"{p}: not a tutor transcript (no \"format\": \"{TRANSCRIPT_FORMAT}\")")
    if not isinstance(data.get("version"), int) or data["version"] > TRANSCRIPT_VERSION:
        raise TutorError(
            f"{p}: transcript version {data.get('version')!r} is newer than this tutor understands",
            hint="Upgrade tutor to read it.",
        )
    try:
        return Transcript.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise TutorError(f"{p}: bad transcript field {loc}: {first['msg']}") from None


# -- helpers shared by md and html -------------------------------------------------------


def _cost(usd: float) -> str:
    return f"${usd:.4f}" if usd else "$0"


def _title(data: dict[str, Any]) -> str:
    s = data["session"]
    return s.get("explainer_title") or Path(s.get("explainer_path", "")).name or "session"


def _concept_titles(data: dict[str, Any]) -> dict[str, str]:
    explainer = data.get("explainer") or {}
    return {c.get("id", ""): c.get("title", "") for c in explainer.get("concepts", [])}


def _usage_note(s: dict[str, Any], sep: str) -> str:
    """Tokens and cost, or nothing for a session that never called a model."""
    tokens = s["input_tokens"] + s["output_tokens"] + s["cache_write_tokens"] + s["cache_read_tokens"]
    if not tokens and not s["cost_usd"]:
        return ""
    return f"{sep}{tokens:,} tokens ({s['cache_read_tokens']:,} from cache){sep}cost {_cost(s['cost_usd'])}"


_ROLE_LABEL = {"reader": "Reader", "tutor": "Tutor", "system": "Note"}


# -- Markdown ------------------------------------------------------------------------------


_MD_HTML: Any = None  # a CommonMark parser with raw HTML on: it finds what a viewer would render
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)


def _raw_html_lines(text: str) -> tuple[bool, set[int]]:
    """Does a CommonMark renderer see raw HTML in ``text``? And which lines are code blocks."""
    global _MD_HTML
    if _MD_HTML is None:
        from markdown_it import MarkdownIt

        _MD_HTML = MarkdownIt("commonmark")
    found = False
    code: set[int] = set()
    for tok in _MD_HTML.parse(text):
        if tok.type == "html_block" or (tok.children and any(c.type == "html_inline" for c in tok.children)):
            found = True
        elif tok.type in ("fence", "code_block") and tok.map:
            code.update(range(tok.map[0], tok.map[1]))
    return found, code


def _escape_lt(run: str, keep_code_spans: bool) -> str:
    if not keep_code_spans:
        return run.replace("<", "&lt;")
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(run):
        out += [run[pos : m.start()].replace("<", "&lt;"), m.group()]
        pos = m.end()
    out.append(run[pos:].replace("<", "&lt;"))
    return "".join(out)


def inert_markdown(text: str) -> str:
    """Rewrite Markdown so that no CommonMark viewer renders raw HTML from it.

    Every ``<`` that would open a tag, comment or declaration becomes ``&lt;``, which a
    viewer shows as ``<``. Code blocks and code spans are left alone (there ``&lt;`` would
    show literally, and ``<`` is already text). Escaping can change the block structure
    (an HTML block that becomes a paragraph swallows a following indented line), so the
    result is parsed again until a parser finds no raw HTML; if keeping code spans stops
    making progress, ``<`` is escaped everywhere outside code blocks, then everywhere.
    """
    if "<" not in text:
        return text
    keep_spans, everywhere = True, False
    while True:
        found, code = _raw_html_lines(text)
        if not found:
            return text
        lines = text.split("\n")
        out: list[str] = []
        run: list[str] = []
        for i, line in enumerate(lines):
            if i in code and not everywhere:
                if run:
                    out.append(_escape_lt("\n".join(run), keep_spans))
                    run = []
                out.append(line)
            else:
                run.append(line)
        if run:
            out.append(_escape_lt("\n".join(run), keep_spans))
        new = "\n".join(out)
        if new == text:
            if everywhere:  # cannot happen: with no "<" left there is no raw HTML
                return text
            keep_spans, everywhere = (False, False) if keep_spans else (False, True)
        text = new


# Where a Markdown viewer reads a link target: after "](" or "]:" (reference definition)
# or "<" (autolink), then the scheme up to ':' (entities and spaces included: viewers
# decode "java&#115;cript:" and skip the blanks).
_LINK_SCHEME = re.compile(r"(\]\(\s*<?|\]:[ \t]*<?|<)([^\s:()<>\[\]]{1,60}):")
_BAD_SCHEMES = {"javascript", "vbscript", "data", "file"}


def inert_links(text: str) -> str:
    """Link targets with a script, data or local-file scheme get their ':' written as
    ``%3A``: the link text stays, but no viewer follows it anywhere (16.6)."""

    def fix(m: re.Match[str]) -> str:
        scheme = re.sub(r"[\s\x00-\x1f]", "", html.unescape(m.group(2))).lower()
        return m.group(0)[:-1] + "%3A" if scheme in _BAD_SCHEMES else m.group(0)

    return _LINK_SCHEME.sub(fix, text)


def to_markdown(data: dict[str, Any]) -> str:
    s = data["session"]
    titles = _concept_titles(data)
    out: list[str] = [f"# {escape_controls(_title(data))}", ""]
    out += [
        f"- Session: `{s['id']}` ({s['mode']}, {s['status']})",
        f"- Explainer: `{escape_controls(s['explainer_path'])}`",
        f"- Started {local_time(s['started'])}, last active {local_time(s['updated'])}",
        f"- {plural(s['turn_count'], 'reader turn')}, {plural(s['message_count'], 'message')}{_usage_note(s, ', ')}",
        "",
    ]
    for m in data["messages"]:
        label = _ROLE_LABEL.get(m["role"], m["role"])
        out.append(f"## {label} · {local_time(m['created'])}")
        out.append("")
        text = escape_controls(m["text"]).rstrip()
        if m["role"] == "reader":
            out += [("> " + line) if line else ">" for line in (text or "(empty)").split("\n")]
        else:
            out.append(text or "_(no text)_")
        if not m["complete"]:
            out += ["", "_(This reply was interrupted and is incomplete.)_"]
        out.append("")
    if data["concept_states"]:
        out += ["## Where the reader got to", "", "| Concept | State | Evidence |", "|---|---|---|"]
        for st in data["concept_states"]:
            name = titles.get(st["concept_id"]) or st["concept_id"]
            cells = [escape_controls(x).replace("|", "\\|").replace("\n", " ") for x in (name, st["state"], st["evidence"])]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if data.get("include_feedback") and data["feedback"]:
        out += ["## Feedback for the author", ""]
        for f in data["feedback"]:
            about = f" on {titles.get(f['concept_id']) or f['concept_id']}" if f["concept_id"] else ""
            body = escape_controls(f["text"]).replace("\n", "\n  ")
            times = f" (×{f['count']})" if f.get("count", 1) > 1 else ""
            out.append(f"- ({f['source']}{escape_controls(about)}) {body}{times}")
        out.append("")
    # Raw HTML from the reader, the model or the explainer must stay text in any viewer.
    return inert_links(inert_markdown("\n".join(out).rstrip())) + "\n"


# -- HTML ----------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'"

_CSS = """
:root { color-scheme: light dark; --bg: #fbfaf7; --fg: #1f2328; --muted: #656d76;
  --reader: #e8f0fe; --tutor: #ffffff; --border: #d0d7de; --accent: #0b6bcb; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0;
  --reader: #15243b; --tutor: #161b22; --border: #30363d; --accent: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 46rem; margin: 0 auto; padding: 2rem 1rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.meta { color: var(--muted); font-size: .9rem; margin: 0 0 2rem; }
.meta code { font-size: .85rem; }
.msg { border: 1px solid var(--border); border-radius: 10px; padding: .75rem 1rem; margin: 1rem 0; }
.msg.reader { background: var(--reader); margin-left: 3rem; }
.msg.tutor { background: var(--tutor); margin-right: 3rem; }
.msg.system { background: transparent; border-style: dashed; color: var(--muted); }
.who { font-size: .8rem; color: var(--muted); margin-bottom: .35rem; }
.who b { color: var(--fg); }
.plain { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.body > :first-child { margin-top: 0; } .body > :last-child { margin-bottom: 0; }
pre { overflow-x: auto; background: rgba(127,127,127,.12); padding: .6rem; border-radius: 6px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.incomplete { color: #b35900; font-size: .85rem; margin-top: .5rem; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { border-bottom: 1px solid var(--border); padding: .35rem .5rem; text-align: left; vertical-align: top; }
.state { font-weight: 600; }
h2 { font-size: 1.15rem; margin-top: 2.5rem; }
a { color: var(--accent); }
"""


_MD: Any = None  # one markdown-it parser per process: building it costs more than rendering


def _markdown_html(text: str) -> str:
    """Tutor replies are Markdown: render it with raw HTML off, so any tag in the text is
    shown as text. Images are off too (they could only be remote loads)."""
    global _MD
    if _MD is None:
        from tutor.explainer import new_markdown

        _MD = new_markdown().disable("image")
    return _MD.render(escape_controls(text))


def to_html(data: dict[str, Any]) -> str:
    e = html.escape
    s = data["session"]
    titles = _concept_titles(data)
    title = escape_controls(_title(data))
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(title)} - tutor transcript</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{e(title)}</h1>",
        '<p class="meta">',
        f"Session <code>{e(s['id'])}</code> · {e(s['mode'])} · {e(s['status'])}<br>",
        f"Explainer <code>{e(escape_controls(s['explainer_path']))}</code><br>",
        f"Started {e(local_time(s['started']))} · last active {e(local_time(s['updated']))} · "
        f"{plural(int(s['turn_count']), 'reader turn')}{e(_usage_note(s, ' · '))}",
        "</p>",
    ]
    for m in data["messages"]:
        role = m["role"] if m["role"] in _ROLE_LABEL else "system"
        label = _ROLE_LABEL.get(m["role"], m["role"])
        parts.append(f'<section class="msg {role}">')
        parts.append(f'<div class="who"><b>{e(label)}</b> · {e(local_time(m["created"]))}</div>')
        if role == "tutor":
            parts.append(f'<div class="body">{_markdown_html(m["text"])}</div>')
        else:
            parts.append(f'<p class="plain">{e(escape_controls(m["text"]))}</p>')
        if not m["complete"]:
            parts.append('<div class="incomplete">This reply was interrupted and is incomplete.</div>')
        parts.append("</section>")
    if data["concept_states"]:
        parts += ["<h2>Where the reader got to</h2>", "<table>", "<tr><th>Concept</th><th>State</th><th>Evidence</th></tr>"]
        for st in data["concept_states"]:
            name = titles.get(st["concept_id"]) or st["concept_id"]
            parts.append(
                f"<tr><td>{e(escape_controls(name))}</td><td class=\"state\">{e(escape_controls(st['state']))}</td>"
                f"<td>{e(escape_controls(st['evidence']))}</td></tr>"
            )
        parts.append("</table>")
    if data.get("include_feedback") and data["feedback"]:
        parts += ["<h2>Feedback for the author</h2>", "<ul>"]
        for f in data["feedback"]:
            about = f" on {titles.get(f['concept_id']) or f['concept_id']}" if f["concept_id"] else ""
            parts.append(
                f"<li><b>{e(f['source'])}{e(escape_controls(about))}</b>: "
                f'<span class="plain">{e(escape_controls(f["text"]))}</span>'
                + (f" (×{int(f['count'])})" if f.get("count", 1) > 1 else "")
                + "</li>"
            )
        parts.append("</ul>")
    parts += ["</main></body>", "</html>", ""]
    return "\n".join(parts)


def render(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(data)
    if fmt == "html":
        return to_html(data)
    if fmt == "md":
        return to_markdown(data)
    raise TutorError(f"unknown export format {fmt!r}", hint=f"Use one of: {', '.join(FORMATS)}.")


def export_session(
    store: Store, session_id: str, fmt: str = "md", *, include_feedback: bool = False, include_paths: bool = False
) -> str:
    return render(transcript_data(store, session_id, include_feedback=include_feedback, include_paths=include_paths), fmt)


def default_filename(session: SessionRow, fmt: str) -> str:
    """``tutor-<title-slug>-<id8>.<ext>``: readable, and unique per session."""
    name = slug(session.explainer_title or "", limit=40, fallback="session")
    return f"tutor-{name}-{session.id[:8]}.{fmt}"


_EXTENSIONS = {"md": "md", "markdown": "md", "json": "json", "html": "html", "htm": "html"}


def format_for(output: str | None, fmt: str | None = None) -> str:
    """The format asked for, else the one ``-o``'s extension names, else Markdown."""
    if fmt:
        return fmt
    ext = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    return _EXTENSIONS.get(ext, "md")


class Written(BaseModel):
    """What ``write_export`` did: ``path`` is None when the text is for stdout (``-o -``)."""

    path: Path | None
    text: str
    fmt: str


def write_export(
    store: Store,
    session_id: str,
    *,
    fmt: str | None = None,
    output: str | None = None,
    folder: str | Path | None = None,
    include_feedback: bool = False,
    include_paths: bool = False,
    force: bool = False,
) -> Written:
    """THE export rule, for ``tutor export`` and the app's Ctrl+S alike (docs/database.md):

    - no ``output``: ``tutor-<title>-<id8>.<ext>`` in ``folder`` (default: the current
      folder, where the reader ran tutor), refreshed if it is there already (the name is ours);
    - ``output`` a folder: that name in that folder;
    - ``output`` a file: that file, never overwritten without ``force``;
    - ``output`` ``-``: nothing written; the caller prints ``text`` to stdout.

    The caller tells the reader the path. Errors are TutorErrors of one line naming the path.
    """
    import os

    from tutor.files import atomic_write

    fmt = format_for(output, fmt)
    if fmt not in FORMATS:
        raise TutorError(f"unknown export format {fmt!r}", hint=f"Use one of: {', '.join(FORMATS)}.")
    row = store.get_session(session_id)
    text = export_session(store, session_id, fmt, include_feedback=include_feedback, include_paths=include_paths)
    if output == "-":
        return Written(path=None, text=text, fmt=fmt)
    base = Path(folder) if folder is not None else Path(".")
    target = Path(output) if output else base / default_filename(row, fmt)
    try:
        is_dir = target.is_dir()
    except OSError as e:  # a name over 255 bytes (ENAMETOOLONG) is not "no such file" to pathlib
        raise TutorError(f"{target}: cannot write ({e.strerror or e})", hint="Choose a shorter -o name.") from None
    if output and is_dir:  # -o exports/ : the usual name, in that folder
        target = target / default_filename(row, fmt)
    elif output and output.endswith(("/", os.sep)):
        raise TutorError(f"{output}: no such folder", hint="Create it first, or give a file name with -o.")
    try:  # the default name is ours; -o FILE may be anything, so only --force replaces it
        atomic_write(target, text, overwrite=force or not output or is_dir)
    except OSError as e:
        raise TutorError(f"{target}: cannot write ({e.strerror or e})", hint="Choose another folder with -o.") from None
    return Written(path=target, text=text, fmt=fmt)
