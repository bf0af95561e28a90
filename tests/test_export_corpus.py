"""Export and store robustness on real and generated text.

- Every CommonMark spec example (the shared corpus) as a tutor reply: the HTML export has
  no active content at all (no script, image, frame, form or event handler), and the JSON
  export gives every text back byte for byte.
- Property tests (hypothesis): any text, including control characters and lone surrogates,
  is stored, searched and exported without an error, and the HTML page shows it as text.
- The Markdown export, parsed by a CommonMark parser with raw HTML on (what a Markdown
  viewer does), holds no raw HTML: not for the corpus, not for generated tag soup.
"""

from __future__ import annotations

import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from tutor.export import export_session, inert_markdown, load_json_export, to_markdown, transcript_data
from tutor.store import Store
from tutor.text import escape_controls as clean_text

from store_workers import sample_explainer

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
ACTIVE_TAGS = {"script", "img", "iframe", "frame", "object", "embed", "form", "input", "textarea",
               "button", "link", "meta", "base", "svg", "math", "video", "audio", "source", "style"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_head = True
        self.body_tags: list[tuple[str, dict]] = []
        self.plain: list[str] = []
        self._plain_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_head = False
        elif not self.in_head:
            self.body_tags.append((tag, dict(attrs)))
        if dict(attrs).get("class") == "plain":
            self._plain_depth = 1
            self.plain.append("")

    def handle_endtag(self, tag):
        if self._plain_depth and tag in ("p", "span"):
            self._plain_depth = 0

    def handle_data(self, data):
        if self._plain_depth:
            self.plain[-1] += data


def _assert_inert(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    p.close()
    for tag, attrs in p.body_tags:
        assert tag not in ACTIVE_TAGS, (tag, attrs)
        assert not any(k.lower().startswith("on") for k in attrs), (tag, attrs)
        assert "src" not in attrs and "style" not in attrs, (tag, attrs)
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
    return p


_VIEWER = MarkdownIt("commonmark")  # raw HTML on, as in GitHub-style viewers before sanitizing


def _raw_html(md: str) -> list[str]:
    found = []
    for tok in _VIEWER.parse(md):
        if tok.type == "html_block":
            found.append(tok.content)
        for child in tok.children or []:
            if child.type == "html_inline":
                found.append(child.content)
    return found


def _new_store(dirpath: Path) -> tuple[Store, str]:
    store = Store.open(dirpath / "c.db")
    ex = sample_explainer("corpus.md")
    sid = store.create_session(store.upsert_explainer(ex), ex.path, "offline")
    return store, sid


@pytest.mark.skipif(not (CORPUS / "commonmark").is_dir(), reason="shared corpus not present")
def test_every_commonmark_example_exports_inert_html_and_exact_json(tmp_path):
    files = sorted((CORPUS / "commonmark").glob("ex*.md"))
    assert len(files) > 600
    store, sid = _new_store(tmp_path)
    texts = [f.read_text(encoding="utf-8", errors="surrogateescape") for f in files]
    for text in texts:
        store.add_message(sid, "reader", text)
        store.add_message(sid, "tutor", text, raw=text)
    _assert_inert(export_session(store, sid, "html"))
    out = tmp_path / "corpus.json"
    out.write_text(export_session(store, sid, "json"), encoding="utf-8")
    t = load_json_export(out)
    stored = [m.text for m in t.messages]
    expected = [x for text in texts for x in (text, text)]
    expected = [x.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for x in expected]
    assert stored == expected
    md = to_markdown(transcript_data(store, sid))
    assert "\x1b" not in md and "\x00" not in md
    assert sum(len(_raw_html(t)) for t in texts) > 50  # the corpus really holds raw HTML (94 pieces)
    assert _raw_html(md) == []
    store.close()


_SOUP = st.text(alphabet=st.sampled_from(list("<>/!?-`~ \n\t&;=\"'abpscriptdv:4*_[]()#|")), max_size=120)


@settings(max_examples=300, deadline=None)
@given(text=_SOUP)
def test_inert_markdown_leaves_no_raw_html_and_keeps_html_free_text(text):
    out = inert_markdown(text)
    assert _raw_html(out) == []
    if not _raw_html(text):
        assert out == text  # nothing to defuse: the text is untouched
    # only "<" is ever rewritten
    assert out.replace("&lt;", "<") == text.replace("&lt;", "<")


def test_inert_markdown_keeps_code_and_defuses_the_rest():
    assert inert_markdown("use `<feedback>` tags, not <b>bold</b>") == "use `<feedback>` tags, not &lt;b>bold&lt;/b>"
    assert inert_markdown("```\n<script>\n```\n<i>x</i>") == "```\n<script>\n```\n&lt;i>x&lt;/i>"
    assert inert_markdown("a <http://example.com> link and 2 < 3") == "a <http://example.com> link and 2 < 3"
    # An HTML block that turns into a paragraph pulls the indented line after it out of
    # code and into the paragraph, so a second pass has to defuse that line too.
    assert _raw_html(inert_markdown("<!-- c -->\n    <b>x</b>")) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=200),
       query=st.text(max_size=40))
def test_any_text_is_stored_searched_and_escaped(text, query):
    with tempfile.TemporaryDirectory() as d:
        store, sid = _new_store(Path(d))
        mid = store.add_message(sid, "reader", text, raw=text)
        saved = store.get_message(mid).text
        assert saved == text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        store.search(query)  # never raises, whatever the query
        store.search(saved[:30])
        page = export_session(store, sid, "html")
        p = _assert_inert(page)
        # the reader's paragraph shows exactly the cleaned text
        assert p.plain == [clean_text(saved)]
        md = export_session(store, sid, "md")
        assert "\x1b" not in md
        store.close()
