"""The top-level `tutor` command: help, suggestions, and what it imports."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tutor", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_and_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from tutor.cli import main\n"
        "sys.argv = ['tutor', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('textual', 'anthropic', 'pydantic', 'markdown_it', 'sqlite_utils') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for name in ("open", "check", "compile", "feedback", "sessions", "search", "export", "where"):
        assert f"  {name} " in out
    assert "HEAVY []" in out


def test_a_mistyped_command_gets_a_suggestion_and_no_traceback():
    r = run("opne", "x.md")
    assert r.returncode == 2
    assert "Did you mean 'tutor open'?" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("zzz")
    assert "No such command 'zzz'" in r.stderr and "Did you mean" not in r.stderr


def test_version():
    r = run("--version")
    assert r.returncode == 0 and "tutor" in r.stdout
