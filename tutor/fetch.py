"""Explainers at http(s) URLs: downloaded with limits, kept in the data home.

Each URL has one stable local copy, ``<data home>/downloads/<sha256(url)[:16]>/<name>``, so a
session on a URL is found again by that path exactly as for a local file, a changed file at
the URL is "a changed explainer" (the session's content hash differs), and the session
reopens from the kept copy when the server cannot be reached.
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tutor.errors import TutorError

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT_S = 15.0
# The whole download, not each read: a server that sends one byte every 14 s never trips
# TIMEOUT_S and would keep `tutor open URL` waiting for days (16.4).
DEADLINE_S = 60.0
# Servers label Markdown many ways; anything textual is accepted, HTML/binary is not.
OK_TYPES = ("text/markdown", "text/x-markdown", "text/plain", "application/octet-stream", "")
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Fetched:
    path: Path  # the local copy to load
    url: str
    offline: bool = False  # True when the server could not be reached and the kept copy is used
    changed: bool = False  # True when the download differs from the copy kept before


def is_url(arg: str) -> bool:
    return arg.lower().startswith(("http://", "https://"))


def local_copy(url: str, home: Path) -> Path:
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = _NAME_RE.sub("-", Path(urllib.parse.urlsplit(url).path).name) or "index.md"
    if not name.lower().endswith((".md", ".markdown")):
        name += ".md"
    return home / "downloads" / key / name


def _download(url: str, timeout: float, max_bytes: int, deadline: float = DEADLINE_S) -> bytes:
    import time

    end = time.monotonic() + deadline
    req = urllib.request.Request(url, headers={"User-Agent": "tutor", "Accept": "text/markdown, text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ctype = (resp.headers.get_content_type() if resp.headers.get("Content-Type") else "").lower()
            if ctype not in OK_TYPES:
                raise TutorError(
                    f"{url}: the server sent {ctype}, not a Markdown file",
                    hint="Link the raw .md file (on GitHub: the 'Raw' button), not a web page.",
                )
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise TutorError(f"{url}: the file is {int(length):,} bytes; the limit is {max_bytes:,}")
            parts: list[bytes] = []
            size = 0
            while size <= max_bytes:
                piece = resp.read1(64 * 1024) if hasattr(resp, "read1") else resp.read(64 * 1024)
                if not piece:
                    break
                parts.append(piece)
                size += len(piece)
                if time.monotonic() > end:
                    raise TutorError(
                        f"{url}: the download took more than {deadline:.0f} s ({size:,} bytes so far); gave up",
                        hint="The server is too slow; download the file yourself and open the local copy.",
                    )
            data = b"".join(parts)
    except urllib.error.HTTPError as e:
        raise TutorError(f"{url}: the server answered {e.code} {e.reason}", hint="Check the URL.") from None
    if len(data) > max_bytes:
        raise TutorError(f"{url}: the file is larger than the {max_bytes:,}-byte limit")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TutorError(f"{url}: not UTF-8 text (byte {e.start})", hint="Save the file as UTF-8.") from None
    return data


def fetch(url: str, home: Path, *, timeout: float = TIMEOUT_S, max_bytes: int = MAX_BYTES, deadline: float = DEADLINE_S) -> Fetched:
    """Download ``url`` into its local copy under ``home``. When the server cannot be
    reached but a copy was kept, that copy is used (``offline``)."""
    dest = local_copy(url, home)
    try:
        data = _download(url, timeout, max_bytes, deadline)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        if dest.exists():
            return Fetched(dest, url, offline=True)
        reason = getattr(e, "reason", None) or e
        raise TutorError(
            f"{url}: cannot download it ({reason})",
            hint="Check the address and your connection; once downloaded, it opens without the network.",
        ) from None
    changed = dest.exists() and dest.read_bytes() != data
    dest.parent.mkdir(parents=True, exist_ok=True)
    from tutor.files import atomic_write

    # Already checked to be UTF-8; newline="\n" writes it back byte for byte. Atomic, so a
    # half download never replaces a good copy, and no planted .part link is followed.
    atomic_write(dest, data.decode("utf-8"))
    return Fetched(dest, url, changed=changed)
