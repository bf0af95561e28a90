"""`tutor compile --offline`: a valid skeleton from any notes, accepted by `tutor check`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor.authoring.compile import validate_text
from tutor.authoring.notes import collect_notes
from tutor.authoring.skeleton import offline_skeleton
from tutor.errors import TutorError
from tutor.explainer import load

from compile_helpers import NOTES_WAL, run_cli, run_tutor
from conftest import CORPUS, EXPLAINERS

SAMPLE_NOTES = sorted(p for p in (EXPLAINERS / "notes").iterdir() if p.is_dir()) if (EXPLAINERS / "notes").is_dir() else []


@pytest.mark.parametrize("notes", SAMPLE_NOTES, ids=lambda p: p.name)
def test_samples_notes_compile_offline_and_pass_check(notes, tmp_path):
    out = tmp_path / "x.md"
    r = run_cli(["compile", str(notes), "--offline", "-o", str(out)])
    assert r.exit_code == 0, r
    assert f"wrote {out}" in r.stdout
    chk = run_cli(["check", str(out)])
    assert chk.exit_code == 0, chk
    exp = load(out)
    assert len(exp.concepts) >= 3 and not exp.plain
    # Linear prerequisites in the notes' order, empty checks, DRAFT markers, the AI preamble.
    for prev, c in zip(exp.concepts, exp.concepts[1:]):
        assert c.prerequisites == [prev.id]
    assert all(c.checks == [] for c in exp.concepts)
    assert all(c.summary.startswith("DRAFT: ") for c in exp.concepts)
    assert "Note to any AI assistant" in exp.preamble and "DRAFT" in exp.preamble
    # Every paragraph of the notes is in the skeleton, verbatim.
    text = out.read_text()
    for f in sorted(notes.iterdir()):
        for para in f.read_text().split("\n\n"):
            para = para.strip()
            if para and not para.startswith("#"):
                assert para in text, (f.name, para[:60])


def test_shipped_entry_point_with_samples_notes(tmp_path):
    """The issue's exact command, as a real process: compile --offline, then check."""
    if not SAMPLE_NOTES:
        pytest.skip("no sample notes")
    out = tmp_path / "x.md"
    p = run_tutor(["compile", str(SAMPLE_NOTES[0]), "--offline", "-o", str(out)])
    assert p.returncode == 0, p.stderr
    p = run_tutor(["check", str(out)])
    assert p.returncode == 0, p.stdout + p.stderr


def test_structure_title_subheadings_and_files(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "01-wal.md").write_text(NOTES_WAL + "\n### Passive vs full\n\nTwo modes.\n")
    (d / "02-extra.txt").write_text("Loose thoughts: durability depends on synchronous.\n")
    (d / ".hidden.md").write_text("# secret\n")
    (d / "image.png").write_bytes(b"\x89PNG\x00")
    text = offline_skeleton(collect_notes([d]))
    exp, problems = validate_text(text, "x.md")
    assert problems == []
    assert exp.title == "WAL notes"
    assert [c.id for c in exp.concepts] == ["overview", "pages", "the-wal-file", "checkpoints", "02-extra"]
    assert [c.title for c in exp.concepts][-1] == "02 extra"
    ck = exp.concept("checkpoints")
    assert "### Passive vs full" in ck.section.text  # an H3 stays inside its section
    assert "secret" not in text and "PNG" not in text


def test_unclosed_fence_does_not_swallow_later_sections(tmp_path):
    a = tmp_path / "a.md"
    a.write_text("# A\n\ntext\n\n```python\nprint(1)\n")
    b = tmp_path / "b.md"
    b.write_text("# B\n\nmore\n")
    exp, problems = validate_text(offline_skeleton(collect_notes([a, b])), "x.md")
    assert problems == []
    assert [c.title for c in exp.concepts] == ["A", "B"]


def test_hostile_titles_cannot_break_the_front_matter(tmp_path):
    n = tmp_path / "n.md"
    n.write_text('# x: y # z\n\nA\n\n# - [yes, no]\n\nB\n\n# "quoted" \\ back\n\nC\n\n# {#Bad Id}\n\nD\n')
    exp, problems = validate_text(offline_skeleton(collect_notes([n])), "x.md")
    assert problems == []
    assert [c.title for c in exp.concepts] == ["x: y # z", "- [yes, no]", '"quoted" \\ back', "{#Bad Id}"]


def test_a_file_without_headings_becomes_one_concept(tmp_path):
    n = tmp_path / "my-rough_notes.txt"
    n.write_text("just one paragraph of thoughts.\n")
    exp, problems = validate_text(offline_skeleton(collect_notes([n])), "x.md")
    assert problems == [] and [(c.id, c.title) for c in exp.concepts] == [("my-rough-notes", "My rough notes")]


def _write(p, data: bytes):
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.md", "missing.md: no such file or folder"),
        (lambda d: (d / "e").mkdir() or d / "e", "no notes found in this folder"),
        (lambda d: _write(d / "bin.md", b"ok\n\xff\xfe bad"), "bin.md:2: not UTF-8 text"),
        (lambda d: _write(d / "empty.md", b"  \n"), "the notes are empty"),
        (lambda d: _write(d / "nul.md", b"a\x00b"), "looks like a binary file"),
    ],
)
def test_bad_notes_are_clear_errors(tmp_path, make, message):
    r = run_cli(["compile", str(make(tmp_path)), "--offline", "-o", str(tmp_path / "out.md")])
    assert r.exit_code == 1 and message in r.stderr, r
    assert not (tmp_path / "out.md").exists()


