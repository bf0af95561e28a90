"""``parse(text, name)``: everything ``load(path)`` does but reading the file.

The callers that hold text (``tutor check -``, the compile's validation) used to write it
to a temporary file to load it; these tests pin that parse gives the same Explainer and
the same messages, named as the caller says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tutor.authoring.compile import validate_text
from tutor.cli import cli
from tutor.errors import ExplainerError
from tutor.explainer import load, parse

from conftest import EXPLAINERS

SAMPLES = sorted(EXPLAINERS.glob("*.md"))
BROKEN = sorted((Path(__file__).parent / "broken").glob("*.md"))


def problems(call) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ExplainerError) as e:
        call()
    return [(p.file, p.line, p.message) for p in e.value.problems]


def test_there_are_samples():
    assert len(SAMPLES) >= 3


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_parse_gives_the_same_explainer_as_load(path):
    loaded = load(path)
    for text in (path.read_text(encoding="utf-8"), path.read_bytes()):
        parsed = parse(text, str(path))
        assert [c.model_dump() for c in parsed.concepts] == [c.model_dump() for c in loaded.concepts]
        assert [c.section for c in parsed.concepts] == [c.section for c in loaded.concepts]
        assert [c.checks for c in parsed.concepts] == [c.checks for c in loaded.concepts]
        assert parsed.model_dump() == loaded.model_dump()  # title, hash, warnings, preamble too


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_parse_reports_what_load_reports_under_the_given_name(path):
    by_load = problems(lambda: load(path))
    by_parse = problems(lambda: parse(path.read_text(encoding="utf-8"), "drafts/given.md"))
    assert {f for f, _, _ in by_parse} == {"drafts/given.md"}
    assert [(line, msg.replace(str(path), "drafts/given.md")) for _, line, msg in by_load] == [
        (line, msg) for _, line, msg in by_parse
    ]


def test_parse_errors_name_the_name():
    [(file, line, msg)] = problems(lambda: parse("---\ntutor: 1\ntitle: [oops\n---\n", "notes/x.md"))
    assert (file, line) == ("notes/x.md", 3) and msg.startswith("invalid YAML in front matter")
    [(file, line, msg)] = problems(lambda: parse("  \n\n", "empty.md"))
    assert (file, line) == ("empty.md", None) and msg.startswith("file is empty")
    [(file, line, msg)] = problems(lambda: parse("# T\n\nx\x00y\n", "nul.md"))
    assert (file, line) == ("nul.md", 3) and "NUL bytes" in msg
    [(file, _, msg)] = problems(lambda: parse(b"\xff\xfe#\x00", "utf16.md"))
    assert file == "utf16.md" and "UTF-16" in msg


def test_parse_of_text_no_file_can_hold_is_an_explainer_error():
    [(file, line, msg)] = problems(lambda: parse("# T\n\nbad \ud800 here\n", "s.md"))
    assert (file, line) == ("s.md", 3) and "U+D800" in msg


def test_parse_escapes_control_characters_in_the_name_and_messages():
    [(file, _, msg)] = problems(lambda: parse("---\ntutor: 1\ntitle: x\nconcepts: []\n---\n", "a\x1b[31m.md"))
    assert "\x1b" not in file and "\\x1b" in file


def test_outline_on_error_names_the_given_name_in_its_hint():
    text = (EXPLAINERS / "sqlite-wal.md").read_text(encoding="utf-8").replace("tutor: 1", "tutor: 1\nfeedback: nope", 1)
    ex = parse(text, "shared/wal.md", outline_on_error=True)
    assert ex.plain and ex.path == "shared/wal.md"
    assert ex.warnings[0].file == "shared/wal.md" and "`tutor check shared/wal.md`" in ex.warnings[0].message


def test_a_plain_text_without_headings_is_titled_by_the_name():
    assert parse("just words\n", "notes/intro.md").title == "intro"
    assert parse("just words\n", "-").title == "stdin"  # standard input, as `tutor check -` names it


def test_compile_validation_names_the_target_not_a_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def no_temp(*a, **k):
        raise AssertionError("validate_text must not write a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    target = str(tmp_path / "out" / "wal.md")  # the folder need not exist: nothing is written
    exp, found = validate_text((EXPLAINERS / "sqlite-wal.md").read_text(encoding="utf-8"), target)
    assert found == [] and exp is not None and exp.path == target
    exp, found = validate_text("---\ntutor: 1\ntitle: x\nconcepts: []\n---\n\n# x\n", target)
    assert exp is None and found and {p.file for p in found} == {target}
    assert all("tutor-compile-" not in p.message for p in found)


def test_check_standard_input_needs_no_temporary_file(monkeypatch):
    import tempfile

    def no_temp(*a, **k):
        raise AssertionError("tutor check - must not write a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    r = CliRunner().invoke(cli, ["check", "-"], input="just words, no heading\n")
    assert r.exit_code == 0 and r.output.startswith("-: OK - stdin"), r.output
    r = CliRunner().invoke(cli, ["check", "-"], input=b"# T\n\nx\x00\n")
    assert r.exit_code == 1 and "-:3: looks like a binary file" in r.output, r.output


def test_the_package_points_one_way_and_stays_in_small_steps():
    """tutor/explainer/ imports no store, engine, app or CLI code; no function over 120
    lines, no class over 450 (issue 11.7: the loader as named steps)."""
    import ast

    import tutor.explainer

    forbidden = ("tutor.store", "tutor.engine", "tutor.app", "tutor.commands", "tutor.cli", "click", "rich", "textual")
    for path in sorted(Path(tutor.explainer.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert not any(n == f or n.startswith(f + ".") for f in forbidden), (path.name, n)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= (450 if isinstance(node, ast.ClassDef) else 120), (path.name, node.name, length)
