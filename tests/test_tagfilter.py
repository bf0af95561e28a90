"""The streaming tag filter: protocol tags never reach the reader, everything else does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tutor.engine.claude import ClaudeBackend
from tutor.engine.session import TutorSession
from tutor.engine.tagfilter import TAG_NAMES, Tag, TagFilter, feedback_notes, state_tags, strip_tags
from tutor.explainer import load
from tutor.export import export_session
from tutor.store import Store

import fake_api
from conftest import EXPLAINERS
from engine_helpers import collect, text_of


def run_chunks(chunks: list[str]) -> tuple[str, list[Tag]]:
    f = TagFilter()
    visible, tags = [], []
    for c in chunks:
        v, t = f.feed(c)
        visible.append(v)
        tags.extend(t)
    v, t = f.close()
    visible.append(v)
    tags.extend(t)
    return "".join(visible), tags


def test_feedback_and_state_hidden():
    text = (
        'Great, you know pages.\n<state concept="pages" value="known">said "yes, I know pages"</state>\n'
        "Next: the WAL file. "
        '<feedback concept="wal">The section never says where the -wal file lives.</feedback>'
        "Do you know what a checkpoint is?"
    )
    visible, tags = TagFilter.filter_all(text)
    assert visible == "Great, you know pages.\nNext: the WAL file. Do you know what a checkpoint is?"
    assert [t.name for t in tags] == ["state", "feedback"]
    assert tags[0].attrs == {"concept": "pages", "value": "known"}
    assert tags[0].text == 'said "yes, I know pages"'
    assert tags[1].attrs["concept"] == "wal"
    assert tags[1].text.startswith("The section never says")
    assert all(t.complete for t in tags)


def test_self_closing_state_and_single_quotes():
    visible, tags = TagFilter.filter_all("A<state concept='x' value='shaky' />B")
    assert visible == "AB"
    assert tags == [Tag(name="state", attrs={"concept": "x", "value": "shaky"}, text="", complete=True)]


def test_tag_on_its_own_line_leaves_no_blank_line():
    visible, _ = TagFilter.filter_all('One.\n<state concept="a" value="known"/>\nTwo.')
    assert visible == "One.\nTwo."


def test_things_that_only_look_like_tags_are_kept():
    cases = [
        "if a < b and b > c then",
        "a<b",
        "<feedbackform> is an HTML element",
        "<stated>",
        "use `<feedback>` tags to talk to the author",
        "inline `` <state value='x'> `` with a double span",
        '```html\n<feedback concept="x">not for real</feedback>\n```\nafter',
        '~~~\n<state concept="a" value="known"/>\n~~~\n',
        "<div class='x'>html</div>",
        "x <feedback but no closing angle",
        "<feedback onclick=alert(1)>unquoted attrs are not our syntax</feedback>",
        "3 <state of the art> 4",
        "trailing <feedbackform",
    ]
    for text in cases:
        visible, tags = TagFilter.filter_all(text)
        # A stray closing tag alone is hidden by design; everything else is kept verbatim.
        expected = text.replace("</feedback>", "") if "onclick" in text else text
        assert visible == expected, text
        assert tags == [], text


def test_a_reply_ending_in_the_start_of_a_tag_drops_it():
    # Issue 9.2: the stream ends before the tag is complete; none of it is the reader's text.
    for tail in ["<", "<fe", "<feedback", "<feedback ", '<state concept="pa', "<state concept='a' value=",
                 "<reader_mod", "</", "</feedb", "<feedback concept=\"a\" /"]:
        text = "Do you know what a prerequisite is?" + tail
        assert TagFilter.filter_all(text) == ("Do you know what a prerequisite is?", []), tail
        for k in range(len(text) + 1):
            assert run_chunks([text[:k], text[k:]])[0] == "Do you know what a prerequisite is?", (tail, k)
    # In a code span or fence the same characters are the reader's.
    assert TagFilter.filter_all("type `<fe")[0] == "type `<fe"
    assert TagFilter.filter_all("```\n<fe")[0] == "```\n<fe"


def test_tag_after_a_fence_is_hidden_again():
    text = '```\n<feedback>kept</feedback>\n```\n<feedback>hidden</feedback>done'
    visible, tags = TagFilter.filter_all(text)
    assert visible == "```\n<feedback>kept</feedback>\n```\ndone"
    assert [t.text for t in tags] == ["hidden"]


def test_code_span_ends_at_the_end_of_the_line():
    # An unmatched backtick does not keep a tag on a later line visible.
    for text, expected in [
        ("a ` b\n\n<state concept=\"a\" value=\"known\"/>c", "a ` b\n\nc"),
        ("The `-wal file holds frames.\n<state concept=\"a\" value=\"explained\"/>", "The `-wal file holds frames.\n"),
    ]:
        visible, tags = TagFilter.filter_all(text)
        assert visible == expected
        assert len(tags) == 1
    # On the same line, an open span still protects what follows.
    assert TagFilter.filter_all("x `<state concept='a' value='known'/>")[0] == "x `<state concept='a' value='known'/>"


def test_unterminated_feedback_is_hidden_and_marked_incomplete():
    visible, tags = run_chunks(["Sure. <feedback concept=\"a\">The example in", " section 2 is wro"])
    assert visible == "Sure. "
    assert tags == [Tag(name="feedback", attrs={"concept": "a"}, text="The example in section 2 is wro", complete=False)]


def test_split_everywhere_in_a_tag():
    text = 'x<feedback concept="c">note</feedback>y'
    for k in range(len(text) + 1):
        visible, tags = run_chunks([text[:k], text[k:]])
        assert visible == "xy", k
        assert [t.text for t in tags] == ["note"], k


def test_nothing_leaks_before_the_tag_is_decided():
    f = TagFilter()
    assert f.feed("Hello <fee") == ("Hello ", [])
    assert f.feed("dback>secret") == ("", [])
    assert f.feed("</feed") == ("", [])
    v, t = f.feed("back> bye")
    assert v == " bye" and t[0].text == "secret"


def test_stray_closing_tag_hidden():
    assert TagFilter.filter_all("ok</feedback> fine")[0] == "ok fine"


# -- randomized chunking ----------------------------------------------------------------

PIECES = [
    "Hello ", "world", "\n", "\n\n", " ", "a < b", "<", ">", "`", "```", "```\n", "~~~\n", "code",
    '<feedback concept="pages">', "</feedback>", '<state concept="wal" value="known">', "</state>",
    '<state concept="x" value="shaky"/>', "<feedback>", "<feedbackform>", "<stat", "</", "feedback",
    "state", '"', "'", "=", "/", "é", "<div>", "**bold**", "<reader_model>", "</reader_model>", "<read",
]


@st.composite
def texts_and_cuts(draw):
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))
    if draw(st.booleans()):
        text += draw(st.text(alphabet="<>/`~\"'= \nfeedbackstat", max_size=30))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    chunks, prev = [], 0
    for c in cuts:
        chunks.append(text[prev:c])
        prev = c
    chunks.append(text[prev:])
    return text, chunks


@settings(max_examples=400, deadline=None)
@given(texts_and_cuts())
def test_random_chunking_matches_whole_string(tc):
    text, chunks = tc
    assert run_chunks(chunks) == TagFilter.filter_all(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abc xyz.,\n", min_size=1, max_size=15).map(lambda s: ("text", s)),
            st.text(alphabet="abc <>xyz.", max_size=20).map(lambda s: ("feedback", s)),
            st.sampled_from(["known", "shaky", "asked"]).map(lambda v: ("state", v)),
        ),
        max_size=12,
    ),
    st.integers(1, 7),
)
def test_real_tags_never_reach_the_reader(parts, step):
    """Plain prose around real tags: the reader sees exactly the prose, whatever the chunking."""
    raw, expected_tags = [], []
    for kind, s in parts:
        if kind == "text":
            raw.append(s)
        elif kind == "feedback":
            body = s.replace("<", "").replace(">", "")
            raw.append(f"<feedback>{body}</feedback>")
            expected_tags.append(("feedback", body.strip()))
        else:
            raw.append(f'<state concept="c" value="{s}"/>')
            expected_tags.append(("state", ""))
    text = "".join(raw)
    chunks = [text[i : i + step] for i in range(0, len(text), step)] or [""]
    visible, tags = run_chunks(chunks)
    assert "<feedback" not in visible and "<state" not in visible
    assert [(t.name, t.text) for t in tags] == expected_tags
    # Only newlines directly after a tag may be dropped.
    assert visible.replace("\n", "") == "".join(s for k, s in parts if k == "text").replace("\n", "")


def test_an_imitated_reader_model_block_is_hidden():
    visible, tags = TagFilter.filter_all("Sure.\n<reader_model>\ncurrent concept: pages\n</reader_model>\nNext.")
    assert visible == "Sure.\nNext."
    assert [t.name for t in tags] == ["reader_model"]
    assert TagFilter.filter_all("<reader_modelling> is text")[0] == "<reader_modelling> is text"


# -- through the engine and an export ------------------------------------------------------


async def test_a_stream_ending_in_a_partial_tag_shows_stores_and_exports_none_of_it(api, tmp_path):
    """Issue 9.2 end to end: real SDK over HTTP to the fake API, a real SQLite file, the md
    and html exports; the tag start is cut at every chunk size."""
    question = "Do you already know what a page is, the prerequisite?"
    explainer = load(EXPLAINERS / "sqlite-wal.md")
    store = Store.open(tmp_path / "tutor.db")
    for chunk_size in (1, 3, 16):
        api.enqueue(fake_api.text(question + "<fe", chunk_size=chunk_size, stop_reason="max_tokens"))
        backend = ClaudeBackend(None, api_key="test-key", base_url=api.url, max_retries=0, timeout=5.0)
        s = TutorSession.open(explainer, store, backend=backend, new=True)
        events = await collect(s.start())
        assert text_of(events) == question, chunk_size
        [m] = [m for m in store.messages(s.id) if m.role == "tutor"]
        assert m.text == question and m.raw == question + "<fe"
        for fmt in ("md", "html"):
            out = export_session(store, s.id, fmt)
            assert "prerequisite?" in out and "<fe" not in out and "&lt;fe" not in out, fmt
    store.close()


# -- one parser for the protocol: the whole-text helpers agree with the stream ----------------

FENCED = (
    "Here is the syntax:\n```\n<state concept=\"pages\" value=\"known\"/>\n"
    "<feedback>shown to the reader, not a note</feedback>\n```\n"
    "Done. <feedback>the real note</feedback>"
)


def test_a_tag_inside_a_code_fence_is_text_for_the_stream_the_prompt_and_the_export():
    from tutor.engine.prompt import tagged_concepts
    from tutor.export import strip_feedback

    visible, tags = TagFilter.filter_all(FENCED)
    assert [(t.name, t.text) for t in tags] == [("feedback", "the real note")]
    assert "shown to the reader" in visible
    assert tagged_concepts(FENCED) == []  # the reader model never heard of it either
    assert strip_feedback(FENCED) == FENCED.removesuffix("<feedback>the real note</feedback>")


async def test_a_reply_cut_inside_feedback_leaves_no_note_in_any_export(api, tmp_path):
    """Issue 11: the regex needed a closing tag, so a reply cut by max_tokens inside
    <feedback> kept the note in the JSON export's ``raw`` made without --include-feedback."""
    import json

    reply = 'Pages are blocks. <state concept="pages" value="asked"/>Ready?\n<feedback concept="pages">Zebranote the section never'
    explainer = load(EXPLAINERS / "sqlite-wal.md")
    store = Store.open(tmp_path / "tutor.db")
    api.enqueue(fake_api.text(reply, chunk_size=7, stop_reason="max_tokens"))
    backend = ClaudeBackend(None, api_key="test-key", base_url=api.url, max_retries=0, timeout=5.0)
    s = TutorSession.open(explainer, store, backend=backend, new=True)
    await collect(s.start())
    [m] = [m for m in store.messages(s.id) if m.role == "tutor"]
    assert "Zebranote" in (m.raw or "") and "Zebranote" not in m.text
    for fmt in ("md", "html", "json"):
        assert "Zebranote" not in export_session(store, s.id, fmt), fmt
        assert "Zebranote" in export_session(store, s.id, fmt, include_feedback=True), fmt
    [tm] = [m for m in json.loads(export_session(store, s.id, "json"))["messages"] if m["role"] == "tutor"]
    # the rest of raw is kept: later turns and a re-import need the state tag
    assert tm["raw"] == 'Pages are blocks. <state concept="pages" value="asked"/>Ready?\n'
    store.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join), st.sets(st.sampled_from(TAG_NAMES)))
