"""Reference answers checked against their sections (tutor/authoring/consistency.py): the
local check `tutor compile` runs on what Claude wrote. Through the compile itself:
tests/test_compile_dialogue.py."""

from __future__ import annotations

from tutor.authoring.consistency import check_answers
from tutor.explainer import load

from conftest import EXPLAINERS


def test_the_consistency_check_on_the_sample_explainers():
    """46 hand-written checks. It found two real slips, since fixed in the samples (an
    answer that leaned on `synchronous=FULL` from the durability section; UTF-8 and UTF-16
    byte counts in the code-points answer); ordinary words ("both", "three") used early are
    not flagged."""
    found = []
    for name in ("git-objects.md", "sqlite-wal.md", "unicode-utf8.md"):
        exp = load(EXPLAINERS / name)
        found += [(name, p.line, p.message.split(":")[0]) for p in check_answers(exp, name)]
    assert found == []
    slipped = (EXPLAINERS / "unicode-utf8.md").read_text(encoding="utf-8").replace(
        "encoding, which is what the next sections are about.", "encoding (three bytes in UTF-8, two in UTF-16).")
    from tutor.explainer import parse

    assert [(p.line, p.message.split(":")[0]) for p in check_answers(parse(slipped, "u.md"), "u.md")] == [
        (19, "check 1 of 'code-points' rests on what only a later section explains")]


def test_a_figure_or_term_from_a_later_section_is_named_with_its_line(tmp_path):
    from compile_helpers import explainer_reply

    p = tmp_path / "x.md"
    p.write_text(explainer_reply(fence=False).replace(
        'answer: "Every read and write works on whole pages."',
        'answer: "Whole pages of 4096 bytes, which the WAL file holds too."',
    ), encoding="utf-8")
    exp = load(p)
    line = next(n for n, ln in enumerate(p.read_text().splitlines(), 1) if "4096 bytes" in ln)
    msgs = [(pr.line, pr.message) for pr in check_answers(exp, str(p))]
    assert msgs == [(line, "check 1 of 'pages' rests on what only a later section explains: "
                           "\"The WAL file\" ('wal'); move the check there, or explain it in § Pages")]
    # "4096" is in the pages section of this explainer ("4096 bytes in these examples"): no warning for it.
