"""The optional ``feedback:`` front-matter field (where readers of a pasted or published
explainer send notes): loaded, validated by ``tutor check`` with its line, asked for by
``tutor compile``, shown on the published page; and the note to AI assistants that tells
a chatbot to offer such a note instead of hidden tags."""

from __future__ import annotations

from click.testing import CliRunner

from tutor.authoring.compile import with_feedback
from tutor.cli import cli
from tutor.explainer import AI_PREAMBLE, load

from explainer_helpers import v1, write

CONCEPT = "concepts:\n  - id: one\n    title: One\n"
BODY = "## One {#one}\n\ntext\n"


def test_feedback_field_loads(tmp_path):
    for value in ("author@example.org", "https://example.org/issues"):
        ex = load(write(tmp_path, v1(f"title: T\nfeedback: {value}\n{CONCEPT}", BODY)))
        assert ex.feedback == value and not [w for w in ex.warnings if "feedback" in w.message]
    assert load(write(tmp_path, v1(f"title: T\n{CONCEPT}", BODY))).feedback == ""  # optional: v1 files keep loading


def test_check_rejects_a_bad_feedback_value_with_its_line(tmp_path):
    f = write(tmp_path, v1(f"title: T\nfeedback: javascript:alert(1)\n{CONCEPT}", BODY))
    r = CliRunner().invoke(cli, ["check", str(f)])
    assert r.exit_code == 1
    line = next(i for i, ln in enumerate(f.read_text().split("\n"), 1) if ln.startswith("feedback:"))
    assert f"{f}:{line}: feedback must be an email address" in r.output


def test_compile_writes_the_feedback_field(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Topic\n\n## Part one\n\nSome text.\n")
    out = tmp_path / "x.md"
    r = CliRunner().invoke(cli, ["compile", str(notes), "-o", str(out), "--offline", "--feedback", "me@example.org"])
    assert r.exit_code == 0, r.output
    assert load(out).feedback == "me@example.org"
    r = CliRunner().invoke(cli, ["compile", str(notes), "-o", str(tmp_path / "y.md"), "--offline", "--feedback", "nope"])
    assert r.exit_code == 2 and "neither an email address nor an http(s) URL" in r.output
    assert not (tmp_path / "y.md").exists()


def test_with_feedback_keeps_an_existing_field():
    text = "---\ntutor: 1\nfeedback: a@b.org\ntitle: T\n---\n"
    assert with_feedback(text, "c@d.org") == text
    assert with_feedback("---\ntitle: T\n---\n", "c@d.org") == '---\nfeedback: "c@d.org"\ntitle: T\n---\n'


def test_published_page_links_the_feedback_address(tmp_path):
    f = write(tmp_path, v1(f"title: T\nfeedback: me@example.org\n{CONCEPT}", BODY))
    assert CliRunner().invoke(cli, ["publish", str(f), "-o", str(tmp_path / "s")]).exit_code == 0
    assert '<a href="mailto:me@example.org">' in (tmp_path / "s" / "doc.html").read_text()


def test_the_note_for_chatbots():
    note = " ".join(line.removeprefix("> ") for line in AI_PREAMBLE.lower().split("\n"))
    assert "<feedback>" not in note  # a chatbot has no hidden channel to the author
    for rule in ("one line on what it covers", "first prerequisite", "one question per message", "wait",
                 "never show a check's answer before", "misconceptions", "feedback note", "`feedback:`"):
        assert rule in note, rule
