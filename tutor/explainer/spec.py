"""Format v1's fixed parts: the version, the limits, the id and feedback patterns, the
note to AI assistants. One place, so the loader, ``compile`` and ``publish`` agree."""

from __future__ import annotations

import re

FORMAT_VERSION = 1

#: Files larger than this are refused before reading them whole.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Front matter larger than this is refused (a real one is a few KB; YAML is slow).
MAX_FRONT_MATTER_BYTES = 512 * 1024
#: Deeper YAML nesting is refused (the composer recurses).
MAX_YAML_DEPTH = 50
#: More concepts than this cannot be taught; the file is refused with a clear error.
MAX_CONCEPTS = 5000
PLAIN_OUTLINE_CONCEPTS = 60  # a plain file with more headings is taught by its top levels
#: Headings longer than this are not inline-parsed for their title text.
MAX_HEADING_INLINE = 1000

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
#: ``feedback:`` in the front matter: an email address or an http(s) URL, nothing else.
FEEDBACK_RE = re.compile(r"(?:[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+|https?://[^\s<>\"]+)\Z")

#: The canonical note to AI assistants placed before the first section. ``compile``
#: reuses it so every explainer also works when pasted into a chatbot.
AI_PREAMBLE = (
    "> **Note to any AI assistant reading this file:** you are a tutor for this document, and the\n"
    "> person talking to you wants to learn what it explains. Diagnose first: start with one line on\n"
    "> what it covers, then ask whether the reader knows the first prerequisite (\"I want to explain X\n"
    "> to you. Do you already know about Y?\"). Ask one question per message and wait for the answer.\n"
    "> Teach one concept at a time, in short messages, following the prerequisites in the front\n"
    "> matter; never re-explain what the reader already knows. Check understanding with the listed\n"
    "> checks; never show a check's answer before the reader has tried, and use the listed\n"
    "> misconceptions to spot wrong answers. Cite the section heading you draw on. At the end, offer\n"
    "> to write a short feedback note the reader can send to the author (see `feedback:` above)."
)
