"""`tutor check FILE...` through the real CLI (click runner and a real process)."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from tutor.cli import cli

from conftest import EXPLAINERS, ROOT
from explainer_helpers import v1, write

FRONT = """
tutor: 1
title: Tiny
concepts:
  - id: a
    title: Alpha
    summary: First.
    checks:
      - {question: "What?", answer: "This."}
  - id: b
    title: Beta
    summary: Second.
    prerequisites: [a]
"""
BODY = "## Beta\n\nbeta text\n\n## Alpha\n\nalpha text here\n"


def run(*args: str):
    return CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)


def test_summary_lists_teaching_order_words_and_warnings(tmp_path):
    path = write(tmp_path, v1(FRONT, BODY))
    r = run(str(path))
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"{path}: OK - Tiny" in out
    assert "format v1, 2 concepts" in out and " words" in out
    assert out.index("1. a: Alpha") < out.index("2. b: Beta (after a)")
    assert "1. a: Alpha [lines 30-32, 1 check]" in out and "(after a) [lines 26-29]" in out
    assert f"{path}:10: warning: concept 'b' has no check question" in out


def test_strict_turns_warnings_into_failure(tmp_path):
    path = write(tmp_path, v1(FRONT, BODY))
    assert run("--strict", str(path)).exit_code == 1


def test_quiet_prints_only_ok_and_warnings(tmp_path):
    path = write(tmp_path, v1(FRONT, BODY))
    out = run("-q", str(path)).output.strip().split("\n")
    assert out[0] == f"{path}: OK - Tiny"
    assert all("warning" in line for line in out[1:])


def test_json_report(tmp_path):
    good = write(tmp_path, v1(FRONT, BODY), "good.md")
    bad = write(tmp_path, "---\ntutor: 1\ntitle: x\nconcepts: [{id: a, title: A, prerequisites: [zz]}]\n---\n## A\n", "bad.md")
    r = run("--json", str(good), str(bad))
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert [d["ok"] for d in data] == [True, False]
    assert [c["id"] for c in data[0]["concepts"]] == ["a", "b"]
    assert data[1]["errors"][0]["line"] == 4
    assert "unknown prerequisite 'zz'" in data[1]["errors"][0]["message"]


def test_several_files_one_bad_exits_1(tmp_path):
    good = write(tmp_path, "# Notes\n\ntext\n", "good.md")
    (tmp_path / "empty").mkdir()
    r = run(str(good), str(tmp_path / "missing.md"), str(tmp_path / "empty"))
    assert r.exit_code == 1
    assert f"{good}: OK - Notes" in r.output
    assert "plain Markdown, 1 concept" in r.output
    assert f"{tmp_path / 'missing.md'}: no such file" in r.output
    assert f"{tmp_path / 'empty'}: no Markdown files" in r.output


def test_no_files_is_a_usage_error():
    r = CliRunner().invoke(cli, ["check"])
    assert r.exit_code == 2 and "Missing argument" in r.output


def test_terminal_escapes_from_the_file_are_shown_not_executed(tmp_path):
    path = write(tmp_path, "# Evil \x1b]0;owned\x07 \x1b[2J title\n\ntext\n")
    r = run(str(path))
    assert r.exit_code == 0
    assert "\x1b" not in r.output and "\x07" not in r.output
    assert "Evil \\x1b]0;owned\\x07 \\x1b[2J title" in r.output


def test_long_plain_file_shows_first_concepts_only(tmp_path):
    path = write(tmp_path, "".join(f"## Part {i}\n\ntext\n\n" for i in range(100)))
    out = run(str(path)).output
    assert "40. part-39" in out and "... and 60 more" in out and "part-41" not in out


def test_samples_pass_check():
    samples = sorted(str(p) for p in EXPLAINERS.glob("*.md"))
    assert len(samples) >= 2
    r = run(*samples)
    assert r.exit_code == 0, r.output
    assert r.output.count(": OK - ") == len(samples)


def test_real_process_no_traceback_on_hostile_files(tmp_path):
    files = [
        write(tmp_path, b"\x00\x01\x02binary", "bin.md"),
        write(tmp_path, "caf\xe9".encode("latin-1"), "latin1.md"),
        write(tmp_path, "", "empty.md"),
        write(tmp_path, "---\ntutor: 9\ntitle: x\nconcepts: []\n---\n", "future.md"),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "tutor", "check", *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert "Traceback" not in err + proc.stdout
    assert f"{files[0]}:1: looks like a binary file" in err
    assert f"{files[1]}:1: is not UTF-8 text" in err and "expected UTF-8" in err
    assert f"{files[2]}: file is empty" in err
    assert f"{files[3]}:2: this explainer was made by a newer tutor (format 9)" in err


def test_loader_and_check_never_import_textual_or_anthropic():
    code = (
        "import sys\n"
        "from tutor.cli import main\n"
        "sys.argv = ['tutor', 'check', '-q', 'explainers/sqlite-wal.md']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'anthropic', 'rich', 'httpx2'})\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_draft_markers_are_warnings_with_their_lines_and_fail_strict(tmp_path):
    front = FRONT.replace("summary: First.", "summary: 'DRAFT: first.'")
    path = write(tmp_path, v1(front, BODY.replace("alpha text here", "alpha DRAFT text")))
    r = run(str(path))
    assert r.exit_code == 0, r.output
    lines = path.read_text().splitlines()
    for n in (i for i, line in enumerate(lines, 1) if "DRAFT" in line):
        assert f"{path}:{n}: warning: DRAFT marker left in" in r.output
    assert run("--strict", str(path)).exit_code == 1
    # A lower-case word or a longer one is prose, not the marker.
    clean = write(tmp_path, v1(FRONT.replace("First.", "A draft of DRAFTS."), BODY), "clean.md")
    assert "DRAFT marker" not in run(str(clean)).output


def test_offline_skeleton_is_visibly_not_ready(tmp_path):
    """Issue 9 item 8: `tutor check` no longer silently passes a `compile --offline` skeleton."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Topic\n\n## One\n\nfirst part\n\n## Two\n\nsecond part\n")
    out = tmp_path / "x.md"
    assert CliRunner().invoke(cli, ["compile", str(notes), "--offline", "-o", str(out)]).exit_code == 0
    r = run(str(out))
    assert r.exit_code == 0 and "warning: DRAFT marker left in" in r.output, r.output
    assert run("--strict", str(out)).exit_code == 1
    data = json.loads(run("--json", str(out)).output)
    assert any("DRAFT marker" in w["message"] for w in data["warnings"])


def test_samples_have_no_lint_findings():
    samples = sorted(str(p) for p in EXPLAINERS.glob("*.md"))
    r = run("--strict", "-q", *samples)
    assert r.exit_code == 0 and "warning" not in r.output, r.output
