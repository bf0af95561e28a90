"""Where the front matter is, whether a leading ``---`` opens one at all, and its YAML read
into data (errors named by file line). A leading ``---`` is also a Markdown thematic break,
so only a block that reads as a YAML mapping counts as front matter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tutor.errors import ExplainerError, Problem
from tutor.explainer.spec import MAX_FRONT_MATTER_BYTES
from tutor.explainer.yaml_lines import Refused, parse_yaml

_FM_KEY_RE = re.compile(r"[A-Za-z_][\w-]*\s*:")
_KNOWN_KEYS = {"tutor", "title", "summary", "audience", "author", "feedback", "concepts", "date", "tags", "description", "layout"}


@dataclass
class FrontMatter:
    meta: dict[str, Any] | None  # None: no front matter, or a block that is not a mapping
    root: Any  # the YAML node tree (line marks), None without a mapping
    offset: int  # YAML line 0 is this file line (1-based)
    body: str  # the text with the front matter blanked out, so body lines are file lines


def read_front_matter(text: str, lines: list[str], name: str) -> FrontMatter:
    """The front matter of ``text`` (already split into ``lines``). Raises ExplainerError
    when it looks like front matter but cannot be read."""
    fm = _split_front_matter(lines, name)
    if fm is None:
        return FrontMatter(None, None, 0, text)
    first, close = fm
    yaml_text = "\n".join(lines[first:close])
    if len(yaml_text) > MAX_FRONT_MATTER_BYTES:
        raise ExplainerError(
            [Problem(name, 1, f"front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KB; keep it to metadata and concepts")]
        )
    offset = first + 1  # YAML line 0 is file line first+1 (1-based)
    meta: Any
    try:
        meta, root = parse_yaml(yaml_text)
    except Refused as e:
        if _looks_like_yaml(lines[first:close]):
            raise _unreadable(e, lines, first, close, offset, name) from None
        # "---\n[a link](x): text\n---": Markdown that YAML cannot read.
        return FrontMatter(None, None, offset, text)
    if meta is not None and not isinstance(meta, dict):
        # "---\nSome text\n---" is Markdown (a thematic break and a setext heading),
        # not front matter: only a YAML mapping counts as front matter.
        return FrontMatter(None, None, offset, text)
    # Blank out the front matter so markdown-it's line numbers are file lines.
    body = "\n" * (close + 1) + "\n".join(lines[close + 1 :])
    return FrontMatter(meta, root, offset, body)


def _unreadable(e: Refused, lines: list[str], first: int, close: int, offset: int, name: str) -> ExplainerError:
    message = re.sub(r"\{line:(\d+)\}", lambda m: str(int(m.group(1)) + offset), e.message)
    if e.message.startswith("invalid YAML") and any(re.match(r"#{1,6} \S", ln) for ln in lines[first:close]):
        # A Markdown heading inside the "YAML": the closing --- is missing and
        # a later thematic break was taken for it.
        message += f"; is the closing --- missing? The front matter now runs to line {close + 1}"
    return ExplainerError([Problem(name, None if e.line is None else e.line + offset, message)])


def _looks_like_yaml(lines: list[str]) -> bool:
    """True when the first line that is not blank or a comment is a ``key:`` line.

    Decides whether a leading ``---`` opens front matter (so YAML errors are reported)
    or is a Markdown thematic break followed by ordinary text.
    """
    for ln in lines:
        if ln.strip() and not ln.lstrip().startswith("#"):
            return bool(_FM_KEY_RE.match(ln))
    return False


def _looks_like_unclosed_front_matter(lines: list[str]) -> bool:
    """Front matter that never closes: a known key first, or two ``key:`` lines in a row."""
    keys: list[str] = []
    for ln in lines[:50]:
        if not ln.strip() or ln.lstrip().startswith("#"):
            if keys:
                break
            continue
        m = _FM_KEY_RE.match(ln)
        if not m:
            break
        keys.append(m.group().rstrip(": \t"))
    return bool(keys) and (keys[0] in _KNOWN_KEYS or len(keys) >= 2)


def _split_front_matter(lines: list[str], name: str) -> tuple[int, int] | None:
    """Return (first yaml line, closing line), 0-based, or None when there is none."""
    if not lines or lines[0].rstrip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return 1, i
    # Never closes: complain if it looks like front matter, else it is a thematic break
    # followed by text ("---\nNote: this is a draft.\n\n# Title" is Markdown).
    if _looks_like_unclosed_front_matter(lines[1:]):
        raise ExplainerError(
            [Problem(name, 1, "front matter starting here never closes; add a line with just --- after it")]
        )
    return None


def json_safe(value: Any) -> Any:
    """Unknown front-matter values as JSON data: YAML dates become ISO text, sets and
    tuples lists, bytes (``!!binary``) and anything else text. Keeps exports and the
    store able to serialise an Explainer whatever the file held."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
