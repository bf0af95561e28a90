"""Options shared by several commands."""

from __future__ import annotations

import click

db_option = click.option(
    "--db",
    "db",
    metavar="PATH",
    default=None,
    help="Session database to use (default: $TUTOR_HOME/tutor.db, ./sessions/tutor.db, "
    "or the user data folder; see `tutor where`).",
)
