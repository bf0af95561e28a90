"""One broken explainer per validation rule: `tutor check` prints file:line: errors and exits 1.

The expected line and message fragment for each file live here, so a rule that stops
firing (or fires on the wrong line) fails its own test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tutor.cli import cli
from tutor.errors import ExplainerError
from tutor.explainer import load

BROKEN = Path(__file__).parent / "broken"

# file -> (line, fragment of the message)
EXPECTED: dict[str, tuple[int, str]] = {
    "unknown-prerequisite.md": (11, "concept 'wal' has unknown prerequisite 'journal'"),
    "duplicate-id.md": (7, "duplicate concept id 'pages' (first declared on line 5)"),
    "prerequisite-cycle.md": (5, "prerequisite cycle: alpha -> gamma -> beta -> alpha"),
    "self-prerequisite.md": (7, "prerequisite cycle: beta -> beta"),
    "no-section.md": (7, "concept 'checkpoints' has no section"),
    "duplicate-section.md": (13, "second section for concept 'pages' (the first is on line 9)"),
    "wrong-type-title.md": (3, "'title' should be text, not a list"),
    "wrong-type-prerequisites.md": (9, "'concepts[1].prerequisites' should be a list, not a mapping"),
    "wrong-type-checks.md": (8, "'concepts[0].checks[0]' should be a mapping"),
    "missing-title.md": (7, "concepts[1] is missing the required key 'title'"),
    "concept-not-mapping.md": (5, "'concepts[0]' should be a mapping"),
    "bad-id.md": (5, "concept id 'Write Ahead Log' is not valid"),
    "empty-concepts.md": (4, "concepts list is empty"),
    "newer-version.md": (2, "made by a newer tutor (format 2)"),
    "bad-version.md": (2, "'tutor' must be the format version number"),
    "unclosed-front-matter.md": (1, "front matter starting here never closes"),
    "invalid-yaml.md": (6, "invalid YAML in front matter"),
    "alias-bomb.md": (4, "YAML anchor &a is not allowed"),
    "python-tag.md": (3, "YAML tag !!python/object/apply:os.system is not allowed"),
    "duplicate-key.md": (8, "key 'summary' appears twice in the same mapping (first on line 7)"),
    "front-matter-list.md": (5, "'concepts' should be a list, not a mapping"),
}


def test_every_broken_file_has_an_expectation():
    assert sorted(p.name for p in BROKEN.glob("*.md")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_reports_file_and_line(name):
    line, fragment = EXPECTED[name]
    path = BROKEN / name
    with pytest.raises(ExplainerError) as info:
        load(path)
    found = [(p.line, p.message) for p in info.value.problems]
    assert any(ln == line and fragment in msg for ln, msg in found), found
    for p in info.value.problems:
        assert p.file == str(path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_prints_file_line_and_exits_1(name):
    line, fragment = EXPECTED[name]
    path = f"tests/broken/{name}"
    result = CliRunner().invoke(cli, ["check", path], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"{path}:{line}: " in result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_front_matter_list_reports_every_type_error():
    with pytest.raises(ExplainerError) as info:
        load(BROKEN / "front-matter-list.md")
    lines = [p.line for p in info.value.problems]
    assert lines == [4, 5]  # summary and concepts, sorted by line


def test_python_tag_executes_nothing(tmp_path):
    marker = Path("/tmp/tutor-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(ExplainerError):
        load(BROKEN / "python-tag.md")
    assert not marker.exists()


def test_check_real_process_several_files_exit_1():
    """Real CLI process: good and broken files together; errors on stderr, no traceback."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "tutor", "check", "tests/broken/duplicate-id.md", "tests/broken/prerequisite-cycle.md"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "tests/broken/duplicate-id.md:7: duplicate concept id" in proc.stderr
    assert "tests/broken/prerequisite-cycle.md:5: prerequisite cycle" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_prerequisite_typo_still_opens_for_readers(tmp_path):
    """Issue 9.7: one typo in a shared explainer refused the whole file. Readers get the heading
    outline and one line naming the problem; `tutor check` still fails it for the author."""
    text = (Path(__file__).parent.parent / "explainers" / "sqlite-wal.md").read_text()
    assert "prerequisites: [wal-file]" in text
    bad = tmp_path / "typo.md"
    bad.write_text(text.replace("prerequisites: [wal-file]", "prerequisites: [wal-fiel]", 1))
    with pytest.raises(ExplainerError):
        load(bad)
    ex = load(bad, outline_on_error=True)
    assert len(ex.concepts) > 3 and "wal-fiel" in str(ex.warnings[0]) and "plain outline" in str(ex.warnings[0])
    r = CliRunner().invoke(cli, ["check", str(bad)])
    assert r.exit_code == 1 and "wal-fiel" in r.output
    env = {**os.environ, "TUTOR_HOME": str(tmp_path / "home")}
    p = subprocess.run([sys.executable, "-m", "tutor", "open", str(bad), "--plain", "--offline"],
                       input="no\n/quit\n", capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert "wal-fiel" in p.stdout + p.stderr and "Traceback" not in p.stderr
    assert "From §" in p.stdout  # the reader was taught, not refused