def test_strip_tags_removes_what_the_stream_hides_and_keeps_the_rest(text, names):
    """The whole-text helpers are the stream filter: stripping every tag is what the reader
    saw, stripping none changes nothing, stripping some leaves the others to the filter."""
    visible, tags = TagFilter.filter_all(text)
    assert strip_tags(text) == visible
    assert strip_tags(text, ()) == text
    kept = strip_tags(text, tuple(names))
    kept_visible, kept_tags = TagFilter.filter_all(kept)
    # (Unless what is left ends in what looks like a tag start: '<stat<' or '<read</feedback>'
    # leave '<stat' / '<read' at the very end, which the filter drops as a cut-off tag.)
    if TagFilter.filter_all(kept + "\n")[0] == kept_visible + "\n":
        assert kept_visible == visible
        assert kept_tags == [t for t in tags if t.name not in names]
    assert state_tags(text) == [t for t in tags if t.name == "state"]
    assert feedback_notes(text) == [t for t in tags if t.name == "feedback"]


def test_strip_tags_keeps_other_tags_byte_for_byte():
    raw = 'A <state concept="pages" value="known">said so</state>\n<feedback>note</feedback>\nB </feedback> C <fe'
    assert strip_tags(raw, ("feedback",)) == 'A <state concept="pages" value="known">said so</state>\nB  C '
    assert strip_tags(raw, ("state",)) == 'A \n<feedback>note</feedback>\nB </feedback> C <fe'
    cut = 'Hi <state concept="pages" value="asked">the evidence was'
    assert strip_tags(cut, ("feedback",)) == cut and strip_tags(cut) == "Hi "
    assert [t.complete for t in state_tags(cut)] == [False]


