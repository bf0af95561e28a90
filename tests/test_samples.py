"""The sample explainers are the first thing a new user opens, so hold them to the brief.

Each sample in ``explainers/*.md`` must pass ``tutor check --strict`` through the real
CLI, have 5-10 concepts whose prerequisites form a real DAG (not a chain), 1-2 check
questions per concept with reference answers and misconceptions, a 1,500-3,000 word
body with every section tied by a ``{#id}`` heading attribute, the note to AI
assistants, and the rough notes it was written from in ``explainers/notes/<name>/``,
which ``tutor compile --offline`` must turn into a loadable skeleton.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tutor.cli import cli
from tutor.explainer import Explainer, load

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "explainers").glob("*.md"))
NOTES = ROOT / "explainers" / "notes"

ids = [p.stem for p in SAMPLES]


def body_of(ex: Explainer) -> str:
    """The file text after the closing front-matter fence."""
    parts = re.split(r"^---[ \t]*$", ex.source, maxsplit=2, flags=re.M)
    assert len(parts) == 3, f"{ex.path}: no closing front matter fence"
    return parts[2]


def test_there_are_at_least_two_samples():
    assert len(SAMPLES) >= 2, [p.name for p in SAMPLES]


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_sample_passes_strict_check(path):
    result = CliRunner().invoke(cli, ["check", "--strict", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output.lower(), result.output


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_sample_shape(path):
    ex = load(path)
    assert not ex.plain and ex.format_version == 1
    assert ex.title and ex.summary and ex.audience and ex.author
    assert 5 <= len(ex.concepts) <= 10, len(ex.concepts)

    words = len(body_of(ex).split())
    assert 1500 <= words <= 3000, f"{path.name}: body has {words} words"

    for c in ex.concepts:
        assert c.summary, c.id
        assert 1 <= len(c.checks) <= 2, c.id
        for q in c.checks:
            assert q.question.strip().endswith("?"), (c.id, q.question)
            assert len(q.answer.split()) >= 10, (c.id, q.question)
            assert q.misconceptions and all(m.strip() for m in q.misconceptions), (c.id, q.question)
        # Tied by an explicit heading attribute, so renaming a title never unties it.
        heading_line = ex.source.splitlines()[c.section.start_line - 1]
        assert heading_line.rstrip().endswith(f"{{#{c.id}}}"), heading_line
        assert len(c.section.text.split()) >= 100, f"{c.id}: section too thin"


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_prerequisites_form_a_real_dag(path):
    ex = load(path)
    order = [c.id for c in ex.concepts]
    pos = {cid: i for i, cid in enumerate(order)}
    roots = [c for c in ex.concepts if not c.prerequisites]
    assert roots, "no concept without prerequisites"
    for c in ex.concepts:
        assert all(pos[p] < pos[c.id] for p in c.prerequisites), c.id
    # Not a chain: some concept has two prerequisites, and some prerequisite is not
    # simply the concept taught just before.
    assert any(len(c.prerequisites) >= 2 for c in ex.concepts)
    assert any(
        p != order[pos[c.id] - 1] for c in ex.concepts for p in c.prerequisites
    ), "prerequisites are just the teaching order"
    # Every concept except the roots is needed by, or needs, another: no islands.
    used = {p for c in ex.concepts for p in c.prerequisites}
    for c in ex.concepts:
        assert c.prerequisites or c.id in used, f"{c.id} is disconnected"


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_sample_is_finished_prose(path):
    ex = load(path)
    assert "Note to any AI assistant" in ex.preamble
    # pasted into a chatbot there is no hidden channel: the note offers a feedback note instead
    assert "<feedback>" not in ex.preamble and "one question per message" in ex.preamble
    body = body_of(ex)
    for marker in ("TODO", "TBD", "FIXME", "DRAFT", "[GAP:", "lorem ipsum"):
        assert marker not in body, f"{path.name}: leftover {marker!r}"
    # Every concept section keeps its code fences balanced, so none swallows the next.
    for c in ex.concepts:
        fences = [ln for ln in c.section.text.splitlines() if ln.lstrip().startswith("```")]
        assert len(fences) % 2 == 0, f"{c.id}: unbalanced code fence"


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_rough_notes_exist_and_compile_offline(path, tmp_path):
    folder = NOTES / path.stem
    files = sorted(folder.glob("*.md"))
    assert 2 <= len(files) <= 4, f"{folder}: {len(files)} note files"
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert re.search(r"^#{1,3} ", text, re.M), f"{f.name}: notes need headings"
    out = tmp_path / f"{path.stem}.md"
    result = CliRunner().invoke(cli, ["compile", "--offline", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    skeleton = load(out)
    assert len(skeleton.concepts) >= 3
