"""The author's side: notes -> explainer (``tutor compile``), and readers' feedback back to
the author (report, bundles). No click or rich here: the terminal parts live with the
commands (``tutor/commands/``); every query is a ``Store`` method (``tutor/store/authoring.py``)."""
