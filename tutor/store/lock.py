"""The session lock: one tutor process per session, so two never interleave one dialogue."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import TracebackType


class SessionLock:
    """A POSIX record lock on one byte (chosen by the session id) of ``<db>.open``. The lock
    goes with the process, so a crash or kill cannot leave it stuck; where locking is not
    available (no fcntl, a folder we cannot write) nothing is checked.

    ``with SessionLock(db, sid) as lock:`` then ``lock.busy``: another process holds it.
    Closing any descriptor of the file drops all of this process's locks on it (POSIX), so
    a process checks several sessions by taking and releasing them one after another."""

    def __init__(self, db_file: str | Path, session_id: str):
        self.path = Path(db_file).with_name(Path(db_file).name + ".open")
        self.offset = int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16)
        self._fd: int | None = None
        self.busy = False

    def acquire(self) -> bool:
        """Take the lock; False when another process holds the session."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self.offset)
        except OSError:
            os.close(fd)
            self.busy = True
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()
