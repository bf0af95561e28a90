"""``tutor check FILE...``: validate explainers the way an author's linter would.

Prints a short summary per valid file (title, concepts in teaching order, word count,
warnings) and every error as ``file:line: message``. Exit status 0 when every file
loads, 1 otherwise (``--strict``: warnings count as failures). Text taken from the
file is printed with control characters escaped, so a hostile file cannot drive the
terminal.
"""

from __future__ import annotations

import json
import re

import click

from tutor.text import escape_controls, plural

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
_GLOB = re.compile(r"[*?[]")
SHOW_CONCEPTS = 40


def expand(args: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """The files to check: a folder means the Markdown files directly in it (explainers/
    holds explainers; its notes/ subfolder holds notes, not explainers), and a pattern the
    shell did not expand (quoted, or a shell without globbing) is expanded here.
    Returns (paths in order, [(argument, problem)] for arguments that name no file)."""
    import glob
    from pathlib import Path

    paths: list[str] = []
    problems: list[tuple[str, str]] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in MARKDOWN_SUFFIXES and f.is_file())
            if not found:
                problems.append((arg, f"no Markdown files ({', '.join('*' + s for s in MARKDOWN_SUFFIXES)}) in this folder"))
            paths += found
        elif arg == STDIN or arg.lower().startswith(("http://", "https://")):  # a URL is not a glob
            paths.append(arg)
        elif not p.exists() and _GLOB.search(arg):
            found = sorted(f for f in glob.glob(arg) if not Path(f).is_dir())
            if not found:
                problems.append((arg, "no files match this pattern"))
            paths += found
        else:
            paths.append(arg)
    return list(dict.fromkeys(paths)), problems


STDIN = "-"


def load_path(path: str):
    """``load(path)``; ``-`` reads the explainer from standard input (editors, pipes) and
    names it ``-`` in every message."""
    from tutor.explainer import load, parse

    if path.lower().startswith(("http://", "https://")):
        return _load_url(path)
    if path != STDIN:
        return load(path)
    import sys

    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    return parse(data, STDIN)


def _load_url(url: str):
    """Download ``url`` (kept in the data home, as ``tutor open URL`` does) and check it under
    its URL: every message names the URL, not the downloaded copy."""
    from tutor.errors import ExplainerError, Problem, TutorError
    from tutor.explainer import parse
    from tutor.explainer.spec import MAX_FILE_BYTES
    from tutor.fetch import fetch
    from tutor.files import safe_read_bytes
    from tutor.paths import db_path

    try:
        copy = fetch(url, db_path(None).parent).path
    except TutorError as e:
        raise ExplainerError([Problem(url, None, str(e).replace("\n", " ").removeprefix(f"{url}: "))]) from None
    return parse(safe_read_bytes(copy, MAX_FILE_BYTES + 1), url)  # one byte over: parse says it is too big


def _words(ex) -> str:
    body = ex.body_word_count
    if body == ex.word_count:
        return f"{body:,} words"
    return f"{body:,} words in the body ({ex.word_count:,} with the front matter)"


def _summary(ex, quiet: bool) -> list[str]:
    kind = "plain Markdown" if ex.plain else f"format v{ex.format_version}"
    n = len(ex.concepts)
    drafts = sum(1 for w in ex.warnings if w.message.startswith("DRAFT marker left"))
    status = f"DRAFT, not ready for readers ({plural(drafts, 'DRAFT marker')} left)" if drafts else "OK"
    out = [
        f"{ex.path}: {status} - {ex.title}",
        f"  {kind}, {plural(n, 'concept')}, {_words(ex)}",
    ]
    if quiet:
        return out[:1]
    out.append("  teaching order:")
    for i, c in enumerate(ex.concepts[:SHOW_CONCEPTS], 1):
        pre = f" (after {', '.join(c.prerequisites)})" if c.prerequisites else ""
        checks = f", {len(c.checks)} check{'s' if len(c.checks) != 1 else ''}" if c.checks else ""
        out.append(
            f"    {i:>2}. {c.id}: {c.title}{pre} [lines {c.section.start_line}-{c.section.end_line}{checks}]"
        )
    if n > SHOW_CONCEPTS:
        out.append(f"    ... and {n - SHOW_CONCEPTS:,} more")
    return out


