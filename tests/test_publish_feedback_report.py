"""Many readers, one author: ``tutor feedback import`` takes many bundles (files, a folder,
a pattern) in one run, and ``tutor feedback FILE --html PATH`` writes the author's page with
the notes per section and an inline-SVG chart of where readers got stuck."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tutor.cli import cli
from tutor.explainer import load
from tutor.store import Store

from compile_helpers import run_cli

EXPLAINER = """\
---
tutor: 1
title: WAL in brief
concepts:
  - id: pages
    title: Pages
    checks:
      - question: "What is a page?"
        answer: "A fixed-size block."
  - id: wal
    title: The WAL file
    prerequisites: [pages]
    checks:
      - question: "Where do writers write?"
        answer: "To the -wal file."
---

## Pages {#pages}

The database file is an array of fixed-size pages.

## The WAL file {#wal}

Writers append frames to the -wal file.
"""


def _bundle(tmp_path: Path, n: int, note: str, *, shaky: bool) -> Path:
    """One reader's database -> one exported bundle, through the real CLI."""
    home = tmp_path / f"reader{n}"
    home.mkdir()
    path = home / "wal.md"
    path.write_text(EXPLAINER, encoding="utf-8")
    with Store.open(home / "r.db") as store:
        exp = load(path)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        store.add_feedback(sid, h, "pages", note, "reader")
        if shaky:
            store.set_concept_state(sid, "pages", "shaky", "unsure")
    out = tmp_path / "inbox" / f"b{n}.jsonl"
    out.parent.mkdir(exist_ok=True)
    r = run_cli(["feedback", "export", "--yes", str(path), "-o", str(out), "--db", str(home / "r.db")])
    assert r.exit_code == 0, r
    return out


def _author(tmp_path: Path) -> Path:
    author = tmp_path / "author.md"
    author.write_text(EXPLAINER, encoding="utf-8")
    return author


def test_import_a_folder_a_pattern_and_files(tmp_path):
    for n in range(3):
        _bundle(tmp_path, n, f"note {n}", shaky=n < 2)
    (tmp_path / "inbox" / "zz-bad.jsonl").write_text("not json\n")
    author, db = _author(tmp_path), str(tmp_path / "a.db")
    r = run_cli(["feedback", "import", str(tmp_path / "inbox"), "--for", str(author), "--db", db])
    assert r.exit_code == 1, r  # the bad bundle is reported, the other three are imported
    assert "zz-bad.jsonl:1: not JSON" in r.stderr
    assert "4 bundles: 3 new feedback item(s), 0 already here" in r.stdout
    r = run_cli(["feedback", "import", str(tmp_path / "inbox" / "b*.jsonl"), "--for", str(author), "--db", db])
    assert r.exit_code == 0, r
    assert "3 bundles: 0 new feedback item(s), 3 already here" in r.stdout
    r = run_cli(["feedback", "import", str(tmp_path / "nothing" / "*.jsonl"), "--db", db])
    assert r.exit_code == 1 and "no files match this pattern" in r.stderr


def test_html_report_per_section_with_stuck_chart(tmp_path):
    _bundle(tmp_path, 0, "<script>alert(1)</script> the page size is unclear", shaky=True)
    _bundle(tmp_path, 1, "An example would help.", shaky=False)
    author, db = _author(tmp_path), str(tmp_path / "a.db")
    assert run_cli(["feedback", "import", str(tmp_path / "inbox"), "--for", str(author), "--db", db]).exit_code == 0
    page = tmp_path / "report.html"
    r = run_cli(["feedback", str(author), "--html", str(page), "--db", db])
    assert r.exit_code == 0, r
    text = page.read_text()
    assert '<h2 id="pages">Pages</h2>' in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; the page size is unclear" in text and "<script" not in text
    assert "An example would help." in text
    assert "Where readers got stuck" in text and '<svg class="chart"' in text
    # Only the first reader's session changed Pages' state, so it is the one that "reached" it.
    assert "1/1 · 0/1" in text and "1 session(s) reached it; 1 found it shaky" in text


def test_html_needs_a_file(tmp_path):
    Store.open(tmp_path / "a.db").close()
    r = CliRunner().invoke(cli, ["feedback", "--html", str(tmp_path / "r.html"), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 2 and "--html needs FILE" in r.output


def test_html_report_caps_notes_per_section(tmp_path):
    from tutor.authoring import report as fb
    from tutor.authoring.report_html import MAX_NOTES, render_html

    author = _author(tmp_path)
    with Store.open(tmp_path / "a.db") as store:
        exp = load(author)
        h = store.upsert_explainer(exp)
        sid = store.create_session(h, exp.path, "offline")
        for i in range(MAX_NOTES + 5):
            store.add_feedback(sid, h, "wal", f"note {i}", "model")
        text = render_html(fb.build_report(store, exp))
    assert text.count("<li>") == MAX_NOTES and "and 5 older note(s)" in text
