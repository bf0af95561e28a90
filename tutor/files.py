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


class UnreadableFile(TutorError):
    """``safe_read_bytes`` refused or failed: ``reason`` is the message without the path,
    so a loader with its own wording (the explainer's ``file: reason; hint``) can reuse it."""

    def __init__(self, path: Path, reason: str, *, hint: str | None = None):
        super().__init__(f"{path}: {reason}", hint=hint)
        self.path = path
        self.reason = reason


def _why(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "cannot read the file: permission denied"
    return f"cannot read the file: {e.strerror or e}"


def safe_read_bytes(path: str | Path, limit: int, *, what: str = "file") -> bytes:
    """The whole content of the regular file ``path``, or a one-line TutorError naming it."""
    p = Path(path)
    hint = f"give the path of a {what}"
    if not str(path):
        raise TutorError("no file given", hint=hint)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UnreadableFile(p, "no such file") from None
    except OSError as e:
        raise UnreadableFile(p, _why(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFile(p, "is a directory", hint=hint)
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile(p, "not a regular file (a device, pipe or socket)", hint=hint)
    if st.st_size > limit:
        raise UnreadableFile(p, f"{st.st_size:,} bytes is too big for a {what} (limit {limit:,})")
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO after stat(), open() must not hang.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except IsADirectoryError:
        raise UnreadableFile(p, "is a directory", hint=hint) from None
    except OSError as e:
        raise UnreadableFile(p, _why(e)) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UnreadableFile(p, "not a regular file (a device, pipe or socket)", hint=hint)
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UnreadableFile(p, _why(e)) from None
    if len(data) > limit:
        raise UnreadableFile(p, f"more than {limit:,} bytes is too big for a {what}")
    return data


def atomic_write(path: str | Path, text: str | bytes, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` so that a crash never leaves half a file, and so that a
    planted name cannot redirect the write (16.2).

    The temp file is created by ``mkstemp`` (O_EXCL, a random name, in the target folder), so
    a symlink planted at a predictable ``T.part`` is never followed. The target itself must be
    absent or a regular file: a symlink, device node, FIFO or folder is refused, never
    replaced and never written through. ``overwrite=False`` refuses an existing file.
    ``bytes`` are written as they are (a copy of an input file); ``str`` as UTF-8, ``\n`` line ends.
    Policy refusals are TutorErrors; I/O failures stay OSErrors for the caller to word."""
    import tempfile

    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise TutorError(f"{p}: is a symbolic link; tutor does not write through links",
                             hint="Remove the link or choose another output path.")
        if stat.S_ISDIR(st.st_mode):
            raise TutorError(f"{p}: is a directory", hint="Give a file name for the output.")
        if not stat.S_ISREG(st.st_mode):
            raise TutorError(f"{p}: not a regular file (a device, pipe or socket); tutor will not replace it",
                             hint="Choose another output path.")
        if not overwrite:
            raise TutorError(f"{p}: already exists", hint="Add --force to overwrite it, or choose another -o.")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:200]}.", suffix=".tmp", dir=str(p.parent))
    try:
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as fb:
                fb.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        # mkstemp makes the file private (0600); an explainer, export or bundle is meant to
        # be shared, so give it the mode any new file gets (0666 less the umask), or keep
        # the mode of the file it replaces.
        if st is not None:
            mode = stat.S_IMODE(st.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
