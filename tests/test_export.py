"""Transcript export: JSON round trip, Markdown, and HTML checked in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tutor.engine.events import TokenUsage
from tutor.errors import TutorError
from tutor.export import (
    CSP,
    export_session,
    load_json_export,
    strip_feedback,
)
from tutor.store import Store
from tutor.text import escape_controls as clean_text

from store_workers import sample_explainer

HOSTILE_READER = (
    "<script>document.title='PWNED'</script> is this </textarea> [bold]markup[/bold]?"
    ' <img src=x onerror="document.body.setAttribute(\'data-pwned\',\'1\')"> \x1b[31mred\x1b[0m'
)
HOSTILE_TUTOR = (
    "A **page** is a block. Not HTML: <script>document.title='PWNED'</script> and </textarea>"
    " and [bold]not rich[/bold]. [click](javascript:document.title='PWNED') ![img](http://example.com/x.png)\n\n"
    "```\n<iframe src=\"http://example.com\"></iframe>\n```"
)
FEEDBACK_TEXT = "Section 'Pages' never says how big a page is"


def make_session(store: Store) -> str:
    ex = sample_explainer("hostile.md")
    ex = ex.model_copy(update={"title": "Pages <script>alert(1)</script> & [b]WAL[/b]"})
    h = store.upsert_explainer(ex)
    sid = store.create_session(h, ex.path, "claude:claude-sonnet-test")
    store.add_message(sid, "system", "Session started.")
    store.add_message(sid, "reader", HOSTILE_READER)
    # The note on its own line: right after the closing ``` it would be on the fence's line,
    # which then does not close the fence, and a tag in a fence is text (docs/tag-protocol.md).
    raw = HOSTILE_TUTOR + f'\n<feedback concept="pages">{FEEDBACK_TEXT}</feedback>'
    usage = TokenUsage(input_tokens=120, output_tokens=40, cache_read_input_tokens=900,
                       cache_creation_input_tokens=1000, cost_usd=0.0123)
    mid = store.add_message(sid, "tutor", HOSTILE_TUTOR, raw=raw, complete=True,
                            usage=usage)
    store.add_usage(sid, usage)
    store.add_message(sid, "reader", "and the WAL?\nsecond line")
    cut = store.add_message(sid, "tutor", "The WAL is", raw="The WAL is", complete=False)
    store.set_concept_state(sid, "pages", "understood", "explained <b>it</b> back", message_seq=3)
    store.set_concept_state(sid, "wal", "asked", "", message_seq=5)
    store.add_feedback(sid, h, "pages", FEEDBACK_TEXT, "model")
    store.add_feedback(sid, h, None, "reader says: great | thanks", "reader")
    store.save_summary(sid, 3, "Reader knows pages.")
    assert mid and cut
    return sid


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "e.db")
    yield s
    s.close()


def test_json_round_trip_holds_every_message_state_and_feedback_row(store, tmp_path):
    sid = make_session(store)
    out = tmp_path / "t.json"
    out.write_text(export_session(store, sid, "json", include_feedback=True, include_paths=True), encoding="utf-8")
    t = load_json_export(out)
    assert t.format == "tutor-transcript" and t.version == 1 and t.include_feedback
    assert t.session == store.get_session(sid)
    assert t.messages == store.messages(sid)
    assert t.concept_states == list(store.concept_states(sid).values())
    assert t.feedback == store.feedback(session_id=sid) and all(f.uid for f in t.feedback)
    assert [(x.concept_id, x.state) for x in t.state_log] == [("pages", "understood"), ("wal", "asked")]
    assert [s.text for s in t.summaries] == ["Reader knows pages."]
    assert t.explainer.title.startswith("Pages <script>")
    assert [m.complete for m in t.messages] == [True, True, True, True, False]
    assert t.messages[2].raw.endswith("</feedback>")
    assert t.messages[2].cache_read_input_tokens == 900 and t.messages[2].cost_usd == 0.0123


def test_feedback_is_left_out_unless_asked_for(store):
    sid = make_session(store)
    for fmt in ("md", "json", "html"):
        text = export_session(store, sid, fmt)
        assert "never says how big" not in text, fmt
        assert "great | thanks" not in text, fmt
        with_fb = export_session(store, sid, fmt, include_feedback=True)
        assert "never says how big" in with_fb.replace("&#x27;", "'"), fmt
    data = json.loads(export_session(store, sid, "json"))
    assert data["feedback"] == [] and data["include_feedback"] is False
    assert all("<feedback" not in (m["raw"] or "") for m in data["messages"])
    assert len(data["messages"]) == 5 and len(data["concept_states"]) == 2
    assert strip_feedback('a<feedback concept="x">b\nc</feedback>d<feedback>e</feedback >') == "ad"


def test_markdown_reads_well_and_carries_no_terminal_escapes(store):
    sid = make_session(store)
    md = export_session(store, sid, "md")
    assert md.startswith("# Pages &lt;script>alert(1)&lt;/script> & [b]WAL[/b]\n")  # a viewer shows the tag as text
    assert "## Reader" in md and "## Tutor" in md and "## Note" in md
    assert "> and the WAL?\n> second line" in md
    assert "_(This reply was interrupted and is incomplete.)_" in md
    assert "| Pages | understood | explained &lt;b>it&lt;/b> back |" in md
    assert "\x1b" not in md and "\\x1b[31mred" in md
    assert "claude:claude-sonnet-test" in md and "$0.0123" in md


def test_clean_text_makes_control_characters_visible():
    assert clean_text("a\x1b[2Jb\x07c\r\nd\te\x9b") == "a\\x1b[2Jb\\x07c\nd\te\\x9b"


def test_load_json_export_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TutorError, match="bad.json:1: not a JSON transcript"):
        load_json_export(bad)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else"}')
    with pytest.raises(TutorError, match="not a tutor transcript"):
        load_json_export(other)
    newer = tmp_path / "newer.json"
    newer.write_text('{"format": "tutor-transcript", "version": 99}')
    with pytest.raises(TutorError, match="newer than this tutor"):
        load_json_export(newer)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "tutor-transcript", "version": 1, "exported_at": "x", "session": {}}')
    with pytest.raises(TutorError, match="broken.json: bad transcript field session"):
        load_json_export(broken)


# -- HTML -----------------------------------------------------------------------------------


class _Inspect(HTMLParser):
    """Collects tags, attributes and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.text.append(data)


