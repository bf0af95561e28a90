"""Helpers for the author-side tests (compile, feedback): run the real CLI, scripted replies."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from tutor.cli import cli
from tutor.errors import TutorError

ROOT = Path(__file__).resolve().parent.parent


class CliOutcome:
    """What a user sees: exit code, stdout, stderr (a TutorError shown as ``tutor: ...``)."""

    def __init__(self, result: Result):
        self.result = result
        self.stdout = result.stdout
        self.stderr = result.stderr
        exc = result.exception
        if isinstance(exc, TutorError):
            self.stderr += f"tutor: {exc}\n"
            self.exit_code = 1
        elif exc is not None and not isinstance(exc, SystemExit):
            raise exc  # a traceback is a bug: fail the test loudly
        else:
            self.exit_code = result.exit_code

    def __repr__(self) -> str:
        return f"<exit {self.exit_code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


def run_cli(args: list[str], *, input: str | None = None, env: dict[str, str] | None = None) -> CliOutcome:
    """Invoke the real click group in-process, the way ``tutor.cli.main`` does."""
    result = CliRunner().invoke(cli, args, input=input, env=env, standalone_mode=False)
    return CliOutcome(result)


def run_tutor(args: list[str], *, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60):
    """The installed entry point in a subprocess (for exit codes and stderr exactly as shipped)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tutor", *args],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=str(ROOT),
        timeout=timeout,
    )


def claude_env(api, home: Path) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.url, "TUTOR_HOME": str(home)}


NOTES_WAL = """\
# WAL notes

SQLite normally uses a rollback journal. In WAL mode it appends changes to a separate
file instead, and readers keep reading the old pages from the database file.

## Pages

The database file is an array of fixed-size pages. Every read and write works on whole
pages, which is why the page size matters so much for I/O.

## The WAL file

Writers append whole page images to the -wal file. A commit is just a frame with the
commit flag set. Readers look in the WAL first (through the wal-index) and fall back to
the database file.

## Checkpoints

A checkpoint copies pages from the WAL back into the database file. I never remember the
default threshold.
"""


def big_notes(n_paragraphs: int = 30) -> str:
    """Notes long enough (> 1,024 tokens with the system prompt) for prompt caching to apply."""
    extra = "\n".join(
        f"Paragraph {i}: the author keeps adding detail about frames, salts and checksums so the "
        f"notes pass the cacheable minimum; each paragraph is distinct ({i})."
        for i in range(n_paragraphs)
    )
    return NOTES_WAL + "\n## More detail\n\n" + extra + "\n"


OUTLINE_REPLY = """\
Here is my plan.
<outline>
1. pages - Pages (no prerequisites)
2. wal - The WAL file (after pages)
3. checkpoints - Checkpoints (after wal)
Not covered yet: the default checkpoint threshold; how big a frame is.
</outline>
<question>How big is a page in your examples?</question>
<question>Should the reader know the rollback journal before WAL?</question>
<question>What is the default checkpoint threshold?</question>
"""


NO_FOLLOW_UPS = "Nothing to follow up: the answers are clear and agree with the notes."  # a follow-up round's empty reply


def explainer_reply(*, prereq: str = "pages", preamble: bool = False, fence: bool = True) -> str:
    """A format-v1 explainer as Claude might send it (in a ```markdown fence, no preamble)."""
    body = f"""\
---
tutor: 1
title: How SQLite's WAL works
summary: Why WAL lets readers and a writer work at once.
audience: Developers who use SQLite.
concepts:
  - id: pages
    title: Pages
    summary: The database file is an array of pages.
    prerequisites: []
    checks:
      - question: "Why does the page size matter for I/O?"
        answer: "Every read and write works on whole pages."
  - id: wal
    title: The WAL file
    summary: Writers append page images to the -wal file.
    prerequisites: [{prereq}]
  - id: checkpoints
    title: Checkpoints
    summary: Copying pages back into the database file.
    prerequisites: [wal]
---
{"PREAMBLE_HERE" if preamble else ""}
## Pages {{#pages}}

The database file is an array of fixed-size pages (4096 bytes in these examples).

## The WAL file {{#wal}}

Writers append whole page images to the -wal file. A commit is a frame with the commit flag set.

## Checkpoints {{#checkpoints}}

A checkpoint copies pages from the WAL back into the database file.
[GAP: what is the default checkpoint threshold?]
"""
    return f"```markdown\n{body}```\n" if fence else body


def compile_db(tmp_path: Path) -> sqlite3.Connection:
    """The compile state a CLI run under tmp_path/home wrote (read with a plain connection)."""
    return sqlite3.connect(tmp_path / "home" / "tutor.db")
