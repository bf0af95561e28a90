"""Reader commands: the stored form round-trips, and --plain's typed commands are canonical."""

import pytest

from tutor.engine.commands import Command, ReaderCommand, typed_command


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("/skip pages", ReaderCommand(Command.SKIP, "pages")),
        ("/know wal-file", ReaderCommand(Command.KNOW, "wal-file")),
        ("/explain pages", ReaderCommand(Command.EXPLAIN, "pages")),
        ("/more", ReaderCommand(Command.MORE)),
        ("/continue", ReaderCommand(Command.CONTINUE)),
        ("/retry", None),  # a typed command, never stored
        ("what is a page?", None),
        (None, None),
        ("", None),
    ],
)
def test_stored_commands_parse(raw, expected):
    cmd = ReaderCommand.parse(raw)
    assert cmd == expected
    if cmd is not None:
        assert cmd.raw == raw  # what is parsed is what was stored


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/Q", ("/quit", "")),
        ("  /states ", ("/progress", "")),
        ("/know  the WAL file", ("/know", "the WAL file")),
        ("/frobnicate x", ("/frobnicate", "x")),
        ("hello /skip", None),
    ],
)
def test_typed_commands(text, expected):
    assert typed_command(text) == expected