def _inspect(html_text: str) -> _Inspect:
    p = _Inspect()
    p.feed(html_text)
    p.close()
    return p


def test_html_is_self_contained_and_escapes_everything(store):
    sid = make_session(store)
    page = export_session(store, sid, "html", include_feedback=True)
    p = _inspect(page)
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and "iframe" not in tags and "img" not in tags and "textarea" not in tags
    assert "link" not in tags  # no external stylesheet
    metas = [a for t, a in p.tags if t == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "src" not in attrs, attrs  # nothing is loaded from anywhere
        assert not (attrs.get("href") or "").lower().startswith(("javascript:", "data:", "vbscript:")), attrs
    text = "".join(p.text)
    assert "<script>document.title='PWNED'</script>" in text
    assert "</textarea>" in text and "[bold]markup[/bold]" in text and "[bold]not rich[/bold]" in text
    assert "This reply was interrupted" in text
    assert "<strong>page</strong>" in page  # Markdown in tutor replies is rendered...
    assert '<iframe src="http://example.com"></iframe>' in text  # ...but raw HTML stays text
    assert "\x1b" not in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_dom(page: Path, tmp_path: Path) -> str:
    proc = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=2000",
            "--dump-dom", page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_in_headless_chromium_shows_hostile_text_and_runs_no_script(store, tmp_path):
    # Control: the same hostile text as raw HTML does run in this browser, so the check can fail.
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><title>orig</title><body><p>{HOSTILE_READER}</p></body>")
    dom = _inspect(_chromium_dom(control, tmp_path))
    assert dom.title == "PWNED"
    assert any(t == "body" and a.get("data-pwned") == "1" for t, a in dom.tags)

    sid = make_session(store)
    page = tmp_path / "transcript.html"
    page.write_text(export_session(store, sid, "html"), encoding="utf-8")
    dom = _inspect(_chromium_dom(page, tmp_path))
    assert dom.title.endswith("- tutor transcript") and "PWNED" not in dom.title
    assert not any(a.get("data-pwned") for _, a in dom.tags)
    assert "script" not in [t for t, _ in dom.tags]
    visible = "".join(dom.text)
    assert "<script>document.title='PWNED'</script>" in visible
    assert "</textarea>" in visible
    assert "[bold]markup[/bold]" in visible
    assert "The WAL is" in visible and "and the WAL?" in visible


def test_html_renders_markdown_tables_like_the_app(store, tmp_path):
    """9.3: the grapheme table of explainers/unicode-utf8.md was a paragraph of pipes."""
    ex = sample_explainer("t.md")
    sid = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
    reply = ("| Code points | Bytes |\n|---|---|\n| U+0000 to U+007F | 1 |\n| <b>x</b> | ~~old~~ |\n")
    store.add_message(sid, "tutor", reply, raw=reply, complete=True)
    p = _inspect(export_session(store, sid, "html"))
    tags = [t for t, _ in p.tags]
    assert tags.count("th") >= 2 and tags.count("td") >= 4 and "s" in tags
    assert "<b>x</b>" in "".join(p.text)  # raw HTML in a cell stays text
    assert "|---|" not in "".join(p.text)


def test_c1_controls_and_bidi_overrides_are_escaped_in_json_md_and_html(store):
    """16.6: U+009B (C1 CSI) and U+202E (RTL override) stayed raw in JSON and md/html."""
    from tutor.export import load_json_export

    ex = sample_explainer("b.md")
    sid = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
    hostile = "pay \u202eevil\u202c now \x9b31m red \u2066x\u2069"
    store.add_message(sid, "reader", hostile)
    store.add_message(sid, "tutor", hostile, raw=hostile, complete=True)
    for fmt in ("json", "md", "html"):
        out = export_session(store, sid, fmt)
        assert not any(ch in out for ch in "\u202e\u202c\x9b\u2066\u2069"), fmt
    out = export_session(store, sid, "json")
    assert "\\u202e" in out and "\\u009b" in out
    assert json.loads(out)["messages"][0]["text"] == hostile  # lossless: escapes, not deletions
    assert "\\u202e" in export_session(store, sid, "md")
    assert load_json_export  # round-trip reader still imports


@pytest.mark.parametrize("target", ["javascript:alert(1)", "JavaScript:alert(1)", "vbscript:msgbox", "data:text/html,<b>x",
                                    "file:///etc/passwd", "java&#115;cript:alert(1)", " javascript:x"])
def test_markdown_export_neutralises_script_data_and_file_links(store, target):
    """16.6: the Markdown export kept javascript:/vbscript:/data:/file: link targets."""
    from markdown_it import MarkdownIt

    ex = sample_explainer("l.md")
    sid = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
    reply = f"[click]({target}) and <{target.strip()}> and\n\n[ref]: {target}\n\nsee [ref] and [ok](https://example.com)"
    store.add_message(sid, "tutor", reply, raw=reply, complete=True)
    md = export_session(store, sid, "md")
    viewer = MarkdownIt("commonmark", {"linkify": False})
    viewer.validateLink = lambda url: True  # a permissive viewer: markdown-it's own filter is not the reader's
    page = viewer.render(md)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert "https://example.com" in hrefs
    assert not any(h.lower().lstrip().startswith(("javascript:", "vbscript:", "data:", "file:")) for h in hrefs), hrefs
    assert "[click]" in md


def test_exports_name_the_explainer_file_not_the_readers_folders(tmp_path, monkeypatch):
    """Issue 9.12: md, json and html carried /home/<reader>/... unless asked (--include-paths)."""
    from compile_helpers import run_cli

    folder = tmp_path / "private-folder-of-ann"
    folder.mkdir()
    db = tmp_path / "e.db"
    with Store.open(db) as store:
        ex = sample_explainer(str(folder / "wal.md"))
        sid = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
        store.add_message(sid, "tutor", f"Welcome back. {folder / 'wal.md'} has changed since your last visit.")
    monkeypatch.chdir(tmp_path)
    for fmt in ("md", "json", "html"):
        r = run_cli(["export", sid[:8], "-f", fmt, "--db", str(db)])
        assert r.exit_code == 0, r
        written = tmp_path / r.stdout.strip().removeprefix("Wrote ")
        body = written.read_text()
        assert "private-folder-of-ann" not in body and "wal.md" in body, fmt
        r = run_cli(["export", sid[:8], "-f", fmt, "-o", "-", "--include-paths", "--db", str(db)])
        assert str(folder / "wal.md") in r.stdout, fmt
    data = json.loads(run_cli(["export", sid[:8], "-f", "json", "-o", "-", "--db", str(db)]).stdout)
    assert data["session"]["explainer_path"] == data["explainer"]["path"] == "wal.md"
    assert data["include_paths"] is False
    assert data["messages"][0]["text"].startswith("Welcome back. wal.md has changed")
    assert load_json_export(tmp_path / f"tutor-worker-explainer-{sid[:8]}.json").session.explainer_path == "wal.md"