def _as_json(path: str, ex, err) -> dict:
    if err is not None:
        return {
            "path": path,
            "ok": False,
            "errors": [{"file": p.file, "line": p.line, "message": p.message} for p in err.problems],
        }
    return {
        "path": path,
        "ok": True,
        "title": ex.title,
        "format_version": None if ex.plain else ex.format_version,
        "plain": ex.plain,
        "words": ex.word_count,
        "body_words": ex.body_word_count,
        "concepts": [
            {
                "id": c.id,
                "title": c.title,
                "prerequisites": c.prerequisites,
                "checks": len(c.checks),
                "start_line": c.section.start_line,
                "end_line": c.section.end_line,
            }
            for c in ex.concepts
        ],
        "warnings": [{"file": p.file, "line": p.line, "message": p.message} for p in ex.warnings],
    }


@click.command("check")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-q", "--quiet", is_flag=True, help="Print only the OK line, warnings and errors.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of text.")
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], quiet: bool, strict: bool, as_json: bool) -> None:
    """Validate explainer files (or any Markdown file) and summarise them.

    Errors are printed as FILE:LINE: MESSAGE. Exit status is 0 when every file
    is valid, 1 when any is not. A FOLDER means the Markdown files in it.

    \b
    tutor check explainers/topic.md      summary, teaching order, warnings
    tutor check explainers/              every Markdown file in the folder
    tutor check -q --strict *.md         only problems; warnings fail too (CI)
    tutor check --json FILE...           a report for scripts
    tutor check - < draft.md             from standard input (an editor, a pipe)
    tutor check https://example.org/x.md a published explainer
    """
    from tutor.errors import ExplainerError, Problem
    from tutor.eval.lint import lint

    failed = False
    reports = []
    paths, missing = expand(files)
    for arg, message in missing:
        failed = True
        if as_json:
            reports.append(_as_json(arg, None, ExplainerError([Problem(arg, None, message)])))
        else:
            click.echo(escape_controls(f"{arg}: {message}"), err=True)
    ok = errors = 0
    for i, path in enumerate(paths):
        try:
            ex, err = load_path(path), None
        except ExplainerError as e:
            ex, err = None, e
        if ex is not None:
            ex = ex.model_copy(update={"warnings": [*ex.warnings, *lint(ex)]})
        if as_json:
            reports.append(_as_json(path, ex, err))
            failed |= err is not None or (strict and bool(ex.warnings))
            continue
        if i and not quiet:
            click.echo()
        if err is not None:
            failed = True
            errors += 1
            for p in err.problems:
                click.echo(escape_controls(str(p)), err=True)
            continue
        ok += 1
        for line in _summary(ex, quiet):
            click.echo(escape_controls(line))
        if ex.warnings:
            failed |= strict
            if not quiet:
                click.echo(f"  {len(ex.warnings)} warning{'s' if len(ex.warnings) != 1 else ''}:")
            for p in ex.warnings:
                where = f"{p.file}:{p.line}" if p.line is not None else p.file
                click.echo(escape_controls(f"{where}: warning: {p.message}"))
    if as_json:
        # One file named on the command line: one object; several, a folder or a pattern: a list.
        single = len(files) == 1 and len(reports) == 1 and paths == list(files)
        click.echo(json.dumps(reports[0] if single else reports, indent=2, default=str))
    elif len(paths) > 1:
        if not quiet:
            click.echo()
        bad = f", {errors} with errors" if errors else ""
        click.echo(f"{len(paths)} files: {ok} OK{bad}")
    ctx.exit(1 if failed else 0)
