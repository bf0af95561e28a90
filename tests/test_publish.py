"""``tutor publish`` through the real CLI: the page, the raw file beside it, escaping,
drafts refused, and the page rendered by headless Chromium with no console errors."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

from tutor.cli import cli
from tutor.explainer import load

from explainer_helpers import v1, write

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_publish_writes_page_and_raw_file(tmp_path):
    r = run("publish", str(SAMPLE), "-o", str(tmp_path / "site"), "--url", "https://ex.org/x/")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "site" / "sqlite-wal.html").read_text()
    assert (tmp_path / "site" / "sqlite-wal.md").read_bytes() == SAMPLE.read_bytes()
    ex = load(SAMPLE)
    assert f"<h1>{html.escape(ex.title)}</h1>" in page
    assert html.escape(ex.summary) in page and html.escape(ex.author) in page
    for c in ex.concepts:
        assert f'id="{c.id}"' in page
        for q in c.checks:
            # answers and misconceptions folded away until the reader asks
            assert f"<details><summary>Show the answer</summary><p>{html.escape(q.answer)}</p></details>" in page
    assert "<svg" in page and page.count("<rect") == len(ex.concepts)
    assert "tutor open https://ex.org/x/sqlite-wal.md" in page
    links = re.findall(r'href="(https://(?:claude\.ai/new|chatgpt\.com/)\?q=[^"]+)"', page)
    assert len(links) == 2
    prompt = urllib.parse.unquote(html.unescape(links[0]).split("q=", 1)[1])
    assert "https://ex.org/x/sqlite-wal.md" in prompt and "note to AI assistants" in prompt
    assert "<script" not in page and "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" in page


def test_tables_render(tmp_path):
    body = "## One {#one}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    f = write(tmp_path, v1("title: T\nconcepts:\n  - id: one\n    title: One\n", body))
    assert run("publish", str(f), "-o", str(tmp_path / "s")).exit_code == 0
    assert "<table>" in (tmp_path / "s" / "doc.html").read_text()


def test_untrusted_text_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    front = (
        f'title: "{evil}"\nsummary: "<img src=x onerror=alert(1)>"\nconcepts:\n  - id: one\n'
        f'    title: "{evil}"\n    checks:\n      - question: "<b>q</b>"\n        answer: "<i>a</i>"\n'
    )
    body = f"## One {{#one}}\n\n{evil}\n\n<iframe src=x></iframe> ![i](http://evil/x.png)\n"
    f = write(tmp_path, v1(front, body))
    assert run("publish", str(f), "-o", str(tmp_path / "s")).exit_code == 0
    page = (tmp_path / "s" / "doc.html").read_text()
    assert "<script" not in page and "<img" not in page and "<iframe" not in page and "<b>q" not in page
    assert "&lt;script&gt;" in page


def test_draft_is_refused_unless_allowed(tmp_path):
    front = "title: T\nsummary: 'DRAFT: write me'\nconcepts:\n  - id: one\n    title: One\n"
    f = write(tmp_path, v1(front, "## One {#one}\n\ntext\n"))
    r = run("publish", str(f), "-o", str(tmp_path / "s"))
    assert r.exit_code == 1 and "DRAFT" in r.output and "--allow-draft" in r.output
    assert not (tmp_path / "s" / "doc.html").exists()
    assert run("publish", str(f), "-o", str(tmp_path / "s"), "--allow-draft").exit_code == 0


def test_bad_input_gets_a_clear_error(tmp_path):
    r = run("publish", str(tmp_path / "missing.md"), "-o", str(tmp_path / "s"))
    assert r.exit_code != 0 and "missing.md" in r.output and "Traceback" not in r.output
    r = run("publish", str(SAMPLE), "-o", str(tmp_path / "s"), "--url", "javascript:alert(1)")
    assert r.exit_code == 2 and "http" in r.output


def test_publish_does_not_write_through_a_planted_link(tmp_path):
    """Issue 11: publish wrote its page with write_text and its raw copy with copyfile, so a
    symlink planted at DIR/x.html sent the page into another file; now both go through
    files.atomic_write, which refuses a link."""
    site = tmp_path / "site"
    site.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in ("sqlite-wal.html", "sqlite-wal.md"):
        link = site / name
        link.unlink(missing_ok=True)  # the raw copy written before the page was refused
        link.symlink_to(victim)
        r = run("publish", str(SAMPLE), "-o", str(site))
        assert r.exit_code == 1 and "symbolic link" in r.output and "Traceback" not in r.output, r.output
        assert victim.read_text() == "keep me" and link.is_symlink(), name
        link.unlink()
    assert run("publish", str(SAMPLE), "-o", str(site)).exit_code == 0
    assert (site / "sqlite-wal.md").read_bytes() == SAMPLE.read_bytes()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [1280, 390])
def test_page_renders_in_chromium_without_console_errors(tmp_path, width):
    assert run("publish", str(SAMPLE), "-o", str(tmp_path / "site")).exit_code == 0
    page = tmp_path / "site" / "sqlite-wal.html"
    shot = tmp_path / f"shot-{width}.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    proc = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", f"--window-size={width},2000",
         page.as_uri()], capture_output=True, text=True, timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Content Security Policy" in ln]
    assert console == [], console
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Show the answer" in dom and "<details>" in dom