def test_offline_never_overwrites_without_force(tmp_path):
    n = tmp_path / "n.md"
    n.write_text(NOTES_WAL)
    out = tmp_path / "out.md"
    out.write_text("mine\n")
    r = run_cli(["compile", str(n), "--offline", "-o", str(out)])
    assert r.exit_code == 1 and "already exists" in r.stderr and out.read_text() == "mine\n"
    r = run_cli(["compile", str(n), "--offline", "-o", str(n), "--force"])
    assert r.exit_code == 1 and "is one of the notes" in r.stderr
    r = run_cli(["compile", str(n), "--offline", "-o", str(out), "--force", "--title", "My WAL", "--author", "Ann"])
    assert r.exit_code == 0, r
    exp = load(out)
    assert (exp.title, exp.author) == ("My WAL", "Ann")


def test_every_commonmark_example_compiles_to_a_valid_skeleton():
    files = sorted((CORPUS / "commonmark").glob("ex*.md"))
    if not files:
        pytest.skip("CommonMark corpus not present")
    bad = []
    for f in files:
        try:
            notes = collect_notes([f])
        except TutorError:
            continue  # empty or whitespace-only examples
        _, problems = validate_text(offline_skeleton(notes), f.name)
        if problems:
            bad.append((f.name, str(problems[0])))
    assert bad == []


def test_the_commonmark_spec_as_notes():
    spec = CORPUS / "commonmark-spec.md"
    if not spec.exists():
        pytest.skip("CommonMark spec not present")
    exp, problems = validate_text(offline_skeleton(collect_notes([spec])), "spec.md")
    assert problems == [] and len(exp.concepts) >= 5


LINES = [
    "# Title", "## Section", "### Sub", "#### Deep", "Setext", "===", "---", "```", "~~~~", "    indented code",
    "<div>", "</div>", "<pre>", "<!-- c", "-->", "> quote", "- item", "1. item", "text: with colon", "",
    "| a | b |", "[ref]: /url", "## Section {#sec}", "## Title", "* * *", "\\# not heading", "<script>",
]


_WORDS = st.text(alphabet=st.sampled_from("aZ09 :#-_*`[]{}<>\\\"'|&!é中\t"), max_size=12)
_LINE = st.one_of(
    st.sampled_from(LINES),
    st.builds(lambda lvl, t: "#" * lvl + " " + t, st.integers(1, 6), _WORDS),
    _WORDS,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_LINE, min_size=1, max_size=25), min_size=1, max_size=3))
def test_any_notes_give_a_valid_skeleton(tmp_path_factory, files):
    d = tmp_path_factory.mktemp("notes")
    paths = []
    for i, lines in enumerate(files):
        p = d / f"{i:02d}.md"
        p.write_text("\n".join(lines) + "\n")
        paths.append(p)
    try:
        notes = collect_notes(paths)
    except TutorError:
        return  # all files blank
    exp, problems = validate_text(offline_skeleton(notes), "x.md")
    assert problems == []
    assert len({c.id for c in exp.concepts}) == len(exp.concepts) >= 1


@pytest.mark.parametrize(
    "body",
    ["[" * 1_000_000, "[a](" * 200_000, "word " * 200_000, "\n".join(["## " + "[" * 100_000, "text"])],
    ids=["brackets", "open-links", "no-sentence-end", "bracket-heading"],
)
def test_skeleton_is_linear_on_adversarial_notes(tmp_path, body):
    """1 MB notes that made the skeleton quadratic (issue 16: 20 kB of '[' took 8.8 s, 1 MB never
    ended) compile and check in seconds. A subprocess with a timeout, so a regression fails
    instead of hanging the suite."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.md").write_text(f"# T\n\n## A\n\n{body}\n\n## B\n\nThe end.\n")
    out = tmp_path / "x.md"
    for args in (["compile", str(notes), "--offline", "-o", str(out)], ["check", str(out)]):
        r = subprocess.run([sys.executable, "-m", "tutor", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr[-500:]


def test_skeleton_leaves_out_the_authors_planning_headings(tmp_path):
    """Issue 9.8: TODO, plan and 'Order (rough)' headings were reader-facing concepts chained
    as prerequisites. They are kept for the author before the first section, and a title
    like 'X explainer - plan' loses its suffix."""
    out = tmp_path / "wal.md"
    assert run_tutor(["compile", str(EXPLAINERS / "notes" / "sqlite-wal"), "--offline", "-o", str(out)]).returncode == 0
    ex = load(out)
    titles = [c.title.casefold() for c in ex.concepts]
    assert not {"todo", "order (rough)", "overview"} & set(titles), titles
    assert ex.title == "SQLite WAL explainer"
    text = out.read_text()
    assert "your planning notes, kept for you" in text and "**TODO** (" in text and "01-outline.md:21)" in text
    assert ex.concepts[0].prerequisites == []  # no longer chained after the plan


def test_check_says_a_skeleton_is_a_draft(tmp_path):
    """Issue 9.8: `tutor check` passed a skeleton whose summaries all start with DRAFT:. Each
    marker is a warning with its line, the first line says DRAFT, and --strict fails it."""
    out = tmp_path / "wal.md"
    assert run_tutor(["compile", str(EXPLAINERS / "notes" / "sqlite-wal"), "--offline", "-o", str(out)]).returncode == 0
    r = run_tutor(["check", str(out)])
    assert r.returncode == 0 and "DRAFT, not ready for readers" in r.stdout.splitlines()[0]
    assert f"{out}:4: warning: DRAFT marker left" in r.stdout  # the summary line of the front matter
    assert run_tutor(["check", "--strict", str(out)]).returncode == 1
    for sample in EXPLAINERS.glob("*.md"):
        r = run_tutor(["check", str(sample)])
        assert "DRAFT" not in r.stdout + r.stderr
