"""Where tutor keeps its data.

The database is found by the first rule that applies, so a checkout or an author's
workspace keeps its sessions next to its explainers, and a reader's sessions otherwise
live in the platform's user data folder:

1. ``--db PATH`` on the command line;
2. ``$TUTOR_HOME/tutor.db``;
3. ``./sessions/tutor.db`` when the current folder has a ``sessions/`` folder;
4. ``<platformdirs user data dir for "tutor">/tutor.db``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

DB_NAME = "tutor.db"


class DbLocation(BaseModel):
    path: Path
    rule: str  # "--db", "TUTOR_HOME", "./sessions/", "user data dir"
    reason: str  # one line for `tutor where`


NAME_MAX = 255  # bytes per path component on Linux, macOS and Windows file systems


def _path_max() -> int:
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows)
        return 4096


def _check_names(p: Path, source: str) -> Path:
    """A component over NAME_MAX, or a whole path over PATH_MAX, made every later stat()
    an OSError traceback (16.5, 15.4)."""
    size = len(os.fsencode(str(p.absolute())))
    if size >= _path_max():
        from tutor.errors import TutorError

        raise TutorError(f"{source}: the path is too long ({size} bytes; this system allows {_path_max() - 1})",
                         hint="Choose a shorter path.")
    for part in p.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            from tutor.errors import TutorError

            raise TutorError(f"{source}: the name {part[:24]}… is {len(os.fsencode(part))} bytes; file systems allow {NAME_MAX}",
                             hint="Choose a shorter path.")
    return p


def db_location(cli_value: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> DbLocation:
    """The database path in use and which rule picked it."""
    cwd = Path.cwd() if cwd is None else cwd
    if cli_value not in (None, ""):
        p = _check_names(Path(cli_value).expanduser(), "--db")
        if p.is_dir() or str(cli_value).endswith(("/", os.sep)):  # "--db data/" means a folder
            p = p / DB_NAME
        return DbLocation(path=_absolute(p, cwd), rule="--db", reason="given with --db")
    home = os.environ.get("TUTOR_HOME", "").strip()
    if home:
        return DbLocation(
            path=_absolute(_check_names(Path(home).expanduser(), "TUTOR_HOME") / DB_NAME, cwd),
            rule="TUTOR_HOME",
            reason=f"from the TUTOR_HOME environment variable ({home})",
        )
    local = cwd / "sessions"
    if local.is_dir():
        return DbLocation(
            path=(local / DB_NAME).absolute(),
            rule="./sessions/",
            reason="the current folder has a sessions/ folder",
        )
    import platformdirs  # imported here: only needed for the last rule

    return DbLocation(
        path=Path(platformdirs.user_data_dir("tutor", appauthor=False)) / DB_NAME,
        rule="user data dir",
        reason="the platform's user data folder (set TUTOR_HOME or use --db to change it)",
    )


def db_path(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """The database path: --db, then TUTOR_HOME, then ./sessions/, then the user data dir."""
    return db_location(cli_value).path


def _absolute(p: Path, cwd: Path) -> Path:
    return p if p.is_absolute() else (cwd / p)
