"""Authors' rough notes as read from disk, for ``tutor compile``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tutor.errors import TutorError
from tutor.files import UnreadableFile, safe_read_bytes

if TYPE_CHECKING:
    pass

MAX_NOTES_BYTES = 20 * 1024 * 1024  # per file; an explainer must stay under the loader's limit
NOTE_SUFFIXES = (".md", ".markdown", ".mdown", ".txt", ".text")


class NoteFile(BaseModel):
    """One notes file as read from disk (newlines normalised, BOM stripped)."""

    path: str
    text: str


def collect_notes(paths: list[str | Path]) -> list[NoteFile]:
    """Read NOTES arguments: files, or folders searched recursively for note files.

    Order is the order given, and sorted by path inside a folder, so the same notes
    always give the same skeleton and the same prompt (which keeps the prompt cache warm).
    """
    if not paths:
        raise TutorError("no notes given", hint="usage: tutor compile NOTES... -o explainers/NAME.md")
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in NOTE_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise TutorError(
                    f"{p}: no notes found in this folder",
                    hint=f"tutor reads files ending in {', '.join(NOTE_SUFFIXES)}",
                )
            files.extend(found)
        elif p.exists():  # a file, or a device/FIFO that safe_read_bytes refuses by name
            files.append(p)
        else:
            raise TutorError(f"{p}: no such file or folder")
    notes: list[NoteFile] = []
    seen: set[Path] = set()
    for f in files:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            data = safe_read_bytes(f, MAX_NOTES_BYTES, what="notes file")
        except UnreadableFile as e:
            raise TutorError(e.message, hint=e.hint or "split it, or leave it out of NOTES") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise TutorError(
                f"{f}:{line}: not UTF-8 text",
                hint="save the notes as UTF-8 (or leave this file out)",
            ) from None
        if "\x00" in text:
            raise TutorError(f"{f}: looks like a binary file, not notes", hint="leave it out of NOTES")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        notes.append(NoteFile(path=str(f), text=text))
    if not any(n.text.strip() for n in notes):
        raise TutorError(f"{', '.join(n.path for n in notes)}: the notes are empty")
    return notes


def notes_hash(notes: list[NoteFile]) -> str:
    """A stable hash of the notes (paths and text) so a resumed compile can tell they changed."""
    h = hashlib.sha256()
    for n in notes:
        h.update(n.path.encode() + b"\x00" + n.text.encode() + b"\x00")
    return h.hexdigest()

