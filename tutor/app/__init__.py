"""The Textual reader app. The only package that imports textual, and only lazily:
``import tutor.app`` stays cheap so the CLI can import it without paying for Textual."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tutor.engine.notices import StartNotice
    from tutor.engine.session import TutorSession

# Frame rate cap for Textual, read once when textual is first imported (so it is set here,
# before any tutor.app module imports textual). At the default 60 fps a streamed token can
# wait up to 16.7 ms for the next frame on top of ~5 ms of layout and paint, which put the
# token-to-screen p95 at 37-41 ms; at 120 fps it is 17-20 ms (median 15 -> 7 ms) for about
# 5 points more CPU while streaming (bench/bench_app.py). Frames are only drawn when something
# changed, so an idle app costs nothing more. A reader's own TEXTUAL_FPS wins.
os.environ.setdefault("TEXTUAL_FPS", "120")


def run_app(session: TutorSession, notices: Iterable[StartNotice] = ()) -> str | None:
    """Run the reader app on ``session`` (a TutorSession) until the reader quits.

    ``notices`` are shown at start, each by its kind: setup notes in the dialogue, a resume
    or a changed file as a notification. Returns the text of a message that was still
    queued behind a streaming reply when the reader quit (it was never sent), else None.
    """
    from tutor.app.app import TutorApp

    return TutorApp(session, notices).run()
