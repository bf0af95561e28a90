"""Compile tutor's modules to bytecode before timing whole processes.

`pip install .` writes ``.pyc`` files, so an installed tutor never compiles its own
source at start-up. An editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on
our build machines) has no ``.pyc`` for modules changed since the last write, and
compiling them from source adds ~20 ms to every start: a cost no user pays. The
``__pycache__`` folders this writes are ignored by git.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tutor"


def ensure_bytecode() -> None:
    compileall.compile_dir(str(PACKAGE), quiet=1)
