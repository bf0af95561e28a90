"""The Textual reader app. The only package that imports textual, and only lazily:
``import tutor.app`` stays cheap so the CLI can import it without paying for Textual."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def run_app(session: Any, notices: Iterable[str] = ()) -> None:
    """Run the reader app on ``session`` (a TutorSession) until the reader quits.

    ``notices`` are one-line messages shown as notifications at start (for example
    "no API key: offline guided mode").
    """
    from tutor.app.app import TutorApp

    TutorApp(session, notices).run()
