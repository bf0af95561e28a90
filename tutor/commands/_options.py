"""Options shared by several commands."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import click

db_option = click.option(
    "--db",
    "db",
    metavar="PATH",
    default=None,
    help="Session database to use (default: $TUTOR_HOME/tutor.db, ./sessions/tutor.db, "
    "or the user data folder; see `tutor where`).",
)


def hold_session(db_file: Path, session_id: str) -> int | bool | None:
    """Claim the session for this process, so two tutors never interleave one dialogue:
    a POSIX record lock on one byte (chosen by the session id) of ``<db>.open``. The lock
    goes with the process, so a crash or kill cannot leave it stuck.
    Returns the descriptor to keep open, False when another process holds the session,
    None when locking is not available here (then nothing is checked). Test the result
    with ``is False`` / ``is None``: False is also an int, and os.close(False) closes stdin."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(db_file.with_name(db_file.name + ".open"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    offset = int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
    except OSError:
        os.close(fd)
        return False
    return fd