def test_a_kept_tag_does_not_change_what_counts_as_a_code_fence():
    """Found by hypothesis: a kept '</state>' before a fence made strip_tags strip the
    '<feedback>' the stream filter shows as code (the fence is at the start of the line
    once the tag is hidden)."""
    raw = "</state>```\n<feedback>"
    assert TagFilter.filter_all(raw)[0] == "```\n<feedback>"
    assert strip_tags(raw, ("feedback",)) == raw
    assert strip_tags('x <state concept="a" value="known">ok</state>\n```\n<feedback>code</feedback>\n```\n', ("feedback",)).count("<feedback>") == 1


def test_a_hidden_tag_after_a_kept_tag_does_not_eat_the_paragraph_break():
    """Found in review: after a kept tag at the start of a line, a hidden tag ate the line's
    newline, and filtering the result again ate another: a paragraph break lost in exports."""
    raw = 'Hi\n<state concept="a" value="known"/><feedback>n</feedback>\n\nNext'
    assert TagFilter.filter_all(raw)[0] == "Hi\n\nNext"
    kept = strip_tags(raw, ("feedback",))
    assert kept == 'Hi\n<state concept="a" value="known"/>\n\nNext'
    assert TagFilter.filter_all(kept)[0] == "Hi\n\nNext"
