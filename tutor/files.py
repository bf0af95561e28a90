"""Reading input files safely: one home for the size and file-type limits (16.4).

A path given by the reader may name a device (``/dev/zero`` never ends), a FIFO (opening
it blocks until someone writes) or a huge file. ``safe_read_bytes`` refuses anything that
is not a regular file before opening it, opens without blocking, and reads at most
``limit + 1`` bytes, so a file that grows while being read is still refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tutor.errors import TutorError


def safe_read_bytes(path: str | Path, limit: int, *, what: str = "file") -> bytes:
    """The whole content of the regular file ``path``, or a one-line TutorError naming it."""
    p = Path(path)
    if not str(path):
        raise TutorError("no file given", hint=f"give the path of a {what}")
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TutorError(f"{p}: no such file") from None
    except OSError as e:
        raise TutorError(f"{p}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise TutorError(f"{p}: is a directory", hint=f"give the path of a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise TutorError(f"{p}: not a regular file (a device, pipe or socket)", hint=f"give the path of a {what}")
    if st.st_size > limit:
        raise TutorError(f"{p}: {st.st_size:,} bytes is too big for a {what} (limit {limit:,})")
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO after stat(), open() must not hang.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise TutorError(f"{p}: cannot read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise TutorError(f"{p}: not a regular file (a device, pipe or socket)", hint=f"give the path of a {what}")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise TutorError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(data) > limit:
        raise TutorError(f"{p}: more than {limit:,} bytes is too big for a {what}")
    return data
